package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/logging/logtest"
	"github.com/matryer/is"
)

// fakeClock moves only when told; After fires when Advance passes its deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitWaiters waits until someone waits on the clock.
func (c *fakeClock) waitWaiters(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		n := len(c.waiters)
		c.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("nobody waited on the clock within 10s")
}

// hook is a webhook that records what it receives and answers with codes in
// turn (200 once they run out).
type hook struct {
	srv   *httptest.Server
	got   chan alert.Message
	mu    sync.Mutex
	codes []int
	tries int
}

func newHook(t *testing.T, codes ...int) *hook {
	h := &hook{got: make(chan alert.Message, 100), codes: codes}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.tries++
		code := 200
		if len(h.codes) > 0 {
			code, h.codes = h.codes[0], h.codes[1:]
		}
		h.mu.Unlock()
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
		var m alert.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("decode alert: %v", err)
		}
		w.WriteHeader(code)
		if code/100 == 2 {
			h.got <- m
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) url() string { return h.srv.URL + "/services/T0/B0/hooktoken-5ecret" }

func (h *hook) next(t *testing.T) alert.Message {
	t.Helper()
	select {
	case m := <-h.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no alert received within 10s")
		return alert.Message{}
	}
}

func start(t *testing.T, a *alert.Alerter) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestRaiseAndResolve(t *testing.T) {
	is := is.New(t)
	h := newHook(t)
	clock := newClock()
	a := alert.New(alert.Config{URL: h.url(), Host: "pi", Clock: clock})
	start(t, a)
	since := clock.Now()
	a.Raise(alert.StreamDown, alert.Warning, "stream down for more than 5m0s", map[string]any{"last_error": "503"})
	m := h.next(t)
	is.Equal(m.Service, "chwatch")
	is.Equal(m.Host, "pi")
	is.Equal(m.Kind, alert.StreamDown)
	is.Equal(m.Text, "stream down for more than 5m0s")
	is.Equal(m.Severity, alert.Warning)
	is.True(!m.Resolved)
	is.True(m.Since.Equal(since))
	is.True(m.Time.Equal(since))
	is.Equal(m.Details["last_error"], "503")
	is.True(a.Active(alert.StreamDown))

	// The same condition raised again sends nothing; a worse one does
	// (after the kind's window); the recovery says how long it lasted.
	a.Raise(alert.StreamDown, alert.Warning, "stream down for more than 5m0s", map[string]any{"last_error": "502"})
	clock.Advance(10 * time.Minute)
	a.Raise(alert.StreamDown, alert.Critical, "stream down for more than 30m0s", nil)
	m = h.next(t)
	is.Equal(m.Severity, alert.Critical)
	is.True(m.Since.Equal(since)) // the same condition
	clock.Advance(6 * time.Minute)
	a.Resolve(alert.StreamDown)
	m = h.next(t)
	is.Equal(m.Severity, alert.OK)
	is.True(m.Resolved)
	is.Equal(m.Text, "resolved after 16m0s: stream down for more than 30m0s")
	is.Equal(m.Details["lasted_seconds"], float64(960))
	is.True(!a.Active(alert.StreamDown))
	a.Resolve(alert.StreamDown) // not raised: nothing
	a.Raise(alert.DiskFull, alert.Critical, "disk full", nil)
	is.Equal(h.next(t).Kind, alert.DiskFull) // the very next message: no second recovery
}

// A flapping condition sends one message per window, then one summary: the
// latest state, saying how many changes were held back.
func TestFlappingIsRateLimited(t *testing.T) {
	is := is.New(t)
	h := newHook(t)
	clock := newClock()
	set := metrics.NewSet()
	a := alert.New(alert.Config{URL: h.url(), Clock: clock, Metrics: set})
	start(t, a)
	t0 := clock.Now()
	for range 10 {
		a.Raise(alert.StreamUnauthorized, alert.Critical, "stream answers 401", nil)
		clock.Advance(time.Second)
		a.Resolve(alert.StreamUnauthorized)
		clock.Advance(time.Second)
	}
	m := h.next(t)
	is.True(!m.Resolved)
	// Another kind has its own window.
	a.Raise(alert.Gap, alert.Warning, "stream gap", nil)
	is.Equal(h.next(t).Kind, alert.Gap)

	clock.Advance(alert.DefaultEvery) // the window ends
	m = h.next(t)
	is.Equal(m.Kind, alert.StreamUnauthorized)
	is.True(m.Resolved) // the latest state
	is.True(strings.HasSuffix(m.Text, "(19 more since "+t0.Format(time.RFC3339)+")"))
	is.Equal(m.Details["held_back"], float64(19))

	a.Raise(alert.DiskFull, alert.Critical, "disk full", nil)
	is.Equal(h.next(t).Kind, alert.DiskFull) // nothing else came in between
	waitMetric(t, set, `chwatch_alerts_suppressed_total{kind="stream_unauthorized"} 19`)
	waitMetric(t, set, `chwatch_alerts_sent_total{kind="stream_unauthorized"} 2`)
}

func TestRetriesThenDelivers(t *testing.T) {
	is := is.New(t)
	h := newHook(t, 503, 500)
	clock := newClock()
	set := metrics.NewSet()
	a := alert.New(alert.Config{URL: h.url(), Clock: clock, Metrics: set})
	start(t, a)
	a.Raise(alert.BreakerOpen, alert.Warning, "REST breaker open", nil)
	clock.waitWaiters(t)
	clock.Advance(alert.DefaultRetryWait)
	clock.waitWaiters(t)
	clock.Advance(2 * alert.DefaultRetryWait)
	is.Equal(h.next(t).Kind, alert.BreakerOpen)
	h.mu.Lock()
	is.Equal(h.tries, 3)
	h.mu.Unlock()
	waitMetric(t, set, `chwatch_alerts_sent_total{kind="breaker_open"} 1`)
	waitMetric(t, set, `chwatch_alerts_failed_total{kind="breaker_open"} 0`)
}

// A 4xx is not retried, and the log names the status but never the URL.
func TestRefusedIsNotRetriedAndHidesURL(t *testing.T) {
	is := is.New(t)
	h := newHook(t, 404)
	logs := &logtest.Buffer{}
	set := metrics.NewSet()
	a := alert.New(alert.Config{URL: h.url(), Clock: newClock(), Metrics: set, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	start(t, a)
	a.Raise(alert.DeadJobs, alert.Warning, "3 dead jobs", nil)
	a.Raise(alert.Gap, alert.Warning, "gap", nil)
	is.Equal(h.next(t).Kind, alert.Gap) // delivered after the refused one, which was tried once
	h.mu.Lock()
	is.Equal(h.tries, 2)
	h.mu.Unlock()
	is.True(strings.Contains(logs.String(), "status=404"))
	is.True(!strings.Contains(logs.String(), "hooktoken-5ecret"))
	waitMetric(t, set, `chwatch_alerts_failed_total{kind="dead_jobs"} 1`)
}

// An unreachable webhook is logged without its URL, which carries a token.
func TestUnreachableHidesURL(t *testing.T) {
	is := is.New(t)
	logs := &logtest.Buffer{}
	a := alert.New(alert.Config{URL: "http://127.0.0.1:1/hook?token=s3cret", Retries: -1, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	a.Raise(alert.StreamDown, alert.Warning, "stream down", nil)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "alert not delivered") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	is.True(strings.Contains(logs.String(), "alert not delivered"))
	is.True(strings.Contains(logs.String(), "connection refused"))
	is.True(!strings.Contains(logs.String(), "s3cret"))
}

// Raise never blocks: with nobody delivering, what does not fit is dropped
// and counted.
func TestFullQueueDrops(t *testing.T) {
	is := is.New(t)
	set := metrics.NewSet()
	a := alert.New(alert.Config{URL: "http://127.0.0.1:1/", QueueSize: 2, Metrics: set})
	for _, k := range []string{alert.StreamDown, alert.Gap, alert.DiskFull, alert.BreakerOpen} {
		a.Raise(k, alert.Warning, k, nil)
	}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	is.True(strings.Contains(out.String(), `chwatch_alerts_dropped_total{kind="disk_full"} 1`))
	is.True(strings.Contains(out.String(), `chwatch_alerts_dropped_total{kind="breaker_open"} 1`))
	is.True(strings.Contains(out.String(), `chwatch_alerts_dropped_total{kind="gap"} 0`))
}

// Every kind's metrics exist before the first alert, so a dashboard and an
// alert rule see zeros rather than nothing.
func TestMetricsRegisteredAtStart(t *testing.T) {
	set := metrics.NewSet()
	alert.New(alert.Config{Metrics: set})
	var out bytes.Buffer
	set.WritePrometheus(&out)
	for _, k := range alert.Kinds {
		for _, name := range []string{"chwatch_alerts_sent_total", "chwatch_alerts_failed_total", "chwatch_alerts_suppressed_total", "chwatch_alerts_dropped_total", "chwatch_alert_active"} {
			if !strings.Contains(out.String(), name+`{kind="`+k+`"} 0`) {
				t.Errorf("%s{kind=%q} not registered at start", name, k)
			}
		}
	}
}

// Without a URL conditions are still tracked (the chwatch_alert_active gauge
// and the log line), and nothing is sent.
func TestNoURL(t *testing.T) {
	is := is.New(t)
	set := metrics.NewSet()
	logs := &logtest.Buffer{}
	a := alert.New(alert.Config{Metrics: set, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	a.Raise(alert.DiskFull, alert.Critical, "disk full: the cursor holds", nil)
	is.True(a.Active(alert.DiskFull))
	var out bytes.Buffer
	set.WritePrometheus(&out)
	is.True(strings.Contains(out.String(), `chwatch_alert_active{kind="disk_full"} 1`))
	is.True(strings.Contains(logs.String(), "level=ERROR"))
	is.True(strings.Contains(logs.String(), "disk full: the cursor holds"))
	_, err := a.Test(context.Background())
	is.Equal(err, alert.ErrNoURL)
}

func TestTest(t *testing.T) {
	is := is.New(t)
	h := newHook(t, 200, 410)
	a := alert.New(alert.Config{URL: h.url(), Host: "pi"})
	code, err := a.Test(context.Background())
	is.NoErr(err)
	is.Equal(code, 200)
	m := h.next(t)
	is.Equal(m.Kind, alert.Test)
	is.Equal(m.Severity, alert.Info)
	is.True(strings.Contains(m.Text, "pi"))
	code, err = a.Test(context.Background())
	is.NoErr(err)
	is.Equal(code, 410)
}

// What is held back when the service stops is sent on the way out.
func TestStopSendsHeld(t *testing.T) {
	is := is.New(t)
	h := newHook(t)
	clock := newClock()
	a := alert.New(alert.Config{URL: h.url(), Clock: clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	a.Raise(alert.DiskFull, alert.Critical, "disk full", nil)
	is.True(!h.next(t).Resolved)
	a.Resolve(alert.DiskFull) // held: within the window
	cancel()
	<-done
	m := h.next(t)
	is.True(m.Resolved)
	is.True(strings.Contains(m.Text, "(1 more since"))
}

// waitMetric waits until set shows line: a delivery is counted once the
// webhook's answer is read, after the webhook saw it.
func waitMetric(t *testing.T, set *metrics.Set, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var out bytes.Buffer
	for time.Now().Before(deadline) {
		out.Reset()
		set.WritePrometheus(&out)
		if strings.Contains(out.String(), line+"\n") {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("metrics never showed %s:\n%s", line, out.String())
}
