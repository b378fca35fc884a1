package stream

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// A connection that trickles a line a byte at a time keeps the idle
// watchdog fed; the line timeout cuts it, the client reports the stream
// stalled and reconnects from where it was. The next event clears it.
func TestTricklingLineReconnects(t *testing.T) {
	is := is.New(t)
	var h *harness
	line := event(11, "00000011") + "\n"
	trickle := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte(event(10, "00000010") + "\n"))
		w.(http.Flusher).Flush()
		for i := range len(line) {
			// The client has read every byte so far (or gone).
			for h.counter("chwatch_stream_bytes_total") < uint64(len(event(10, "00000010"))+1+i) {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
			h.clock.Advance(time.Second) // a byte a second: never idle
			if _, err := w.Write([]byte{line[i]}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			default:
			}
		}
	}
	release := make(chan struct{})
	after := func(w http.ResponseWriter, r *http.Request) {
		<-release
		lines(event(11, "00000011"))(w, r)
	}
	h = newHarness(t, func(c *Config) { c.LineTimeout = 20 * time.Second }, trickle, after)
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // before the server's cleanup, which waits for this handler
	h.start(10, time.Time{})
	got := h.collect(1)
	is.Equal(got[0].Event.Timepoint, int64(10))
	waitFor(t, "the slow line to be cut", func() bool { return h.reconnects(ReasonSlowLine) == 1 })
	st := h.c.State()
	is.True(st.Stalled)
	is.True(!st.StalledSince.IsZero())
	is.True(strings.Contains(st.LastError, "line_timeout"))
	open()
	got = h.collect(1)
	h.waitExhausted()
	is.Equal(got[0].Event.Timepoint, int64(11))
	is.Equal(h.queries(), []string{"timepoint=10", "timepoint=11", "timepoint=12"})
	is.True(!h.c.State().Stalled) // an event arrived
	is.Equal(h.reconnects(ReasonIdle), uint64(0))
}

// Time blocked on the consumer, and lines that arrive whole, never count
// against the line timeout; nor does a quiet stream of heartbeats.
func TestLineTimeoutSparesHealthyStreams(t *testing.T) {
	is := is.New(t)
	var ls []string
	for i := int64(1); i <= 50; i++ {
		ls = append(ls, event(i, "00000001"))
	}
	var h *harness
	h = newHarnessSteps(t, func(c *Config) { c.LineTimeout = 10 * time.Second }, func(s *scriptServer) []step {
		return []step{func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			for k := range uint64(5) {
				_, _ = w.Write([]byte("\n"))
				w.(http.Flusher).Flush()
				waitFor(h.t, "a heartbeat read", func() bool { return h.counter(`chwatch_stream_lines_total{kind="heartbeat"}`) > k })
				h.clock.Advance(30 * time.Second)
			}
			for _, l := range ls {
				_, _ = w.Write([]byte(l + "\n"))
			}
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}}
	})
	h.items = make(chan Item) // unbuffered: the client blocks on every item
	h.start(1, time.Time{})
	for i := range 50 {
		if i > 0 {
			// The consumer is slow: a minute passes while the client is
			// blocked handing the next item over (never while it reads).
			waitFor(t, "the client blocked on the consumer", h.c.consumer.Load)
			h.clock.Advance(time.Minute)
		}
		select {
		case it := <-h.items:
			is.Equal(it.Event.Timepoint, int64(i+1))
		case <-time.After(5 * time.Second):
			t.Fatalf("item %d never came; slow %d idle %d eof %d: %s", i, h.reconnects(ReasonSlowLine), h.reconnects(ReasonIdle), h.reconnects(ReasonEOF), h.c.State().LastError)
		}
	}
	is.Equal(h.reconnects(ReasonSlowLine), uint64(0))
	is.Equal(h.reconnects(ReasonIdle), uint64(0))
	is.True(!h.c.State().Stalled)
}
