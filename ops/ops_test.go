package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/gaps"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/logging/logtest"
	"github.com/chwatch/chwatch/ops"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/status"
	"github.com/chwatch/chwatch/stream"
	"github.com/matryer/is"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// clock is the heartbeat's time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// fake stands for the stream client (fake[stream.State]) or the processor
// (fake[ingest.State]): the heartbeat only reads their state.
type fake[S any] struct {
	mu sync.Mutex
	s  S
}

func (f *fake[S]) State() S { f.mu.Lock(); defer f.mu.Unlock(); return f.s }
func (f *fake[S]) set(s S) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s = s
}

type fixture struct {
	d      *db.DB
	clock  *clock
	stream *fake[stream.State]
	ingest *fake[ingest.State]
	logs   *logtest.Buffer
	set    *metrics.Set
	beat   *ops.Heartbeat
}

func newFixture(t *testing.T, alerts *alert.Alerter, parts ...ops.Part) *fixture {
	f := &fixture{
		d: dbtest.Open(t), clock: &clock{t: t0}, logs: &logtest.Buffer{}, set: metrics.NewSet(),
		stream: &fake[stream.State]{s: stream.State{Connected: true, Since: t0.Add(-time.Minute)}},
		ingest: &fake[ingest.State]{s: ingest.State{Writable: true, Timepoint: 100}},
	}
	f.beat = ops.New(ops.Config{
		DB: f.d, Stream: f.stream, Ingest: f.ingest, StreamURL: "https://stream.example/companies", Version: "v1.2.3",
		Parts: parts, Alerts: alerts, DownWarn: 5 * time.Minute, DownCrit: 30 * time.Minute, OnGap: "sweep",
		Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Metrics: f.set,
	})
	return f
}

// written is what `chwatch status` would read of the service.
func (f *fixture) written(t *testing.T) status.Service {
	t.Helper()
	kv, err := db.State(context.Background(), f.d.R)
	if err != nil {
		t.Fatal(err)
	}
	return status.ParseService(kv)
}

// A beat writes the service's state as of its clock, with what a part adds;
// the stop is recorded with the same start.
func TestBeatWritesServiceState(t *testing.T) {
	is := is.New(t)
	rest := ops.Part{Report: func(_ context.Context, now time.Time, svc *status.Service) {
		svc.BreakerState, svc.APIBudget = "open", 42
	}}
	f := newFixture(t, nil, rest)
	f.stream.set(stream.State{Connected: true, Since: t0.Add(-time.Minute), Reconnects: 3})
	f.ingest.set(ingest.State{Writable: true, Timepoint: 100, Lag: 2 * time.Second, LastEventAt: t0.Add(-time.Second)})
	ctx := context.Background()
	is.NoErr(f.beat.Beat(ctx))
	svc := f.written(t)
	is.Equal(svc.Version, "v1.2.3")
	is.True(svc.PID > 0)
	is.Equal(svc.StartedAt, t0)
	is.Equal(svc.HeartbeatAt, t0)
	is.Equal(svc.StreamState, "connected")
	is.Equal(svc.StreamSince, t0.Add(-time.Minute)) // since it connected, not since the beat
	is.Equal(svc.StreamURL, "https://stream.example/companies")
	is.Equal(svc.Reconnects, int64(3))
	is.Equal(svc.LagSeconds, 2.0)
	is.Equal(svc.LastEventAt, t0.Add(-time.Second))
	is.Equal(svc.BreakerState, "open") // the part's facts
	is.Equal(svc.APIBudget, int64(42))
	is.True(svc.StoppedAt.IsZero())

	f.clock.set(t0.Add(10 * time.Second))
	is.NoErr(f.beat.Beat(ctx))
	is.Equal(f.written(t).HeartbeatAt, t0.Add(10*time.Second))
	f.clock.set(t0.Add(12 * time.Second))
	is.NoErr(f.beat.Stopped(ctx))
	svc = f.written(t)
	is.Equal(svc.StreamState, "stopped")
	is.Equal(svc.StoppedAt, t0.Add(12*time.Second))
	is.Equal(svc.StartedAt, t0)
}

// Without a REST part nothing is sent, so the breaker is closed and no
// budget is shown.
func TestBeatWithoutParts(t *testing.T) {
	is := is.New(t)
	f := newFixture(t, nil)
	is.NoErr(f.beat.Beat(context.Background()))
	svc := f.written(t)
	is.Equal(svc.BreakerState, "closed")
	is.Equal(svc.APIBudget, int64(-1))
}

// The stream's state carries when it began: down since the first beat that
// saw it down (a reconnect's backoff, then connecting, is one outage), up
// since the client connected, stalled since the stall.
func TestStreamSince(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		name      string
		at        time.Duration
		state     stream.State
		wantState string
		wantSince time.Duration
	}{
		{"Connected", 0, stream.State{Connected: true, Since: at(-time.Minute)}, "connected", -time.Minute},
		{"Backoff", 10 * time.Second, stream.State{LastError: "HTTP 503", NextTry: at(20 * time.Second)}, "backoff", 10 * time.Second},
		{"Connecting", 30 * time.Second, stream.State{LastError: "HTTP 503", NextTry: at(20 * time.Second)}, "connecting", 10 * time.Second},
		{"Unauthorized", 40 * time.Second, stream.State{Unauthorized: true, LastError: "HTTP 401", NextTry: at(time.Hour)}, "unauthorized", 10 * time.Second},
		{"BackAgain", 50 * time.Second, stream.State{Connected: true, Since: at(45 * time.Second)}, "connected", 45 * time.Second},
		{"Stalled", 60 * time.Second, stream.State{Stalled: true, StalledSince: at(55 * time.Second), LastError: "no line within stream.line_timeout"}, "stalled", 55 * time.Second},
	}
	f := newFixture(t, nil)
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			is := is.New(t)
			f.stream.set(s.state)
			f.clock.set(at(s.at))
			is.NoErr(f.beat.Beat(context.Background()))
			svc := f.written(t)
			is.Equal(svc.StreamState, s.wantState)
			is.Equal(svc.StreamSince, at(s.wantSince))
			is.Equal(svc.StreamError, s.state.LastError)
		})
	}
}

// /healthz answers 200 while the stream is up or retrying and the database
// writable, 503 with the reasons otherwise, a part's reasons and facts
// included.
func TestHealthz(t *testing.T) {
	type want struct {
		code   int
		reason string
	}
	tests := []struct {
		name   string
		stream stream.State
		ingest ingest.State
		part   []string
		want   want
	}{
		{"Connected", stream.State{Connected: true, Since: t0}, ingest.State{Writable: true}, nil, want{200, ""}},
		{"Backoff", stream.State{LastError: "HTTP 503", NextTry: t0.Add(time.Minute)}, ingest.State{Writable: true}, nil, want{200, ""}},
		{"Unauthorized", stream.State{Unauthorized: true, LastError: "HTTP 401"}, ingest.State{Writable: true}, nil, want{503, "stream answers 401 (bad stream key)"}},
		{"Stalled", stream.State{Stalled: true, StalledSince: t0}, ingest.State{Writable: true}, nil, want{503, "stream stalled: lines arrive too slowly"}},
		{"DiskFull", stream.State{Connected: true, Since: t0}, ingest.State{DiskFull: true, LastError: "database or disk is full"}, nil, want{503, "disk full: the cursor holds until space returns"}},
		{"NotWritable", stream.State{Connected: true, Since: t0}, ingest.State{LastError: "attempt to write a readonly database"}, nil, want{503, "database not writable"}},
		{"PartUnhealthy", stream.State{Connected: true, Since: t0}, ingest.State{Writable: true}, []string{"API answers 403"}, want{503, "API answers 403"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			part := ops.Part{Health: func(context.Context, time.Time) (map[string]any, []string) {
				return map[string]any{"breaker": "closed"}, tt.part
			}}
			f := newFixture(t, nil, part)
			f.stream.set(tt.stream)
			f.ingest.set(tt.ingest)
			srv := httptest.NewServer(ops.Handler(f.beat, f.set))
			defer srv.Close()
			res, err := http.Get(srv.URL + "/healthz")
			is.NoErr(err)
			defer res.Body.Close()
			is.Equal(res.StatusCode, tt.want.code)
			is.Equal(res.Header.Get("Content-Type"), "application/json")
			var body struct {
				OK       bool     `json:"ok"`
				Stream   string   `json:"stream"`
				Writable bool     `json:"database_writable"`
				Reasons  []string `json:"reasons"`
				Breaker  string   `json:"breaker"`
			}
			is.NoErr(json.NewDecoder(res.Body).Decode(&body))
			is.Equal(body.OK, tt.want.code == 200)
			is.Equal(body.Writable, tt.ingest.Writable)
			is.Equal(body.Breaker, "closed") // the part's fact
			if tt.want.reason == "" {
				is.Equal(len(body.Reasons), 0)
				return
			}
			is.Equal(len(body.Reasons), 1)
			is.True(strings.HasPrefix(body.Reasons[0], tt.want.reason))
		})
	}
}

// /metrics serves the sets it is given, the queue's depth the heartbeat
// keeps, and the Go and process metrics; /healthz and /metrics answer GET
// only.
func TestMetrics(t *testing.T) {
	is := is.New(t)
	f := newFixture(t, nil)
	ctx := context.Background()
	other := metrics.NewSet()
	other.NewCounter(`chwatch_stream_events_total{outcome="applied"}`).Add(7)
	is.NoErr(f.d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := queue.EnqueueNow(ctx, tx, queue.Officers, "SC000001", t0)
		return err
	}))
	is.NoErr(f.beat.Beat(ctx)) // the first beat reads the depth
	srv := httptest.NewServer(ops.Handler(f.beat, other, f.set))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	is.NoErr(err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	is.Equal(res.StatusCode, 200)
	is.True(strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain"))
	for _, want := range []string{`chwatch_stream_events_total{outcome="applied"} 7`, `chwatch_queue_depth{kind="officers",state="queued"} 1`,
		`chwatch_queue_depth{kind="status_check",state="dead"} 0`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	res, err = http.Post(srv.URL+"/healthz", "application/json", nil)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusMethodNotAllowed)
}

// The progress line comes every ProgressEvery of the heartbeat's clock,
// with the events since the last one; the queue's depth is refreshed with
// it.
func TestProgress(t *testing.T) {
	is := is.New(t)
	f := newFixture(t, nil)
	ctx := context.Background()
	f.ingest.set(ingest.State{Writable: true, Timepoint: 100, Events: 1000})
	is.NoErr(f.beat.Beat(ctx))
	is.True(!strings.Contains(f.logs.String(), "progress"))
	is.NoErr(f.d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := queue.EnqueueNow(ctx, tx, queue.StatusCheck, "SC000001", t0)
		return err
	}))
	f.ingest.set(ingest.State{Writable: true, Timepoint: 1600, Events: 1600})
	f.clock.set(t0.Add(ops.ProgressEvery - time.Second))
	is.NoErr(f.beat.Beat(ctx))
	is.True(!strings.Contains(f.logs.String(), "progress"))
	f.clock.set(t0.Add(ops.ProgressEvery))
	is.NoErr(f.beat.Beat(ctx))
	l := f.logs.String()
	is.True(strings.Contains(l, "msg=progress stream=connected timepoint=1600 events=600 per_second=20"))
	var out bytes.Buffer
	f.set.WritePrometheus(&out)
	is.True(strings.Contains(out.String(), `chwatch_queue_depth{kind="status_check",state="queued"} 1`))
}

// webhook collects what the alerter posts.
type webhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []alert.Message
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m alert.Message
		json.NewDecoder(r.Body).Decode(&m)
		w.mu.Lock()
		w.got = append(w.got, m)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// next waits for the message after the first n.
func (w *webhook) next(t *testing.T, n int) alert.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		if len(w.got) > n {
			m := w.got[n]
			w.mu.Unlock()
			return m
		}
		w.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no alert %d within 10s", n+1)
	return alert.Message{}
}

func (w *webhook) count() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.got) }

// Each beat routes what it sees to the alerts, and the operator's webhook
// hears of each change once: the stream down past status.down_warn, then
// past status.down_crit, and back; a 401; a full disk and its end; a gap
// and its resolution; dead jobs.
func TestAlertRouting(t *testing.T) {
	is := is.New(t)
	hook := newWebhook(t)
	alerts := alert.New(alert.Config{URL: hook.srv.URL, Every: time.Nanosecond, Retries: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); alerts.Run(ctx) }()
	defer func() { cancel(); <-done }()
	f := newFixture(t, alerts)
	n := 0
	beat := func(at time.Duration) {
		t.Helper()
		f.clock.set(t0.Add(at))
		is.NoErr(f.beat.Beat(ctx))
	}
	expect := func(kind string, sev alert.Severity, resolved bool, text string) alert.Message {
		t.Helper()
		m := hook.next(t, n)
		n++
		if m.Kind != kind || m.Severity != sev || m.Resolved != resolved || !strings.Contains(m.Text, text) {
			t.Fatalf("alert %d: got %s %s resolved=%v %q, want %s %s resolved=%v containing %q", n, m.Kind, m.Severity, m.Resolved, m.Text, kind, sev, resolved, text)
		}
		return m
	}

	beat(0) // connected, writable, no gap, no job: nothing to say
	f.stream.set(stream.State{LastError: "HTTP 503", NextTry: t0.Add(time.Hour)})
	beat(time.Second) // down since now
	beat(5*time.Minute + 999*time.Millisecond)
	is.Equal(hook.count(), 0) // not yet past down_warn
	beat(5*time.Minute + time.Second)
	m := expect(alert.StreamDown, alert.Warning, false, "stream down for more than 5m0s (since 2026-11-20T10:00:01Z): HTTP 503")
	is.Equal(m.Details["down_seconds"], float64(300))
	f.stream.set(stream.State{LastError: "HTTP 502", NextTry: t0.Add(time.Hour)})
	beat(6 * time.Minute) // another error, same condition: no new message
	beat(30*time.Minute + time.Second)
	expect(alert.StreamDown, alert.Critical, false, "stream down for more than 30m0s")
	f.stream.set(stream.State{Connected: true, Since: t0.Add(31 * time.Minute)})
	beat(31 * time.Minute)
	expect(alert.StreamDown, alert.OK, true, "resolved after")

	f.stream.set(stream.State{Unauthorized: true, LastError: "HTTP 401", NextTry: t0.Add(time.Hour)})
	beat(32 * time.Minute)
	expect(alert.StreamUnauthorized, alert.Critical, false, "the stream answers 401")
	f.stream.set(stream.State{Connected: true, Since: t0.Add(33 * time.Minute)})
	beat(33 * time.Minute)
	expect(alert.StreamUnauthorized, alert.OK, true, "resolved after")

	f.ingest.set(ingest.State{DiskFull: true, LastError: "database or disk is full"})
	beat(34 * time.Minute)
	m = expect(alert.DiskFull, alert.Critical, false, "disk full: chwatch cannot commit")
	is.Equal(m.Details["last_error"], "database or disk is full")
	f.ingest.set(ingest.State{Writable: true})
	beat(35 * time.Minute)
	expect(alert.DiskFull, alert.OK, true, "resolved after")

	var id int64
	is.NoErr(f.d.WriteTx(ctx, func(tx db.Tx) error {
		var err error
		id, err = gaps.RecordTx(ctx, tx, ingest.StreamName, 11, 2000, t0, t0.Add(time.Hour), t0, "416")
		return err
	}))
	beat(36 * time.Minute)
	expect(alert.Gap, alert.Warning, false, "stream gap 1: timepoints 11 to 2000 could not be replayed (416): events were lost; every strike-off company is queued")
	_, err := gaps.Resolve(ctx, f.d, id, "checked", t0)
	is.NoErr(err)
	beat(37 * time.Minute)
	expect(alert.Gap, alert.OK, true, "resolved after")

	q := queue.New(f.d, queue.Options{MaxAttempts: 1, Now: f.clock.Now})
	is.NoErr(f.d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := queue.EnqueueNow(ctx, tx, queue.Officers, "SC000001", t0)
		return err
	}))
	j, ok, err := q.Claim(ctx)
	is.NoErr(err)
	is.True(ok)
	is.NoErr(q.Fail(ctx, j, io.ErrUnexpectedEOF))
	beat(38 * time.Minute) // the dead job is seen with the next progress line
	m = expect(alert.DeadJobs, alert.Warning, false, "dead jobs")
	is.Equal(m.Details["dead"], float64(1))
	is.Equal(hook.count(), n) // nothing else
}
