// Package breaker is the circuit breaker around chwatch's REST calls
// (github.com/sony/gobreaker/v2): breaker.failures consecutive failures
// (timeouts, network errors, 5xx, 403) open it; while open nothing is sent;
// after breaker.open_for one call goes through as a half-open probe, and
// its success closes the breaker. A 404 or an empty list is a success; a
// call that sent nothing (a bad number, a paused budget) counts neither way.
package breaker

import (
	"errors"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/api"
	"github.com/sony/gobreaker/v2"
)

// State is the breaker's state; its value is chwatch_breaker_state.
type State int

// The states.
const (
	Closed   State = 0
	HalfOpen State = 1
	Open     State = 2
)

func (s State) String() string {
	switch s {
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return "closed"
}

// Errors a call returns when the breaker refuses it. Nothing was sent:
// the job waits in the queue without spending an attempt.
var (
	// ErrOpen: the breaker is open; ProbeAt says when a probe may go.
	ErrOpen = errors.New("circuit breaker open: REST calls wait")
	// ErrProbing: half-open, and the one probe is in flight.
	ErrProbing = errors.New("circuit breaker half-open: a probe is in flight")
)

// Defaults for the zero values of Config.
const (
	DefaultFailures = 5
	DefaultOpenFor  = 60 * time.Second
)

// Change is one change of state.
type Change struct {
	From, To State
	At       time.Time
}

// Config configures a Breaker.
type Config struct {
	Failures int           // breaker.failures: consecutive failures that open it
	OpenFor  time.Duration // breaker.open_for: open this long before a probe
	// OnChange is called after every change of state, in order, outside
	// the breaker's lock (it may call State, log, write service_state or
	// post an alert). It runs on the goroutine whose call caused the
	// change.
	OnChange func(Change)
	// Metrics is where chwatch_breaker_state and
	// chwatch_breaker_transitions_total{to} go (a private set when nil).
	Metrics *metrics.Set
	// IsFailure and IsInconclusive classify a call's error; api.Failure and
	// api.Inconclusive when nil.
	IsFailure      func(error) bool
	IsInconclusive func(error) bool
}

// Breaker guards REST calls. It is safe for concurrent use.
type Breaker struct {
	cfg Config
	cb  *gobreaker.CircuitBreaker[struct{}]

	mu       sync.Mutex
	state    State
	openedAt time.Time
	pending  []Change // changes gobreaker made under its lock, not yet announced

	announce sync.Mutex // keeps OnChange calls in order
	moves    map[State]*metrics.Counter
}

// New returns a closed Breaker.
func New(cfg Config) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = DefaultFailures
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = DefaultOpenFor
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.IsFailure == nil {
		cfg.IsFailure = api.Failure
	}
	if cfg.IsInconclusive == nil {
		cfg.IsInconclusive = api.Inconclusive
	}
	b := &Breaker{cfg: cfg, moves: map[State]*metrics.Counter{}}
	for _, s := range []State{Closed, HalfOpen, Open} {
		b.moves[s] = cfg.Metrics.GetOrCreateCounter(`chwatch_breaker_transitions_total{to="` + s.String() + `"}`)
	}
	cfg.Metrics.GetOrCreateGauge("chwatch_breaker_state", func() float64 { return float64(b.State()) })
	failures := uint32(cfg.Failures)
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "rest",
		MaxRequests: 1, // one probe
		Timeout:     cfg.OpenFor,
		// Interval 0: counts are never cleared while closed; a success
		// resets the consecutive failures anyway.
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool { return err == nil || !cfg.IsFailure(err) },
		IsExcluded:   func(err error) bool { return err != nil && !cfg.IsFailure(err) && cfg.IsInconclusive(err) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			// Under gobreaker's lock: only record it.
			now := time.Now()
			b.mu.Lock()
			b.state = State(to)
			if to == gobreaker.StateOpen {
				b.openedAt = now
			}
			b.pending = append(b.pending, Change{From: State(from), To: State(to), At: now})
			b.mu.Unlock()
		},
	})
	return b
}

// Do runs fn unless the breaker refuses (ErrOpen, ErrProbing), and counts
// its error.
func (b *Breaker) Do(fn func() error) error {
	_, err := Call(b, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// Call runs fn unless the breaker refuses (ErrOpen, ErrProbing), counts its
// error and returns its result.
func Call[T any](b *Breaker, fn func() (T, error)) (T, error) {
	var out T
	_, err := b.cb.Execute(func() (struct{}, error) {
		var err error
		out, err = fn()
		return struct{}{}, err
	})
	b.flush()
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return out, ErrOpen
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return out, ErrProbing
	}
	return out, err
}

// State returns the current state. An open breaker whose open_for has
// passed turns half-open here (gobreaker moves lazily), so a service that
// polls State announces the change without a call.
func (b *Breaker) State() State {
	s := State(b.cb.State())
	b.flush()
	return s
}

// ProbeAt is when an open breaker lets a probe through; zero unless open.
func (b *Breaker) ProbeAt() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != Open {
		return time.Time{}
	}
	return b.openedAt.Add(b.cfg.OpenFor)
}

// flush announces recorded changes, in order.
func (b *Breaker) flush() {
	b.announce.Lock()
	defer b.announce.Unlock()
	b.mu.Lock()
	changes := b.pending
	b.pending = nil
	b.mu.Unlock()
	for _, c := range changes {
		b.moves[c.To].Inc()
		if b.cfg.OnChange != nil {
			b.cfg.OnChange(c)
		}
	}
}
