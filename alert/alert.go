// Package alert tells the operator's webhook when a condition of the service
// begins, changes or ends: the stream down for too long, a 401, a gap, a full
// disk, and (from the REST workers) 401/403 from the API, the breaker, dead
// jobs. Callers raise and resolve conditions by kind; the package turns each
// change into a small JSON message, Slack-compatible through its "text", and
// posts it in the background with retries. The caller never blocks: messages
// wait in a bounded queue and what does not fit is dropped and counted. A
// flapping condition cannot flood a channel: at most one message per kind per
// Config.Every, and the changes held back meanwhile are summed up in one
// message ("N more since ...") when the window ends. The webhook URL, which
// usually carries a token, is never logged.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Severity says how urgent a message is.
type Severity string

// Severities. A resolved condition is sent with OK.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
	OK       Severity = "ok"
)

// Kinds of condition. Each kind is one condition: raising it again while it
// holds sends nothing unless its severity or text changed.
const (
	StreamDown         = "stream_down"         // down longer than status.down_warn (warning), status.down_crit (critical)
	StreamUnauthorized = "stream_unauthorized" // the stream answers 401
	Gap                = "gap"                 // an unresolved 416 gap
	DiskFull           = "disk_full"           // commits fail for lack of space; the cursor holds
	APIUnauthorized    = "api_unauthorized"    // the REST API answers 401
	APIForbidden       = "api_forbidden"       // the REST API answers 403
	BreakerOpen        = "breaker_open"        // the REST breaker is open
	DeadJobs           = "dead_jobs"           // jobs past queue.max_attempts
	FeedBacklog        = "feed_backlog"        // a change feed sink has not delivered for longer than status.down_warn
	Test               = "test"                // `chwatch alert test`
)

// Kinds lists every kind, so their metrics exist before first use.
var Kinds = []string{StreamDown, StreamUnauthorized, Gap, DiskFull, APIUnauthorized, APIForbidden, BreakerOpen, DeadJobs, FeedBacklog, Test}

// Message is the JSON body posted. Service, Host, Kind, Text and Time are the
// original fields; Text alone is what Slack shows.
type Message struct {
	Service  string         `json:"service"`
	Host     string         `json:"host"`
	Kind     string         `json:"kind"`
	Text     string         `json:"text"`
	Time     time.Time      `json:"time"`
	Severity Severity       `json:"severity"`
	Resolved bool           `json:"resolved"`
	Since    time.Time      `json:"since"` // when the condition began
	Details  map[string]any `json:"details,omitempty"`
}

// ErrNoURL is returned by Test when no webhook is configured.
var ErrNoURL = errors.New("alert.webhook_url is not set")

// Clock is the time source, injectable so tests never sleep.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Defaults for the zero values of Config.
const (
	DefaultEvery     = 5 * time.Minute
	DefaultQueueSize = 32
	DefaultRetries   = 3
	DefaultRetryWait = 2 * time.Second
	DefaultTimeout   = 10 * time.Second
	// DefaultDrainTimeout bounds the last deliveries at shutdown.
	DefaultDrainTimeout = 3 * time.Second
)

// Config configures an Alerter. Zero values take the defaults.
type Config struct {
	// URL is the webhook; empty: conditions are tracked, logged and
	// counted, nothing is sent.
	URL          string
	Host         string // default os.Hostname()
	Logger       *slog.Logger
	Metrics      *metrics.Set
	Clock        Clock
	Client       *http.Client  // default: a client with a DefaultTimeout timeout
	Every        time.Duration // at most one message per kind per Every
	QueueSize    int           // messages waiting for delivery; beyond, dropped
	Retries      int           // attempts after the first (a negative value: none)
	RetryWait    time.Duration // before the first retry, doubling after
	DrainTimeout time.Duration // Run's last deliveries once ctx is done
}

// Alerter tracks conditions and delivers their messages. Raise and Resolve
// may be called from any goroutine; Run delivers.
type Alerter struct {
	cfg Config
	log *slog.Logger
	out chan Message
	// wake tells Run that a window now holds a message to summarise.
	wake chan struct{}

	mu      sync.Mutex
	active  map[string]*condition
	windows map[string]*window

	m *metricSet
}

type condition struct {
	sev     Severity
	text    string
	since   time.Time
	details map[string]any
}

// window is a kind's rate-limit window: sent is when its last message went
// out; later messages are held (the latest kept, the rest counted) until the
// window ends.
type window struct {
	sent  time.Time
	held  *Message
	count int
}

type metricSet struct {
	set                               *metrics.Set
	sent, failed, suppressed, dropped map[string]*metrics.Counter
	active                            map[string]*metrics.Gauge
}

func (m *metricSet) register(kind string) {
	if _, ok := m.sent[kind]; ok {
		return
	}
	l := `{kind="` + kind + `"}`
	m.sent[kind] = m.set.GetOrCreateCounter("chwatch_alerts_sent_total" + l)
	m.failed[kind] = m.set.GetOrCreateCounter("chwatch_alerts_failed_total" + l)
	m.suppressed[kind] = m.set.GetOrCreateCounter("chwatch_alerts_suppressed_total" + l)
	m.dropped[kind] = m.set.GetOrCreateCounter("chwatch_alerts_dropped_total" + l)
	m.active[kind] = m.set.GetOrCreateGauge("chwatch_alert_active"+l, nil)
}

// New returns an Alerter; its metrics are registered for every kind at once.
func New(cfg Config) *Alerter {
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = DefaultRetryWait
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	a := &Alerter{
		cfg: cfg, log: cfg.Logger.With("component", "alert"),
		out: make(chan Message, cfg.QueueSize), wake: make(chan struct{}, 1),
		active: map[string]*condition{}, windows: map[string]*window{},
		m: &metricSet{set: cfg.Metrics, sent: map[string]*metrics.Counter{}, failed: map[string]*metrics.Counter{},
			suppressed: map[string]*metrics.Counter{}, dropped: map[string]*metrics.Counter{}, active: map[string]*metrics.Gauge{}},
	}
	for _, k := range Kinds {
		a.m.register(k)
	}
	return a
}

// Raise says that condition kind holds. The first call sends a message;
// later calls while it holds send one only when sev or text changed (keep
// text stable for one condition and put what varies, such as the last error,
// in details, which are refreshed silently). Raise never blocks.
func (a *Alerter) Raise(kind string, sev Severity, text string, details map[string]any) {
	now := a.cfg.Clock.Now()
	a.mu.Lock()
	a.m.register(kind)
	c := a.active[kind]
	if c != nil && c.sev == sev && c.text == text {
		c.details = maps.Clone(details)
		a.mu.Unlock()
		return
	}
	if c == nil {
		c = &condition{since: now}
		a.active[kind] = c
		a.m.active[kind].Set(1)
	}
	c.sev, c.text, c.details = sev, text, maps.Clone(details)
	dropped := a.emitLocked(Message{Kind: kind, Text: text, Time: now, Severity: sev, Since: c.since, Details: maps.Clone(details)}, now)
	a.mu.Unlock()
	level := slog.LevelWarn
	switch sev {
	case Critical:
		level = slog.LevelError
	case Info, OK:
		level = slog.LevelInfo
	}
	a.log.Log(context.Background(), level, text, "alert", kind, "severity", sev)
	a.logDropped(dropped, kind)
}

// Resolve says that condition kind no longer holds: if it was raised, a
// recovery message (severity ok, resolved true) is sent. Resolve never
// blocks.
func (a *Alerter) Resolve(kind string) {
	now := a.cfg.Clock.Now()
	a.mu.Lock()
	c := a.active[kind]
	if c == nil {
		a.mu.Unlock()
		return
	}
	delete(a.active, kind)
	a.m.active[kind].Set(0)
	lasted := now.Sub(c.since).Round(time.Second)
	text := fmt.Sprintf("resolved after %s: %s", lasted, c.text)
	details := maps.Clone(c.details)
	if details == nil {
		details = map[string]any{}
	}
	details["lasted_seconds"] = int64(lasted.Seconds())
	dropped := a.emitLocked(Message{Kind: kind, Text: text, Time: now, Severity: OK, Resolved: true, Since: c.since, Details: details}, now)
	a.mu.Unlock()
	a.log.Info(text, "alert", kind, "severity", OK)
	a.logDropped(dropped, kind)
}

// Active reports whether kind is raised.
func (a *Alerter) Active(kind string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active[kind] != nil
}

// emitLocked sends m now, or holds it when its kind's window is still open.
// It reports whether the queue was full.
func (a *Alerter) emitLocked(m Message, now time.Time) (dropped bool) {
	if a.cfg.URL == "" {
		return false
	}
	w := a.windows[m.Kind]
	if w == nil || now.Sub(w.sent) >= a.cfg.Every {
		a.windows[m.Kind] = &window{sent: now}
		return !a.enqueueLocked(m)
	}
	w.held, w.count = &m, w.count+1
	a.m.suppressed[m.Kind].Inc()
	if w.count == 1 {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	return false
}

func (a *Alerter) enqueueLocked(m Message) bool {
	m.Service, m.Host = "chwatch", a.cfg.Host
	m.Time, m.Since = m.Time.UTC(), m.Since.UTC()
	select {
	case a.out <- m:
		return true
	default:
		a.m.dropped[m.Kind].Inc()
		return false
	}
}

func (a *Alerter) logDropped(dropped bool, kind string) {
	if dropped {
		a.log.Warn("alert queue full: alert dropped (the webhook is slow or unreachable)", "alert", kind)
	}
}

// summaryLocked turns a window's held messages into one message: the
// latest, saying how many were held.
func summaryLocked(w *window, now time.Time) Message {
	m := *w.held
	m.Text = fmt.Sprintf("%s (%d more since %s)", m.Text, w.count, w.sent.UTC().Format(time.RFC3339))
	m.Details = maps.Clone(m.Details)
	if m.Details == nil {
		m.Details = map[string]any{}
	}
	m.Details["held_back"] = w.count
	m.Details["held_back_since"] = w.sent.UTC().Format(time.RFC3339)
	m.Time = now
	return m
}

// flushDue sends the summaries of the windows that ended and returns the
// wait until the next one ends (ok false when none is pending).
func (a *Alerter) flushDue() (next time.Duration, ok bool) {
	now := a.cfg.Clock.Now()
	a.mu.Lock()
	var dropped []string
	for kind, w := range a.windows {
		if w.count == 0 {
			continue
		}
		left := a.cfg.Every - now.Sub(w.sent)
		if left > 0 {
			if !ok || left < next {
				next, ok = left, true
			}
			continue
		}
		m := summaryLocked(w, now)
		a.windows[kind] = &window{sent: now}
		if !a.enqueueLocked(m) {
			dropped = append(dropped, kind)
		}
	}
	a.mu.Unlock()
	for _, k := range dropped {
		a.logDropped(true, k)
	}
	return next, ok
}

// Run delivers messages until ctx is done, then makes one last attempt at
// what is queued or held, for at most Config.DrainTimeout.
func (a *Alerter) Run(ctx context.Context) {
	for {
		var timer <-chan time.Time
		if d, ok := a.flushDue(); ok {
			timer = a.cfg.Clock.After(d)
		}
		select {
		case <-ctx.Done():
			a.drain(nil)
			return
		case m := <-a.out:
			if !a.deliver(ctx, m) {
				a.drain(&m)
				return
			}
		case <-a.wake:
		case <-timer:
		}
	}
}

// drain makes one last attempt at unfinished (when not nil), then at what
// is queued or held.
func (a *Alerter) drain(unfinished *Message) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout)
	defer cancel()
	if unfinished != nil {
		a.attempt(ctx, *unfinished, true)
	}
	now := a.cfg.Clock.Now()
	a.mu.Lock()
	for kind, w := range a.windows {
		if w.count > 0 {
			a.enqueueLocked(summaryLocked(w, now))
			a.windows[kind] = &window{sent: now}
		}
	}
	a.mu.Unlock()
	for {
		select {
		case m := <-a.out:
			if ctx.Err() != nil {
				a.m.failed[m.Kind].Inc()
				continue
			}
			a.attempt(ctx, m, true)
		default:
			return
		}
	}
}

// deliver posts m, retrying with a doubling wait, until it is accepted or
// a retry cannot help; it returns false when ctx ended first, m unfinished.
func (a *Alerter) deliver(ctx context.Context, m Message) bool {
	wait := a.cfg.RetryWait
	for try := 0; ; try++ {
		if ctx.Err() != nil {
			return false
		}
		last := try >= a.cfg.Retries
		rctx, cancel := a.inflight(ctx)
		done, retry := a.attempt(rctx, m, last)
		cancel()
		if done || !retry {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-a.cfg.Clock.After(wait):
		}
		wait *= 2
	}
}

// inflight is the context of one post: it outlives ctx by DrainTimeout, so
// a post under way at shutdown finishes instead of being sent twice.
func (a *Alerter) inflight(ctx context.Context) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(a.cfg.DrainTimeout, cancel) })
	return rctx, func() { stop(); cancel() }
}

// attempt posts m once. done: accepted or given up; retry: worth another try.
func (a *Alerter) attempt(ctx context.Context, m Message, last bool) (done, retry bool) {
	code, err := a.post(ctx, m)
	if err == nil && code/100 == 2 {
		a.m.sent[m.Kind].Inc()
		return true, false
	}
	// A 4xx other than timeout or rate limit will not change on retry
	// (a revoked hook, a bad body).
	retry = err != nil || code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
	if !retry || last {
		a.m.failed[m.Kind].Inc()
		attrs := []any{"alert", m.Kind}
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		} else {
			attrs = append(attrs, "status", code)
		}
		a.log.Warn("alert not delivered: the webhook refused it or is unreachable (check alert.webhook_url; `chwatch alert test` tries it)", attrs...)
		return true, false
	}
	return false, true
}

// post sends one message and returns the webhook's status code. Its error
// never holds the URL.
func (a *Alerter) post(ctx context.Context, m Message) (int, error) {
	if m.Service == "" {
		m.Service, m.Host = "chwatch", a.cfg.Host
	}
	body, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("encode alert: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("alert.webhook_url is not a valid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chwatch")
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return 0, stripURL(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// stripURL drops the URL from a client error: it holds the token.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("post alert: %w", ue.Err)
	}
	return errors.New("post alert: request failed")
}

// Test posts one test message now, synchronously and without retries, and
// returns the webhook's status code.
func (a *Alerter) Test(ctx context.Context) (int, error) {
	if a.cfg.URL == "" {
		return 0, ErrNoURL
	}
	now := a.cfg.Clock.Now()
	m := Message{Kind: Test, Text: fmt.Sprintf("chwatch on %s: test alert (chwatch alert test); the webhook works", a.cfg.Host),
		Time: now.UTC(), Severity: Info, Since: now.UTC()}
	code, err := a.post(ctx, m)
	switch {
	case err != nil:
		a.m.failed[Test].Inc()
	case code/100 == 2:
		a.m.sent[Test].Inc()
	default:
		a.m.failed[Test].Inc()
	}
	return code, err
}
