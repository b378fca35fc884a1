package stream

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/logging/logtest"
)

// testKey is distinctive so that a leak is easy to grep for.
const testKey = "KEY-zq7Xv41-do-not-leak"

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a manual clock. After records the wait, moves the clock on by
// it and fires at once, so reconnect waits cost no real time; timers fire
// only when the clock moves past them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	waits  []time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	at     time.Time
	active bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	f.now = f.now.Add(d)
	f.fireLocked()
	ch := make(chan time.Time, 1)
	ch <- f.now
	return ch
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{c: f, ch: make(chan time.Time, 1), at: f.now.Add(d), active: true}
	f.timers = append(f.timers, t)
	return t
}

// Advance moves the clock on and fires the timers due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.fireLocked()
}

func (f *fakeClock) fireLocked() {
	keep := f.timers[:0]
	for _, t := range f.timers {
		if t.active && !t.at.After(f.now) {
			t.active = false
			select {
			case t.ch <- f.now:
			default:
			}
		}
		if t.active {
			keep = append(keep, t)
		}
	}
	f.timers = keep
}

func (f *fakeClock) activeTimers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

func (f *fakeClock) Waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at = t.c.now.Add(d)
	if !t.active {
		t.active = true
		t.c.timers = append(t.c.timers, t)
	}
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// request is what the scripted server saw.
type request struct {
	Path, RawQuery, Auth string
}

// step answers one request of the scripted server.
type step func(w http.ResponseWriter, r *http.Request)

// scriptServer answers its n-th request with its n-th step; once the steps
// run out it signals exhausted and holds the request open, silent, until the
// client goes away.
type scriptServer struct {
	*httptest.Server
	mu        sync.Mutex
	steps     []step
	reqs      []request
	exhausted chan struct{}
	once      sync.Once
	quit      chan struct{}
}

func newScript(t testing.TB, steps ...step) *scriptServer {
	s := &scriptServer{steps: steps, exhausted: make(chan struct{}), quit: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		i := len(s.reqs)
		s.reqs = append(s.reqs, request{r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization")})
		var st step
		if i < len(s.steps) {
			st = s.steps[i]
		}
		s.mu.Unlock()
		if st == nil {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			s.once.Do(func() { close(s.exhausted) })
			select {
			case <-r.Context().Done():
			case <-s.quit:
			}
			return
		}
		st(w, r)
	}))
	t.Cleanup(func() {
		close(s.quit)
		s.Close()
	})
	return s
}

func (s *scriptServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func status(code int, body string) step {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// lines answers 200, writes the lines (each followed by a newline) and ends
// the stream.
func lines(ls ...string) step {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for _, l := range ls {
			_, _ = w.Write([]byte(l + "\n"))
		}
	}
}

// linesThenHang is lines, then the connection stays open and silent.
func (s *scriptServer) linesThenHang(ls ...string) step {
	return func(w http.ResponseWriter, r *http.Request) {
		lines(ls...)(w, r)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-s.quit:
		}
	}
}

// hangUp drops the connection without an answer: a network error.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// harness runs a Client against a scripted server with a fake clock.
type harness struct {
	t      testing.TB
	c      *Client
	clock  *fakeClock
	set    *metrics.Set
	srv    *scriptServer
	logs   *logtest.Buffer
	items  chan Item
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, mod func(*Config), steps ...step) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), set: metrics.NewSet(), logs: &logtest.Buffer{}, items: make(chan Item, 1000)}
	h.srv = newScript(t, steps...)
	cfg := Config{
		URL:        h.srv.URL,
		Key:        testKey,
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		Logger:     slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:    h.set,
		Clock:      h.clock,
		Rand:       func() float64 { return 0.5 },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	return h
}

// newHarnessSteps builds a harness whose steps need the server (for hangs).
func newHarnessSteps(t testing.TB, mod func(*Config), steps func(s *scriptServer) []step) *harness {
	h := newHarness(t, mod)
	st := steps(h.srv)
	h.srv.mu.Lock()
	h.srv.steps = st
	h.srv.mu.Unlock()
	return h
}

// start runs the client from timepoint from (0: live), with no cursor.
func (h *harness) start(from int64, lastPublished time.Time) {
	h.run(Start{From: from, LastPublished: lastPublished})
}

func (h *harness) run(start Start) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.c.Run(ctx, start, h.items) }()
	h.t.Cleanup(func() { h.stop() })
}

// waitExhausted waits until the server has answered every step and holds
// the next request.
func (h *harness) waitExhausted() {
	h.t.Helper()
	select {
	case <-h.srv.exhausted:
	case err := <-h.done:
		h.t.Fatalf("Run returned early: %v", err)
	case <-time.After(5 * time.Second):
		h.t.Fatalf("timed out: the server answered %d requests", len(h.srv.requests()))
	}
}

func (h *harness) stop() error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return after cancel")
		return nil
	}
}

// drain returns the items received so far.
func (h *harness) drain() []Item {
	var got []Item
	for {
		select {
		case it := <-h.items:
			got = append(got, it)
		default:
			return got
		}
	}
}

func (h *harness) counter(name string) uint64 {
	return h.set.GetOrCreateCounter(name).Get()
}

func (h *harness) reconnects(reason string) uint64 {
	return h.counter(`chwatch_stream_reconnects_total{reason="` + reason + `"}`)
}

func (h *harness) metricsText() string {
	var b strings.Builder
	h.set.WritePrometheus(&b)
	return b.String()
}

// event builds a minimal valid changed event line.
func event(tp int64, id string) string {
	return `{"resource_kind":"company-profile","resource_uri":"/company/` + id + `","resource_id":"` + id +
		`","data":{"company_number":"` + id + `","company_status":"active"},"event":{"timepoint":` +
		itoa(tp) + `,"published_at":"2026-11-01T10:00:00","type":"changed"}}`
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
