package stream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/VictoriaMetrics/metrics"
)

// Defaults for the zero values of Config.
const (
	DefaultURL              = "https://stream.companieshouse.gov.uk"
	DefaultIdleTimeout      = 90 * time.Second
	DefaultBackoffMin       = time.Second
	DefaultBackoffMax       = 5 * time.Minute
	DefaultRateLimitedWait  = 60 * time.Second
	DefaultUnauthorizedWait = 5 * time.Minute
	DefaultMaxLineBytes     = 4 << 20
	DefaultGapConfirmWait   = 2 * time.Second
	DefaultLineTimeout      = 60 * time.Second
	// DefaultMaxTimepointJump bounds how far beyond the previous timepoint
	// of a connection an event may be. The companies stream has received
	// about 26,000 events a day (47.7 million by August 2022) and keeps 3 to
	// 7 days: a million is over a month of events and five times the longest
	// replay window, while a corrupt or hostile timepoint is off by far more.
	DefaultMaxTimepointJump int64 = 1_000_000
)

// jumpReconnectAfter is how many implausible timepoints in a row end a
// connection: the stream itself has moved on (renumbered, or served from
// somewhere else), and resuming from our own position lets it say so with
// a 416, which the gap path handles.
const jumpReconnectAfter = 100

// earlyEOF is how soon after connecting an end of stream with no event
// counts as a failure rather than a normal close.
const earlyEOF = 5 * time.Second

// Reconnect reasons, the values of the reason label of
// chwatch_stream_reconnects_total.
const (
	ReasonEOF         = "eof"       // normal end of stream after a while
	ReasonEarlyEOF    = "early_eof" // end of stream soon after connecting, no event
	ReasonIdle        = "idle"      // no byte for IdleTimeout
	ReasonSlowLine    = "slow_line" // a line took longer than LineTimeout to arrive
	ReasonNetwork     = "network"   // dial, TLS or read error
	Reason5xx         = "5xx"
	Reason429         = "429"
	Reason401         = "401"
	Reason416         = "416"
	ReasonOtherStatus = "other"                 // any other unexpected HTTP status
	ReasonImplausible = "implausible_timepoint" // many timepoints in a row far beyond the last
)

const (
	companiesPath      = "/companies"
	errorBodyExcerpt   = 200
	unauthorizedLogMsg = "stream key refused (401): check stream.key / CHWATCH_STREAM_KEY; retrying"
)

var reconnectReasons = []string{ReasonEOF, ReasonEarlyEOF, ReasonIdle, ReasonSlowLine, ReasonNetwork, Reason5xx, Reason429, Reason401, Reason416, ReasonOtherStatus, ReasonImplausible}

// Config configures a Client. Zero values take the defaults above.
type Config struct {
	// URL is the stream base URL; the client requests URL + "/companies".
	URL string
	// Key is the stream key, sent as the Basic auth user name with an empty
	// password. It never appears in logs, errors, State or metrics.
	Key string
	// IdleTimeout: reconnect when no byte at all (not even a heartbeat)
	// arrives for this long.
	IdleTimeout time.Duration
	// LineTimeout: reconnect when a line takes longer than this from its
	// first byte to its end (a connection trickling bytes keeps the idle
	// watchdog fed but delivers nothing). Time waiting on the consumer does
	// not count.
	LineTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff with full
	// jitter between reconnects after failures.
	BackoffMin, BackoffMax time.Duration
	// RateLimitedWait is the least wait after a 429.
	RateLimitedWait time.Duration
	// UnauthorizedWait is the wait between tries after a 401.
	UnauthorizedWait time.Duration
	// MaxLineBytes: a longer line is rejected without being buffered whole.
	MaxLineBytes int
	// GapConfirmWait is the wait before confirming a 416 once.
	GapConfirmWait time.Duration
	// MaxTimepointJump: an event whose timepoint is more than this beyond
	// the previous one of its connection (or beyond the one asked for) is
	// rejected. Only the first event of a live connection may jump.
	MaxTimepointJump int64
	// HTTPClient must have no overall Timeout (the stream is long-lived).
	// Default: a client with dial, TLS handshake and response header timeouts.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Metrics is the set the client registers its metrics on (a private set
	// when nil).
	Metrics *metrics.Set
	// Clock defaults to SystemClock.
	Clock Clock
	// Rand returns a number in [0, 1) for jitter; default math/rand/v2.
	Rand func() float64
}

// Client reads the companies stream. Run it once at a time; State may be
// called from any goroutine.
type Client struct {
	cfg   Config
	url   string // base + /companies, without query
	shown string // url with any user info redacted, for messages
	auth  string // Authorization header value; never shown
	log   *slog.Logger
	clock Clock
	m     clientMetrics

	// consumer is set while the client is blocked handing an item over
	// (tests wait on it to simulate a slow consumer deterministically).
	consumer atomic.Bool

	mu    sync.Mutex
	state State
}

type clientMetrics struct {
	connected      *metrics.Gauge
	reconnects     map[string]*metrics.Counter
	linesEvent     *metrics.Counter
	linesHeartbeat *metrics.Counter
	linesReject    *metrics.Counter
	bytes          *metrics.Counter
}

// New validates cfg, fills in its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("stream.url %q: want an http or https base URL such as %s", redactURL(cfg.URL), DefaultURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("stream.url %q: want a base URL without query or fragment; %q is appended", redactURL(cfg.URL), companiesPath)
	}
	durations := []struct {
		key string
		v   *time.Duration
		def time.Duration
	}{
		{"stream.idle_timeout", &cfg.IdleTimeout, DefaultIdleTimeout},
		{"stream.line_timeout", &cfg.LineTimeout, DefaultLineTimeout},
		{"stream.backoff_min", &cfg.BackoffMin, DefaultBackoffMin},
		{"stream.backoff_max", &cfg.BackoffMax, DefaultBackoffMax},
		{"stream.rate_limited_wait", &cfg.RateLimitedWait, DefaultRateLimitedWait},
		{"stream.unauthorized_wait", &cfg.UnauthorizedWait, DefaultUnauthorizedWait},
		{"stream gap confirm wait", &cfg.GapConfirmWait, DefaultGapConfirmWait},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return nil, fmt.Errorf("%s %s: want a positive duration, or 0 for the default %s", d.key, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		return nil, fmt.Errorf("stream.backoff_max %s is below stream.backoff_min %s: raise backoff_max", cfg.BackoffMax, cfg.BackoffMin)
	}
	if cfg.MaxLineBytes < 0 {
		return nil, fmt.Errorf("stream.max_line_bytes %d: want a positive size, or 0 for the default %d", cfg.MaxLineBytes, DefaultMaxLineBytes)
	}
	if cfg.MaxLineBytes == 0 {
		cfg.MaxLineBytes = DefaultMaxLineBytes
	}
	if cfg.MaxTimepointJump < 0 {
		return nil, fmt.Errorf("stream timepoint jump bound %d: want a positive number, or 0 for the default %d", cfg.MaxTimepointJump, DefaultMaxTimepointJump)
	}
	if cfg.MaxTimepointJump == 0 {
		cfg.MaxTimepointJump = DefaultMaxTimepointJump
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	} else if cfg.HTTPClient.Timeout != 0 {
		return nil, fmt.Errorf("stream HTTP client has an overall Timeout of %s: the stream is long-lived, use transport timeouts instead", cfg.HTTPClient.Timeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}

	c := &Client{
		cfg:   cfg,
		url:   strings.TrimSuffix(cfg.URL, "/") + companiesPath,
		log:   cfg.Logger.With("component", "stream"),
		clock: cfg.Clock,
	}
	c.shown = redactURL(c.url)
	if cfg.Key != "" {
		c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Key+":"))
	}
	s := cfg.Metrics
	c.m = clientMetrics{
		connected:      s.GetOrCreateGauge("chwatch_stream_connected", nil),
		reconnects:     make(map[string]*metrics.Counter, len(reconnectReasons)),
		linesEvent:     s.GetOrCreateCounter(`chwatch_stream_lines_total{kind="event"}`),
		linesHeartbeat: s.GetOrCreateCounter(`chwatch_stream_lines_total{kind="heartbeat"}`),
		linesReject:    s.GetOrCreateCounter(`chwatch_stream_lines_total{kind="reject"}`),
		bytes:          s.GetOrCreateCounter("chwatch_stream_bytes_total"),
	}
	for _, r := range reconnectReasons {
		c.m.reconnects[r] = s.GetOrCreateCounter(`chwatch_stream_reconnects_total{reason="` + r + `"}`)
	}
	return c, nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          2,
		ForceAttemptHTTP2:     true,
	}}
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// State returns a snapshot of the client's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *Client) update(f func(s *State)) {
	c.mu.Lock()
	f(&c.state)
	c.mu.Unlock()
}

func (c *Client) setConnected(v bool) {
	now := c.clock.Now()
	c.update(func(s *State) {
		if s.Connected != v {
			s.Connected = v
			s.Since = now
		}
		if v {
			s.NextTry = time.Time{}
		}
	})
	if v {
		c.m.connected.Set(1)
	} else {
		c.m.connected.Set(0)
	}
}

// session is what one Run remembers across connections.
type session struct {
	out           chan<- Item
	next          int64 // timepoint to ask for; 0 = live
	lastPublished time.Time
	failures      int  // consecutive failures, for the backoff
	confirming    bool // the next connection confirms a 416
	gap           *Gap // pending: sent before the first live event
}

// outcome is how one connection ended.
type outcome struct {
	status      int   // HTTP status, 0 when none was received
	err         error // why it ended, for State.LastError
	eof         bool  // the body ended
	idle        bool  // the idle watchdog cut it
	slowLine    bool  // the line timeout cut it
	implausible bool  // too many implausible timepoints in a row
	events      int   // events received on it
	connected   time.Duration
}

var (
	errIdle     = errors.New("idle")
	errSlowLine = errors.New("slow line")
)

// Start says where Run begins.
type Start struct {
	// Cursor is the highest timepoint already recorded (0: none). Run
	// resumes at Cursor + 1.
	Cursor int64
	// From is where a stream without a cursor begins (0: live).
	From int64
	// LastPublished is the published_at of the cursor's event, for
	// Gap.FromTime.
	LastPublished time.Time
}

// Resume is the first timepoint a start asks for (0: live), and whether it
// can be resumed at all: no timepoint follows the largest one, so a cursor
// there (only a corrupt timepoint could have put it there) cannot be.
func (st Start) Resume() (next int64, ok bool) {
	switch {
	case st.Cursor == math.MaxInt64:
		return 0, false
	case st.Cursor > 0:
		return st.Cursor + 1, true
	}
	return max(st.From, 0), true
}

// Run streams until ctx is done and returns ctx.Err(). It resumes after
// start.Cursor, or begins at start.From without one. A cursor it cannot
// resume from is never silently turned into a live start: it logs why and
// sends a Gap before the first live event. Items are sent on out in arrival
// order; Run blocks while out is full and never drops an item.
func (c *Client) Run(ctx context.Context, start Start, out chan<- Item) error {
	next, ok := start.Resume()
	s := &session{out: out, next: next, lastPublished: start.LastPublished}
	if !ok {
		s.gap = &Gap{
			FromTimepoint: start.Cursor,
			FromTime:      start.LastPublished,
			Reason:        fmt.Sprintf("cursor %d cannot be resumed from (no timepoint follows it); started live", start.Cursor),
		}
		c.log.Error("the cursor cannot be resumed from: starting live and recording a gap", "cursor", start.Cursor)
	}
	defer c.setConnected(false)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		o := c.connect(ctx, s)
		c.setConnected(false)
		if err := ctx.Err(); err != nil {
			return err
		}
		wait, reason := c.decide(s, o)
		c.m.reconnects[reason].Inc()
		next := c.clock.Now().Add(wait)
		c.update(func(st *State) {
			st.Reconnects++
			st.NextTry = next
			if o.err != nil {
				st.LastError = o.err.Error()
			}
		})
		attrs := []any{"reason", reason, "wait", wait, "next_timepoint", s.next}
		if o.err != nil {
			attrs = append(attrs, "err", o.err.Error())
		}
		switch reason {
		case Reason401:
			c.log.Error(unauthorizedLogMsg, attrs...)
		case ReasonEOF:
			c.log.Info("stream closed, reconnecting", attrs...)
		default:
			c.log.Warn("stream connection failed, reconnecting", attrs...)
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.clock.After(wait):
			}
		}
	}
}

// backoff returns the wait after the n-th consecutive failure (n >= 1):
// uniform between BackoffMin and min(BackoffMax, BackoffMin * 2^n).
func (c *Client) backoff(n int) time.Duration {
	lo, hi := float64(c.cfg.BackoffMin), float64(c.cfg.BackoffMax)
	ceil := math.Min(hi, lo*math.Pow(2, float64(min(max(n, 1), 62))))
	r := c.cfg.Rand()
	if r < 0 || r >= 1 || math.IsNaN(r) {
		r = 0.5
	}
	return time.Duration(lo + r*(ceil-lo))
}

// decide applies the reconnect policy to how a connection ended: it returns
// the wait before the next attempt and the reason label.
func (c *Client) decide(s *session, o outcome) (time.Duration, string) {
	fail := func(reason string) (time.Duration, string) {
		s.failures++
		return c.backoff(s.failures), reason
	}
	switch {
	case o.status == http.StatusOK:
		switch {
		case o.implausible:
			return fail(ReasonImplausible)
		case o.slowLine:
			now := c.clock.Now()
			c.update(func(st *State) {
				if !st.Stalled {
					st.Stalled, st.StalledSince = true, now
				}
			})
			return fail(ReasonSlowLine)
		case o.eof && o.events == 0 && o.connected < earlyEOF:
			return fail(ReasonEarlyEOF)
		case o.eof:
			s.failures = 0
			return time.Duration(c.cfg.Rand() * float64(c.cfg.BackoffMin)), ReasonEOF
		case o.idle:
			return fail(ReasonIdle)
		default:
			return fail(ReasonNetwork)
		}
	case o.status == http.StatusUnauthorized:
		s.failures++
		c.update(func(st *State) { st.Unauthorized = true })
		return c.cfg.UnauthorizedWait, Reason401
	case o.status == http.StatusTooManyRequests:
		wait, reason := fail(Reason429)
		return max(wait, c.cfg.RateLimitedWait), reason
	case o.status == http.StatusRequestedRangeNotSatisfiable:
		switch {
		case s.next == 0:
			// A 416 without a timepoint makes no sense; treat it as a failure.
			return fail(Reason416)
		case !s.confirming:
			s.confirming = true
			c.log.Warn("stream refused the timepoint (416), confirming once", "timepoint", s.next, "wait", c.cfg.GapConfirmWait)
			return c.cfg.GapConfirmWait, Reason416
		default:
			s.confirming = false
			s.gap = &Gap{
				FromTimepoint: s.next,
				FromTime:      s.lastPublished,
				Reason:        fmt.Sprintf("timepoint %d refused twice as invalid or too old (416); reconnected live", s.next),
			}
			c.log.Error("stream timepoint too old (416, confirmed): events were lost, reconnecting live", "timepoint", s.next)
			s.next = 0
			return 0, Reason416
		}
	case o.status >= 500:
		return fail(Reason5xx)
	case o.status != 0:
		return fail(ReasonOtherStatus)
	case o.idle:
		return fail(ReasonIdle)
	default:
		return fail(ReasonNetwork)
	}
}

// connect makes one connection and reads it until it ends.
func (c *Client) connect(ctx context.Context, s *session) outcome {
	connCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, shown, err := c.request(connCtx, s.next)
	if err != nil {
		return outcome{err: err}
	}

	// The watchdog: activity holds the clock time of the last byte (or of
	// the end of a wait on the consumer, who is not the server's fault),
	// busy is set while blocked on out, and lineStart times the line being
	// read.
	w := &watch{clock: c.clock, idle: c.cfg.IdleTimeout, line: c.cfg.LineTimeout, busy: &c.consumer}
	w.touch()
	t := c.clock.NewTimer(w.period())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		w.run(connCtx, t, cancel)
	}()
	defer func() { cancel(nil); <-stopped }()

	resp, o := c.open(connCtx, req, shown)
	if resp == nil {
		return o
	}
	defer resp.Body.Close()
	c.setConnected(true)
	c.update(func(st *State) { st.Unauthorized = false })
	c.log.Info("stream connected", "url", shown)
	r := &reading{s: s, w: w, start: c.clock.Now(), prev: max(s.next-1, 0), o: outcome{status: http.StatusOK}}
	r.lr = newLineReader(&countingReader{r: resp.Body, c: c, w: w}, c.cfg.MaxLineBytes)
	return c.read(connCtx, r)
}

// request builds the request for a connection resuming at next (0: live),
// and the URL as logs may show it.
func (c *Client) request(ctx context.Context, next int64) (*http.Request, string, error) {
	u, shown := c.url, c.shown
	if next > 0 {
		q := "?timepoint=" + strconv.FormatInt(next, 10)
		u, shown = u+q, shown+q
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("build stream request for %s: %w", c.shown, err)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "chwatch")
	return req, shown, nil
}

// open sends req and returns the response when it is a 200; otherwise the
// outcome says why not.
func (c *Client) open(ctx context.Context, req *http.Request, shown string) (*http.Response, outcome) {
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), errIdle) {
			return nil, outcome{idle: true, err: fmt.Errorf("connect to %s: no response within %s", shown, c.cfg.IdleTimeout)}
		}
		return nil, outcome{err: fmt.Errorf("connect to %s: %w", shown, stripURLError(err))}
	}
	c.update(func(st *State) { st.LastStatus = resp.StatusCode })
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyExcerpt))
		return nil, outcome{status: resp.StatusCode, err: fmt.Errorf("connect to %s: HTTP %d: %s", shown, resp.StatusCode, printable(body))}
	}
	return resp, outcome{}
}

// reading is one connection being read.
type reading struct {
	s     *session
	w     *watch
	lr    *lineReader
	start time.Time // when it connected
	// prev is the highest timepoint accepted on this connection, or the one
	// before the timepoint asked for; 0 on a live connection until its
	// first event, which may be anywhere. jumps counts implausible
	// timepoints in a row.
	prev  int64
	jumps int
	o     outcome
}

// read hands the connection's lines over as items until it ends, and says
// how it ended.
func (c *Client) read(ctx context.Context, r *reading) outcome {
	for {
		r.w.beginLine(r.lr.br.Buffered() > 0)
		l, err := r.lr.next()
		r.w.endLine()
		if err != nil {
			c.ended(ctx, r, err)
			return r.o
		}
		now := c.clock.Now()
		if l.kind == lineHeartbeat {
			c.m.linesHeartbeat.Inc()
			if now.Sub(r.start) >= c.cfg.LineTimeout {
				// Lines keep completing on a connection older than the
				// line timeout: whatever stalled before, this one flows.
				c.clearStalled()
			}
			continue
		}
		items, n := c.items(r, l, now)
		for _, it := range items[:n] {
			if !c.deliver(ctx, r, it) {
				// ctx done (or the watchdog fired, which it does not while
				// sending); the item is not delivered and will be fetched again.
				r.o.err = context.Cause(ctx)
				return r.o
			}
		}
		if r.jumps >= jumpReconnectAfter {
			r.o.connected = c.clock.Now().Sub(r.start)
			r.o.implausible = true
			r.o.err = fmt.Errorf("read %s: %d timepoints in a row more than %d beyond %d; resuming from %d", c.shown, r.jumps, c.cfg.MaxTimepointJump, r.prev, r.s.next)
			return r.o
		}
	}
}

// ended records in r's outcome why reading stopped with err.
func (c *Client) ended(ctx context.Context, r *reading, err error) {
	o := &r.o
	o.connected = c.clock.Now().Sub(r.start)
	switch {
	case errors.Is(context.Cause(ctx), errIdle):
		o.idle = true
		o.err = fmt.Errorf("read %s: no byte for %s", c.shown, c.cfg.IdleTimeout)
	case errors.Is(context.Cause(ctx), errSlowLine):
		o.slowLine = true
		o.err = fmt.Errorf("read %s: a line took longer than stream.line_timeout (%s) to arrive (%d bytes so far): the connection trickles", c.shown, c.cfg.LineTimeout, r.lr.partial)
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		o.eof = true
		o.err = fmt.Errorf("read %s: end of stream after %s", c.shown, o.connected.Round(time.Millisecond))
	default:
		o.err = fmt.Errorf("read %s: %w", c.shown, err)
	}
	if r.lr.partial > 0 {
		c.log.Debug("stream cut mid-line; the line will be fetched again", "bytes", r.lr.partial)
	}
}

// items turns a line (not a heartbeat) into what it hands over: a reject,
// or an event, preceded by the pending gap when it is the first event after
// one. An array, not a slice: this runs for every line.
func (c *Client) items(r *reading, l rawLine, now time.Time) (items [2]Item, n int) {
	if l.kind == lineOversized {
		items[0] = Item{Reject: &Reject{
			Reason:     ReasonOversized,
			Bytes:      l.size,
			Excerpt:    append([]byte(nil), l.head...),
			Timepoint:  l.timepoint,
			ReceivedAt: now,
		}}
		return items, 1
	}
	it, _ := Decode(l.data, now)
	if ev := it.Event; ev != nil {
		if c.plausible(r.prev, ev.Timepoint) {
			r.prev, r.jumps = max(r.prev, ev.Timepoint), 0
		} else {
			r.jumps++
			it = implausible(ev, r.prev)
		}
	}
	if it.Event != nil && r.s.gap != nil {
		// The gap stays pending until deliver has handed it over.
		g := r.s.gap
		g.ToTimepoint, g.ToTime = it.Event.Timepoint, it.Event.PublishedAt
		items[n] = Item{Gap: g}
		n++
	}
	items[n] = it
	return items, n + 1
}

// deliver counts it, sends it, and once it is handed over moves the
// resume point past an event (or clears the pending gap it carries); false
// when ctx ended first. The order matters: an item ctx cut off is not
// delivered, so the next connection must ask for it again.
func (c *Client) deliver(ctx context.Context, r *reading, it Item) bool {
	var tp int64
	switch {
	case it.Event != nil:
		c.m.linesEvent.Inc()
		c.clearStalled()
		r.o.events++
		tp = it.Event.Timepoint
		if !it.Event.PublishedAt.IsZero() {
			r.s.lastPublished = it.Event.PublishedAt
		}
	case it.Reject != nil:
		// A rejected line never moves the resume point, even with a
		// recovered timepoint: it is not an event (SPEC.md), and a
		// reconnect should ask for that timepoint again.
		c.m.linesReject.Inc()
		c.log.Debug("stream line rejected", "reason", it.Reject.Reason, "bytes", it.Reject.Bytes, "recovered_timepoint", it.Reject.Timepoint)
	}
	if !r.w.send(ctx, r.s.out, it) {
		return false
	}
	if it.Gap != nil {
		r.s.gap = nil
	}
	if tp > 0 && tp >= r.s.next {
		r.s.next = tp + 1
		c.update(func(st *State) { st.Timepoint = tp })
	}
	if r.o.events > 0 {
		r.s.failures = 0
	}
	return true
}

// plausible reports whether an event at tp may follow prev on one
// connection (prev 0: the first event of a live connection, which may be
// anywhere). No timepoint follows the largest one, so it is never
// plausible: resuming after it would be impossible.
func (c *Client) plausible(prev, tp int64) bool {
	if tp == math.MaxInt64 {
		return false
	}
	return prev <= 0 || tp <= prev || tp-prev <= c.cfg.MaxTimepointJump
}

// implausible turns an event with an implausible timepoint into a reject:
// it never moves the cursor, and its timepoint is kept for the operator.
func implausible(ev *Event, prev int64) Item {
	n := min(len(ev.Raw), excerptBytes)
	return Item{Reject: &Reject{
		Reason:     ReasonImplausibleTimepoint,
		Bytes:      int64(len(ev.Raw)),
		Excerpt:    append([]byte(nil), ev.Raw[:n]...),
		Timepoint:  ev.Timepoint,
		After:      prev,
		ReceivedAt: ev.ReceivedAt,
	}}
}

func (c *Client) clearStalled() {
	c.update(func(st *State) { st.Stalled, st.StalledSince = false, time.Time{} })
}

// watch is the watchdog of one connection: no byte for idle, or a line
// taking longer than line to arrive, cuts it.
type watch struct {
	clock    Clock
	idle     time.Duration
	line     time.Duration
	activity atomic.Int64 // clock time of the last byte, UnixNano
	busy     *atomic.Bool // blocked on the consumer
	// reading is set while the client waits for a line; lineStart is then
	// the clock time of the line's first byte (0: none yet).
	reading   atomic.Bool
	lineStart atomic.Int64
}

func (w *watch) touch() { w.activity.Store(w.clock.Now().UnixNano()) }

// period is the longest the watchdog sleeps.
func (w *watch) period() time.Duration { return min(w.idle, w.line) }

// beginLine starts timing the next line: from now when some of it is
// already buffered (it arrived while the consumer held us), else from its
// first byte.
func (w *watch) beginLine(buffered bool) {
	if buffered {
		w.lineStart.Store(w.clock.Now().UnixNano())
	} else {
		w.lineStart.Store(0)
	}
	w.reading.Store(true)
}

func (w *watch) endLine() {
	w.reading.Store(false)
	w.lineStart.Store(0)
}

// arrived records bytes read from the network.
func (w *watch) arrived(now time.Time) {
	w.activity.Store(now.UnixNano())
	if w.reading.Load() {
		w.lineStart.CompareAndSwap(0, now.UnixNano())
	}
}

func (w *watch) run(ctx context.Context, t Timer, fire context.CancelCauseFunc) {
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			if w.busy.Load() {
				t.Reset(w.period())
				continue
			}
			now := w.clock.Now()
			since := now.Sub(time.Unix(0, w.activity.Load()))
			if since >= w.idle {
				fire(errIdle)
				return
			}
			wait := min(w.idle-since, w.line)
			if ls := w.lineStart.Load(); ls != 0 && w.reading.Load() {
				took := now.Sub(time.Unix(0, ls))
				if took >= w.line {
					fire(errSlowLine)
					return
				}
				wait = min(wait, w.line-took)
			}
			t.Reset(wait)
		}
	}
}

// send delivers it on out, blocking while out is full; the idle clock does
// not run meanwhile.
func (w *watch) send(ctx context.Context, out chan<- Item, it Item) bool {
	select {
	case out <- it:
		return true
	default:
	}
	w.busy.Store(true)
	defer func() {
		w.touch()
		w.busy.Store(false)
	}()
	select {
	case out <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// countingReader counts bytes and feeds the idle watchdog.
type countingReader struct {
	r io.Reader
	c *Client
	w *watch
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if n > 0 {
		now := cr.c.clock.Now()
		cr.w.arrived(now)
		cr.c.m.bytes.Add(n)
		cr.c.update(func(st *State) { st.LastByteAt = now })
	}
	return n, err
}

// stripURLError drops the *url.Error wrapper, whose message repeats the URL
// already named by the caller.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// printable makes a response body excerpt safe for one log line.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b))
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "(empty body)"
	}
	return s
}
