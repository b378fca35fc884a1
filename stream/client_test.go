package stream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// fixtureLines returns the non-blank lines of testdata/stream.jsonl.
func fixtureLines(t testing.TB) (wire []byte, events [][]byte) {
	t.Helper()
	wire, err := os.ReadFile("testdata/stream.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(wire, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			events = append(events, l)
		}
	}
	return wire, events
}

// collect reads n items or fails.
func (h *harness) collect(n int) []Item {
	h.t.Helper()
	var got []Item
	for len(got) < n {
		select {
		case it := <-h.items:
			got = append(got, it)
		case err := <-h.done:
			h.t.Fatalf("Run returned early: %v", err)
		case <-time.After(5 * time.Second):
			h.t.Fatalf("timed out after %d of %d items", len(got), n)
		}
	}
	return got
}

func TestClientGolden(t *testing.T) {
	wire, want := fixtureLines(t)

	chunkers := map[string]func(r *rand.Rand) int{
		"OneWrite":    func(*rand.Rand) int { return len(wire) },
		"ByteByByte":  func(*rand.Rand) int { return 1 },
		"RandomSizes": func(r *rand.Rand) int { return 1 + r.IntN(97) },
	}
	for name, size := range chunkers {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			writeChunked := func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				rng := rand.New(rand.NewPCG(1, 2))
				for rest := wire; len(rest) > 0; {
					n := min(size(rng), len(rest))
					_, _ = w.Write(rest[:n])
					w.(http.Flusher).Flush()
					rest = rest[n:]
				}
			}
			h := newHarness(t, nil, writeChunked)
			h.start(47695461, time.Time{})
			got := h.collect(len(want))
			h.waitExhausted()

			for i, it := range got {
				is.True(it.Event != nil)
				is.Equal(it.Event.Invalid, "")
				is.Equal(string(it.Event.Raw), string(bytes.TrimSuffix(want[i], []byte("\r"))))
				// Data passes through byte for byte.
				var env struct{ Data json.RawMessage }
				is.NoErr(json.Unmarshal(want[i], &env))
				if env.Data == nil {
					is.Equal(it.Event.Data, nil)
				} else {
					is.Equal(string(it.Event.Data), string(env.Data))
				}
			}
			is.Equal(got[0].Event.Timepoint, int64(47695461))
			is.Equal(got[0].Event.PublishedAt, time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC))
			is.Equal(got[0].Event.ResourceID, "SC571653")
			is.Equal(got[0].Event.ResourceURI, "/company/SC571653")
			is.Equal(got[0].Event.ResourceKind, "company-profile")

			strike := got[1].Event
			is.Equal(strike.Type, "changed")
			is.Equal(strike.FieldsChanged, []string{"company_status_detail"})
			var prof struct {
				Status string `json:"company_status"`
				Detail string `json:"company_status_detail"`
			}
			is.NoErr(json.Unmarshal(strike.Data, &prof))
			is.Equal(prof.Status, "active")
			is.Equal(prof.Detail, "active-proposal-to-strike-off")

			del := got[2].Event
			is.Equal(del.Type, "deleted")
			is.Equal(del.ResourceID, "OC301234")
			is.Equal(del.Data, nil)

			is.Equal(len(h.drain()), 0) // heartbeats emit nothing
			is.Equal(h.counter(`chwatch_stream_lines_total{kind="heartbeat"}`), uint64(4))
			is.Equal(h.counter(`chwatch_stream_lines_total{kind="event"}`), uint64(4))
			is.Equal(h.counter(`chwatch_stream_bytes_total`), uint64(len(wire)))

			reqs := h.srv.requests()
			is.Equal(len(reqs), 2)
			wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testKey+":"))
			for _, r := range reqs {
				is.Equal(r.Auth, wantAuth)
				is.Equal(r.Path, "/companies")
			}
			is.Equal(reqs[0].RawQuery, "timepoint=47695461")
			is.Equal(reqs[1].RawQuery, "timepoint=47695471") // inclusive: last + 1
			waitFor(t, "connected", func() bool { return h.c.State().Connected })
			st := h.c.State()
			is.Equal(st.Timepoint, int64(47695470))
			is.Equal(st.LastStatus, 200)
		})
	}
}

func TestAuthHeaderExact(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, func(c *Config) { c.Key = "abc123" }, lines())
	h.start(0, time.Time{})
	h.waitExhausted()
	reqs := h.srv.requests()
	is.Equal(reqs[0].Auth, "Basic YWJjMTIzOg==") // base64("abc123:")
	is.Equal(reqs[0].RawQuery, "")               // from 0: live, no timepoint
	is.Equal(reqs[0].Path, "/companies")
}

func TestResumeAfterCut(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, nil,
		lines(event(10, "00000010"), event(11, "00000011")),
		lines(event(12, "00000012")),
		status(503, "<html>Service Unavailable</html>"),
	)
	h.start(10, time.Time{})
	h.collect(3)
	h.waitExhausted()
	var qs []string
	for _, r := range h.srv.requests() {
		qs = append(qs, r.RawQuery)
	}
	is.Equal(qs, []string{"timepoint=10", "timepoint=12", "timepoint=13", "timepoint=13"})
	is.True(strings.Contains(h.c.State().LastError, "HTTP 503"))
}

func TestReconnectPolicy(t *testing.T) {
	ev := event(100, "00000100")
	// Rand is 0.5 and BackoffMin 1s: the n-th consecutive failure waits
	// 1s + 0.5*(min(5m, 1s*2^n) - 1s).
	b1, b2, b3 := 1500*time.Millisecond, 2500*time.Millisecond, 4500*time.Millisecond
	tests := []struct {
		name    string
		steps   func(s *scriptServer, h **harness) []step
		waits   []time.Duration
		reasons map[string]uint64
		check   func(is *is.I, h *harness)
	}{
		{
			name: "EOFAfterEventsReconnectsPromptlyAndResetsBackoff",
			steps: func(*scriptServer, **harness) []step {
				return []step{status(503, ""), status(503, ""), lines(ev), status(503, "")}
			},
			waits:   []time.Duration{b1, b2, 500 * time.Millisecond, b1},
			reasons: map[string]uint64{Reason5xx: 3, ReasonEOF: 1},
		},
		{
			name: "EOFAfterAWhileWithoutEventsIsNormal",
			steps: func(s *scriptServer, h **harness) []step {
				return []step{func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(200)
					_, _ = w.Write([]byte("\n"))
					w.(http.Flusher).Flush()
					waitFor((*h).t, "heartbeat read", func() bool { return !(*h).c.State().LastByteAt.IsZero() })
					(*h).clock.Advance(time.Minute) // under the idle timeout
				}}
			},
			waits:   []time.Duration{500 * time.Millisecond},
			reasons: map[string]uint64{ReasonEOF: 1},
		},
		{
			name: "EarlyEOFBacksOff",
			steps: func(*scriptServer, **harness) []step {
				return []step{lines(), lines("", ""), lines()}
			},
			waits:   []time.Duration{b1, b2, b3},
			reasons: map[string]uint64{ReasonEarlyEOF: 3},
		},
		{
			name: "5xxBacksOff",
			steps: func(*scriptServer, **harness) []step {
				return []step{status(502, "<html>Bad Gateway</html>"), status(503, ""), status(504, "")}
			},
			waits:   []time.Duration{b1, b2, b3},
			reasons: map[string]uint64{Reason5xx: 3},
		},
		{
			name: "429WaitsAtLeastRateLimitedWait",
			steps: func(*scriptServer, **harness) []step {
				return []step{status(429, `{"error":"client has been rate-limited"}`), status(429, "")}
			},
			waits:   []time.Duration{60 * time.Second, 60 * time.Second},
			reasons: map[string]uint64{Reason429: 2},
		},
		{
			name: "401RetriesEveryUnauthorizedWaitUntilA200",
			steps: func(s *scriptServer, h **harness) []step {
				unauth := status(401, `{"error":"Invalid Authorization","type":"ch:service"}`)
				return []step{unauth, unauth, func(w http.ResponseWriter, r *http.Request) {
					st := (*h).c.State()
					if !st.Unauthorized || st.LastStatus != 401 || st.Connected {
						(*h).t.Errorf("state during 401 loop: %+v", st)
					}
					unauth(w, r)
				}}
			},
			waits:   []time.Duration{5 * time.Minute, 5 * time.Minute, 5 * time.Minute},
			reasons: map[string]uint64{Reason401: 3},
			check: func(is *is.I, h *harness) {
				waitFor(h.t, "connected", func() bool { return h.c.State().Connected })
				st := h.c.State()
				is.True(!st.Unauthorized) // cleared by the 200 that follows
				is.True(st.Connected)
				is.True(strings.Contains(h.logs.String(), `"level":"ERROR"`))
			},
		},
		{
			name: "NetworkErrorBacksOff",
			steps: func(*scriptServer, **harness) []step {
				return []step{hangUp, hangUp}
			},
			waits:   []time.Duration{b1, b2},
			reasons: map[string]uint64{ReasonNetwork: 2},
		},
		{
			name: "IdleTimeoutReconnects",
			steps: func(s *scriptServer, h **harness) []step {
				hang := s.linesThenHang(ev, "")
				return []step{func(w http.ResponseWriter, r *http.Request) {
					go func() {
						waitFor((*h).t, "the event", func() bool { return (*h).c.State().Timepoint == 100 })
						waitFor((*h).t, "the heartbeat", func() bool {
							return (*h).counter(`chwatch_stream_lines_total{kind="heartbeat"}`) == 1
						})
						(*h).clock.Advance(89 * time.Second) // not yet
						time.Sleep(10 * time.Millisecond)
						(*h).clock.Advance(time.Second)
					}()
					hang(w, r)
				}}
			},
			// A connection that delivered an event reset the backoff: first failure.
			waits:   []time.Duration{b1},
			reasons: map[string]uint64{ReasonIdle: 1},
			check: func(is *is.I, h *harness) {
				is.Equal(h.srv.requests()[1].RawQuery, "timepoint=101")
			},
		},
		{
			name: "OtherStatusBacksOff",
			steps: func(*scriptServer, **harness) []step {
				return []step{status(404, "not found")}
			},
			waits:   []time.Duration{b1},
			reasons: map[string]uint64{ReasonOtherStatus: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			var h *harness
			h = newHarnessSteps(t, nil, func(s *scriptServer) []step { return tt.steps(s, &h) })
			h.start(100, time.Time{})
			h.waitExhausted()
			is.Equal(h.clock.Waits(), tt.waits)
			for _, r := range reconnectReasons {
				is.Equal(h.reconnects(r), tt.reasons[r]) // reconnects by reason
			}
			if tt.check != nil {
				tt.check(is, h)
			}
			is.NoErr(func() error {
				if err := h.stop(); err.Error() != "context canceled" {
					return err
				}
				return nil
			}())
			is.True(!h.c.State().Connected)
			is.True(strings.Contains(h.metricsText(), "chwatch_stream_connected 0"))
		})
	}
}

func TestBackoffFormula(t *testing.T) {
	is := is.New(t)
	for _, tt := range []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0, time.Second},
		{1, 0.999999, 2 * time.Second},
		{3, 0.5, 4500 * time.Millisecond},
		{9, 0.999999999, 5 * time.Minute}, // 1s*2^9 = 512s, capped at 5m
		{1000, 0, time.Second},
		{1000, 0.5, 150500 * time.Millisecond},
	} {
		r := tt.r
		c, err := New(Config{Rand: func() float64 { return r }})
		is.NoErr(err)
		got := c.backoff(tt.n)
		is.True(got >= tt.want-time.Millisecond && got <= tt.want+time.Millisecond) // backoff(n, r)
	}
}

func TestGap416(t *testing.T) {
	lastPub := time.Date(2026, 10, 25, 9, 0, 0, 0, time.UTC)
	gone := status(416, "the specified timepoint is invalid or too old")

	t.Run("ConfirmedThenGapThenLive", func(t *testing.T) {
		is := is.New(t)
		h := newHarness(t, nil, gone, gone, lines("", event(5000, "00005000"), event(5001, "00005001")), lines(event(5002, "00005002")))
		h.start(100, lastPub)
		got := h.collect(4)
		h.waitExhausted()
		is.True(got[0].Gap != nil)
		g := got[0].Gap
		is.Equal(g.FromTimepoint, int64(100))
		is.Equal(g.ToTimepoint, int64(5000))
		is.Equal(g.FromTime, lastPub)
		is.Equal(g.ToTime, time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
		is.True(g.Reason != "")
		is.Equal(got[1].Event.Timepoint, int64(5000))
		is.Equal(got[2].Event.Timepoint, int64(5001))
		is.Equal(got[3].Event.Timepoint, int64(5002)) // no second gap
		var qs []string
		for _, r := range h.srv.requests() {
			qs = append(qs, r.RawQuery)
		}
		is.Equal(qs, []string{"timepoint=100", "timepoint=100", "", "timepoint=5002", "timepoint=5003"})
		is.Equal(h.clock.Waits(), []time.Duration{2 * time.Second, 500 * time.Millisecond, 500 * time.Millisecond})
		is.Equal(h.reconnects(Reason416), uint64(2))
	})

	t.Run("ConfirmationSucceedsNoGap", func(t *testing.T) {
		is := is.New(t)
		h := newHarness(t, nil, gone, lines(event(100, "00000100")))
		h.start(100, lastPub)
		got := h.collect(1)
		h.waitExhausted()
		is.True(got[0].Event != nil)
		is.Equal(got[0].Event.Timepoint, int64(100))
		is.Equal(len(h.drain()), 0)
		is.Equal(h.clock.Waits(), []time.Duration{2 * time.Second, 500 * time.Millisecond})
		is.Equal(h.reconnects(Reason416), uint64(1))
	})
}

func TestOversizedLineOverHTTP(t *testing.T) {
	is := is.New(t)
	const size = 5 << 20
	big := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"resource_id":"01234567","data":{"blob":"`))
		chunk := bytes.Repeat([]byte("A"), 32<<10)
		for n := 0; n < size; n += len(chunk) {
			_, _ = w.Write(chunk)
		}
		_, _ = w.Write([]byte(`"},"event":{"timepoint":777,"published_at":"2026-11-01T10:00:00","type":"changed"}}` + "\n"))
		_, _ = w.Write([]byte(event(778, "00000778") + "\n"))
	}
	h := newHarness(t, func(c *Config) { c.MaxLineBytes = 64 << 10 }, big)
	h.start(700, time.Time{})
	got := h.collect(2)
	h.waitExhausted()
	rj := got[0].Reject
	is.True(rj != nil)
	is.Equal(rj.Reason, ReasonOversized)
	is.Equal(rj.Timepoint, int64(777))
	is.True(rj.Bytes > size)
	is.Equal(len(rj.Excerpt), 200)
	is.True(bytes.HasPrefix(rj.Excerpt, []byte(`{"resource_id":"01234567"`)))
	is.Equal(got[1].Event.Timepoint, int64(778))
	is.Equal(h.counter(`chwatch_stream_lines_total{kind="reject"}`), uint64(1))
	is.Equal(h.srv.requests()[1].RawQuery, "timepoint=779")
}

func TestBackpressureNeverDrops(t *testing.T) {
	is := is.New(t)
	var ls []string
	for i := int64(1); i <= 200; i++ {
		ls = append(ls, event(i, fmt.Sprintf("%08d", i)))
	}
	h := newHarness(t, nil, lines(ls...))
	h.items = make(chan Item) // unbuffered: Run blocks on every item
	h.start(1, time.Time{})
	got := h.collect(200)
	for i, it := range got {
		is.Equal(it.Event.Timepoint, int64(i+1))
	}
}

func TestKeyNeverLeaks(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, nil,
		status(401, `{"error":"Invalid Authorization","type":"ch:service"}`),
		status(503, ""),
		hangUp,
		lines(event(1, "00000001"), "not json"),
		status(416, ""), status(416, ""),
	)
	h.start(1, time.Time{})
	h.waitExhausted()
	st := h.c.State()
	_ = h.stop()
	b64 := base64.StdEncoding.EncodeToString([]byte(testKey + ":"))
	for name, s := range map[string]string{
		"logs":    h.logs.String(),
		"metrics": h.metricsText(),
		"state":   fmt.Sprintf("%+v", st),
		"config":  fmt.Sprintf("%v", h.c.url+h.c.shown),
	} {
		is.True(!strings.Contains(s, testKey)) // key in name
		is.True(!strings.Contains(s, b64))     // encoded key in name
		is.True(!strings.Contains(s, "zq7Xv41"))
		if name == "logs" {
			is.True(strings.Contains(s, "401"))
		}
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"BadScheme":       {URL: "ftp://example.com"},
		"NoHost":          {URL: "https://"},
		"Query":           {URL: "https://example.com?a=1"},
		"NegativeIdle":    {IdleTimeout: -time.Second},
		"MaxBelowMin":     {BackoffMin: time.Minute, BackoffMax: time.Second},
		"NegativeLine":    {MaxLineBytes: -1},
		"OverallTimeout":  {HTTPClient: &http.Client{Timeout: time.Minute}},
		"UserInfoIsShown": {URL: "ftp://user:" + testKey + "@example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			_, err := New(cfg)
			is.True(err != nil)
			is.True(!strings.Contains(err.Error(), testKey))
		})
	}
	t.Run("Defaults", func(t *testing.T) {
		is := is.New(t)
		c, err := New(Config{})
		is.NoErr(err)
		is.Equal(c.url, DefaultURL+"/companies")
		is.Equal(c.cfg.IdleTimeout, 90*time.Second)
		is.Equal(c.cfg.BackoffMin, time.Second)
		is.Equal(c.cfg.BackoffMax, 5*time.Minute)
		is.Equal(c.cfg.RateLimitedWait, time.Minute)
		is.Equal(c.cfg.UnauthorizedWait, 5*time.Minute)
		is.Equal(c.cfg.MaxLineBytes, 4<<20)
		is.Equal(c.cfg.GapConfirmWait, 2*time.Second)
		is.Equal(c.cfg.HTTPClient.Timeout, time.Duration(0))
	})
}

// TestIdleWithSystemClock runs the watchdog on real timers, briefly.
func TestIdleWithSystemClock(t *testing.T) {
	is := is.New(t)
	var h *harness
	h = newHarnessSteps(t, func(c *Config) {
		c.Clock = SystemClock{}
		c.IdleTimeout = 150 * time.Millisecond
		c.BackoffMin, c.BackoffMax = time.Millisecond, 2*time.Millisecond
	}, func(s *scriptServer) []step {
		return []step{func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			// Heartbeats every 50 ms keep the connection alive for 300 ms,
			// twice the idle timeout; then silence.
			for range 6 {
				_, _ = w.Write([]byte("\n"))
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
			_, _ = w.Write([]byte(event(9, "00000009") + "\n"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-s.quit:
			}
		}}
	})
	h.start(9, time.Time{})
	h.waitExhausted()
	is.Equal(h.reconnects(ReasonIdle), uint64(1))
	is.Equal(h.counter(`chwatch_stream_lines_total{kind="heartbeat"}`), uint64(6))
	is.Equal(h.srv.requests()[1].RawQuery, "timepoint=10")
}
