// Package budget is chwatch's REST request budget: every REST request waits
// on it for its paced slot and reports back what the server said, and REST
// work pauses through it after a 429, 401 or 403. Its state lives in the
// api_budget table, so every chwatch process on the database shares it
// across restarts. It starts from api.rate_limit per api.rate_window, then
// follows the server's X-Ratelimit-* headers: the server's Remain is the
// truth, since another program using the same key spends it too.
package budget

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/db"
)

// Defaults for the zero values of Config.
const (
	DefaultLimit            = 600
	DefaultWindow           = 5 * time.Minute
	DefaultUnauthorizedWait = 5 * time.Minute
	DefaultForbiddenWait    = 15 * time.Minute
	DefaultResetGuard       = time.Second
	DefaultMaxWait          = 30 * time.Second
	DefaultPersistEvery     = 5 * time.Second
)

// Why REST work waits: the pause reasons stored in api_budget.pause_reason,
// and Exhausted, which is no pause but a window whose requests are spent.
const (
	RateLimited  = "rate_limited" // a 429: until the window resets
	Unauthorized = "unauthorized" // a 401: until the key changes or Config.UnauthorizedWait passes
	Forbidden    = "forbidden"    // a 403: for Config.ForbiddenWait
	Exhausted    = "exhausted"    // the window's requests are spent and the next one is further off than Config.MaxWait
)

// ErrPaused is matched (errors.Is) by every *PausedError.
var ErrPaused = errors.New("REST work is paused")

// PausedError says that no request may be sent before Until, and why.
// Nothing was taken from the budget: a job refused this way should go back
// to the queue until Until without spending an attempt.
type PausedError struct {
	Reason string    // RateLimited, Unauthorized, Forbidden or Exhausted
	Until  time.Time // on the budget's clock
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("REST work paused (%s) until %s", e.Reason, e.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrPaused) true.
func (e *PausedError) Is(target error) bool { return target == ErrPaused }

// Clock is the budget's source of time, injectable for tests. Durations
// between its readings must be monotonic (time.Now's are).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now(), which carries a monotonic reading.
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d): timers run on the monotonic clock.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Budget.
type Config struct {
	// Key is the API key. Only a fingerprint of it is stored, so that a
	// new key starts afresh: a 401 pause ends when the key changes.
	Key              string
	Limit            int           // api.rate_limit, until the server says otherwise
	Window           time.Duration // api.rate_window, until the server says otherwise
	UnauthorizedWait time.Duration // api.unauthorized_wait
	ForbiddenWait    time.Duration // api.forbidden_wait
	// ResetGuard is waited past a window's reset before its first request:
	// X-Ratelimit-Reset has whole seconds, and Companies House may end the
	// window up to a second after it.
	ResetGuard time.Duration
	// MaxWait is the longest Acquire waits for a slot; a slot further off
	// is refused with a *PausedError (Exhausted), so no job is held that long.
	MaxWait time.Duration
	// PersistEvery bounds how stale the stored row may be while nothing
	// but pacing changes; pauses are written at once.
	PersistEvery time.Duration
	Clock        Clock
	Logger       *slog.Logger
	// Metrics is where chwatch_api_budget_remaining and
	// chwatch_api_budget_paused go (a private set when nil).
	Metrics *metrics.Set
}

// Budget paces REST requests. It implements api.Limiter; it is safe for
// concurrent use.
type Budget struct {
	d      *db.DB
	cfg    Config
	keyID  string
	writer string
	clock  Clock
	log    *slog.Logger

	persistMu sync.Mutex
	written   int64 // rev of the last row written

	mu          sync.Mutex
	st          state
	rev         int64 // bumped on every change worth writing
	lastWrite   time.Time
	lastRefresh time.Time
	tickets     int64   // requests acquired by this Budget
	rolledAt    int64   // the last ticket before this Budget opened a window itself
	applied     int64   // the ticket whose Remain st.remain comes from
	appliedRem  int     // that Remain
	appliedRst  int64   // and its window's Reset
	own, others int     // requests of this Budget and of other programs the server counted in the current window, so far
	lastShare   float64 // this Budget's share of the spending in the last window; 0 unknown
}

// state is what api_budget holds, times on the budget's clock.
type state struct {
	limit       int
	window      time.Duration
	remain      int
	end         time.Time // the current window's reset; zero before any request
	serverReset int64     // X-Ratelimit-Reset of the window end belongs to
	estimated   bool      // end is this Budget's guess (a window it opened), not yet the server's word
	next        time.Time // the paced slot of the next request
	pausedUntil time.Time
	reason      string
	refused     string
	sharedUntil time.Time
	requests    int64
	rateLimited int64
	lastStatus  int
	lastAnswer  time.Time
}

// New opens the budget of database d, reading the row an earlier process
// left. A pause recorded there still holds (capped at its configured
// length, since a wall clock may have jumped since); a row left with
// another key is started afresh.
func New(ctx context.Context, d *db.DB, cfg Config) (*Budget, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	b := &Budget{d: d, cfg: cfg, keyID: KeyID(cfg.Key), writer: randomID(), clock: cfg.Clock, log: cfg.Logger.With("component", "budget")}
	now := b.clock.Now()
	b.st = state{limit: cfg.Limit, window: cfg.Window, remain: cfg.Limit}
	row, ok, err := read(ctx, d.W)
	if err != nil {
		return nil, err
	}
	if ok && row.keyID != b.keyID {
		b.log.Info("API key changed: the REST budget starts afresh")
		ok = false
	}
	if ok {
		b.st = b.adopt(row, now)
		if b.paused(now) {
			b.log.Warn("REST work paused by an earlier run", "reason", b.st.reason, "until", b.st.pausedUntil.UTC().Format(time.RFC3339))
		}
	}
	b.rev = 1
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	cfg.Metrics.GetOrCreateGauge("chwatch_api_budget_remaining", func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return float64(b.st.remain)
	})
	cfg.Metrics.GetOrCreateGauge("chwatch_api_budget_paused", func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.paused(b.clock.Now()) {
			return 1
		}
		return 0
	})
	return b, nil
}

func (c *Config) fill() error {
	for _, d := range []struct {
		key string
		v   *time.Duration
		def time.Duration
	}{
		{"api.rate_window", &c.Window, DefaultWindow},
		{"api.unauthorized_wait", &c.UnauthorizedWait, DefaultUnauthorizedWait},
		{"api.forbidden_wait", &c.ForbiddenWait, DefaultForbiddenWait},
		{"budget reset guard", &c.ResetGuard, DefaultResetGuard},
		{"budget max wait", &c.MaxWait, DefaultMaxWait},
		{"budget persist interval", &c.PersistEvery, DefaultPersistEvery},
	} {
		if *d.v < 0 {
			return fmt.Errorf("%s %s: want a positive duration, or 0 for the default %s", d.key, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Limit < 0 {
		return fmt.Errorf("api.rate_limit %d: want a positive number of requests per window", c.Limit)
	}
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewSet()
	}
	return nil
}

// KeyID is the fingerprint of an API key stored in api_budget.key_id: 16 hex
// digits of its SHA-256, which tell keys apart and reveal nothing of them.
func KeyID(key string) string {
	sum := sha256.Sum256([]byte("chwatch api key\x00" + key))
	return hex.EncodeToString(sum[:8])
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// paused reports whether a pause holds at now. Call with mu held.
func (b *Budget) paused(now time.Time) bool {
	return b.st.reason != "" && now.Before(b.st.pausedUntil)
}

// reserve is how many requests of a window are held back while another
// program is known to spend the same key: its spending reaches chwatch one
// answer late, and the last requests of a window are where two clients
// collide. Call with mu held.
func (b *Budget) reserve(now time.Time) int {
	if now.Before(b.st.sharedUntil) {
		return max(2, b.st.limit/50)
	}
	return 0
}

// share is this Budget's share of the key's spending in the last complete
// window, at least one half: when another program spent part of it, it is
// taken to do so again, and this Budget paces over its share of what is
// left, so that together they spread over the window. Within a window the
// estimate is not used: a one-off burst by another program must not stall
// this one. Call with mu held.
func (b *Budget) share() float64 {
	if b.lastShare > 0 {
		return max(b.lastShare, 0.5)
	}
	return 1
}

// windowShare is the share seen so far in the current window, 0 when there
// is too little to tell. Call with mu held.
func (b *Budget) windowShare() float64 {
	if b.own+b.others < 4 {
		return 0
	}
	return float64(b.own) / float64(b.own+b.others)
}

// interval is the least spacing between requests: twice the average rate,
// so a window's requests are never burst however many are left.
func (b *Budget) interval() time.Duration {
	return b.st.window / time.Duration(2*max(b.st.limit, 1))
}

// slot is when the next request may go, and whether it opens a new window.
// Call with mu held.
func (b *Budget) slot(now time.Time) (at time.Time, fresh bool) {
	at = now
	if at.Before(b.st.next) {
		at = b.st.next
	}
	if b.st.end.IsZero() {
		return at, true // no window seen yet
	}
	if b.st.remain <= b.reserve(now) {
		if opens := b.st.end.Add(b.cfg.ResetGuard); at.Before(opens) {
			at = opens
		}
	}
	return at, !at.Before(b.st.end.Add(b.cfg.ResetGuard))
}

// Wait blocks until REST work may go on: no pause in force and the next
// request no further off than Config.MaxWait. It takes nothing from the
// budget. Call it before claiming a job, so that no job is held through a
// pause.
func (b *Budget) Wait(ctx context.Context) error {
	for {
		b.refresh(ctx)
		b.mu.Lock()
		now := b.clock.Now()
		var until time.Time
		if b.paused(now) {
			until = b.st.pausedUntil
		} else if at, _ := b.slot(now); at.Sub(now) > b.cfg.MaxWait {
			until = at.Add(-b.cfg.MaxWait)
		}
		b.mu.Unlock()
		if until.IsZero() {
			return nil
		}
		if err := b.sleep(ctx, until.Sub(now)); err != nil {
			return err
		}
	}
}

// Acquire waits for the next paced slot and takes one request from the
// budget (api.Limiter). The remaining requests of a window are spread
// evenly over what is left of it. While a pause holds, or when the slot is
// further off than Config.MaxWait, it returns a *PausedError at once and
// takes nothing.
func (b *Budget) Acquire(ctx context.Context) (api.Ticket, error) {
	b.refresh(ctx)
	b.mu.Lock()
	now := b.clock.Now()
	if b.paused(now) {
		err := &PausedError{Reason: b.st.reason, Until: b.st.pausedUntil}
		b.mu.Unlock()
		return 0, err
	}
	at, fresh := b.slot(now)
	if at.Sub(now) > b.cfg.MaxWait {
		b.mu.Unlock()
		return 0, &PausedError{Reason: Exhausted, Until: at}
	}
	if fresh {
		// A new window, anchored at this request until an answer says
		// when the server's resets.
		b.st.end, b.st.remain, b.st.estimated = at.Add(b.st.window), b.st.limit, true
		b.rolledAt = b.tickets
	}
	// The requests left are spread over the time left; when another
	// program spends the key too, over this Budget's share of them, so
	// that together they pace the window rather than burst its start.
	spread := time.Duration(float64(b.st.end.Sub(at)) / (float64(max(b.st.remain, 1)) * b.share()))
	b.st.next = at.Add(max(spread, b.interval()))
	b.st.remain--
	b.st.requests++
	b.tickets++
	t := api.Ticket(b.tickets)
	b.rev++
	b.mu.Unlock()
	b.maybeFlush(ctx)

	if err := b.sleep(ctx, at.Sub(now)); err != nil {
		b.giveBack()
		return 0, err
	}
	b.mu.Lock()
	now = b.clock.Now()
	if b.paused(now) { // a 429 or 403 arrived meanwhile
		err := &PausedError{Reason: b.st.reason, Until: b.st.pausedUntil}
		b.mu.Unlock()
		b.giveBack()
		return 0, err
	}
	b.mu.Unlock()
	return t, nil
}

// giveBack returns a request acquired but not sent.
func (b *Budget) giveBack() {
	b.mu.Lock()
	b.st.remain = min(b.st.remain+1, b.st.limit)
	b.st.requests--
	b.rev++
	b.mu.Unlock()
}

// Observe records what the server said to request t (api.Limiter): the
// pause a 429, 401 or 403 begins, and the window's limit, remainder and
// reset from the X-Ratelimit-* headers. The reset is taken as Reset minus
// the answer's Date, added to the arrival time on the budget's clock, so a
// wrong wall clock cannot stretch or shrink a wait.
func (b *Budget) Observe(t api.Ticket, o api.Observation) {
	b.mu.Lock()
	now := b.clock.Now()
	st := &b.st
	if o.Limit > 0 {
		st.limit = o.Limit
	}
	if o.Window > 0 {
		st.window = o.Window
	}
	if o.Status != 0 {
		st.lastStatus, st.lastAnswer = o.Status, now
	}
	resetIn, hasReset := o.ResetIn()
	resetIn = min(resetIn, st.window)
	pause := ""
	switch o.Status {
	case 401:
		pause = Unauthorized
		b.pause(Unauthorized, now.Add(b.cfg.UnauthorizedWait))
		st.refused = Unauthorized
	case 403:
		pause = Forbidden
		b.pause(Forbidden, now.Add(b.cfg.ForbiddenWait))
		st.refused = Forbidden
	case 429:
		pause = RateLimited
		wait := st.window // a whole window when no header says
		switch {
		case hasReset:
			wait = resetIn
		case o.RetryAfter > 0:
			wait = min(o.RetryAfter, st.window)
		}
		b.pause(RateLimited, now.Add(wait+b.cfg.ResetGuard))
		st.rateLimited++
	default:
		if o.Status != 0 && o.Status < 500 {
			st.refused = "" // Companies House answered: key and address are fine
		}
	}
	// An answer to a request sent before this Budget opened a new window
	// of its own, still carrying the old window's Reset, says nothing
	// about the new one.
	old := hasReset && o.Reset <= st.serverReset && int64(t) <= b.rolledAt
	if hasReset && !old {
		end := now.Add(resetIn)
		switch {
		case o.Reset > st.serverReset, st.estimated:
			// A window not seen before, or the server's own word on the
			// one this Budget opened (or opened too early).
			if o.Reset > st.serverReset {
				b.lastShare, b.own, b.others = b.windowShare(), 0, 0
			}
			st.serverReset, st.end, st.estimated = o.Reset, end, false
		case o.Reset == st.serverReset && end.Before(st.end):
			st.end = end // the tightest estimate of the same reset
		}
	}
	if o.Remain >= 0 && int64(t) > b.applied && !old && (!hasReset || o.Reset >= st.serverReset) {
		if hasReset && o.Reset == b.appliedRst {
			// Requests the server counted beyond this Budget's own: another
			// program spends this key.
			mine := int(int64(t) - b.applied)
			others := (b.appliedRem - o.Remain) - mine
			b.own += mine
			b.others += max(others, 0)
			if others > 0 {
				if !now.Before(st.sharedUntil) {
					b.log.Info("another program spends this API key's budget: keeping a reserve", "spent_by_others", others)
				}
				st.sharedUntil = st.end.Add(st.window)
			}
		}
		b.applied, b.appliedRem, b.appliedRst = int64(t), o.Remain, o.Reset
		// Requests this Budget let through after t may not be counted in
		// this Remain yet.
		st.remain = o.Remain - int(b.tickets-int64(t))
	}
	if o.Status == 429 {
		st.remain = 0
	}
	st.remain = min(max(st.remain, 0), st.limit)
	until := st.pausedUntil
	b.rev++
	b.mu.Unlock()
	if pause != "" {
		b.log.Warn("REST work paused", "reason", pause, "until", until.UTC().Format(time.RFC3339), "status", o.Status)
		_ = b.flush(context.Background())
		return
	}
	b.maybeFlush(context.Background())
}

// pause starts or extends a pause. Call with mu held.
func (b *Budget) pause(reason string, until time.Time) {
	if b.st.reason == "" || !b.st.pausedUntil.After(b.clock.Now()) || until.After(b.st.pausedUntil) {
		b.st.reason, b.st.pausedUntil = reason, until
	}
}

// sleep waits d on the budget's clock, or until ctx is done.
func (b *Budget) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-b.clock.After(d):
		return nil
	}
}

// State is the budget as chwatch knows it, for status and metrics.
type State struct {
	Limit          int
	Window         time.Duration
	Remain         int
	WindowEnd      time.Time // when the current window resets; zero when unknown
	PausedUntil    time.Time // zero unless a pause holds
	PauseReason    string    // RateLimited, Unauthorized, Forbidden; "" unless a pause holds
	Refused        string    // Unauthorized or Forbidden while the last answer was a 401 or 403
	Shared         bool      // another program is known to spend the same key
	Requests       int64     // sent, ever
	RateLimited    int64     // 429s, ever
	LastStatus     int
	LastResponseAt time.Time
	UpdatedAt      time.Time // when the row was written (Read only)
}

// State returns the budget as this process knows it.
func (b *Budget) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	s := State{
		Limit: b.st.limit, Window: b.st.window, Remain: b.st.remain, WindowEnd: b.st.end,
		Refused: b.st.refused, Shared: now.Before(b.st.sharedUntil),
		Requests: b.st.requests, RateLimited: b.st.rateLimited, LastStatus: b.st.lastStatus, LastResponseAt: b.st.lastAnswer,
	}
	if b.paused(now) {
		s.PausedUntil, s.PauseReason = b.st.pausedUntil, b.st.reason
	}
	return s
}

// Close writes the budget's state.
func (b *Budget) Close(ctx context.Context) error {
	return b.flush(ctx)
}
