package feed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/db"
)

// Sink is where messages go. Deliver returns nil only once the sink holds
// the message (a 2xx, a PubAck); anything else is tried again, forever.
type Sink interface {
	Name() string // Webhook or NATS
	// Open makes the sink ready (NATS: connects and makes sure a stream
	// captures the subjects); it is tried again like Deliver.
	Open(ctx context.Context) error
	Deliver(ctx context.Context, m Message) error
	Close()
}

// Defaults for the zero values of Config.
const (
	DefaultPoll       = 100 * time.Millisecond
	DefaultBatch      = 100
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
	DefaultPruneEvery = 10 * time.Second
)

// Config configures a Feed. Zero values take the defaults.
type Config struct {
	DB    *db.DB
	Sinks []Sink
	// Poll is how often an idle sink looks for new messages: the outbox is
	// written by any process (run, import), so it is read, not signalled.
	Poll  time.Duration
	Batch int // messages read per query; the position is saved after each batch
	// BackoffMin and BackoffMax bound the wait between failed attempts
	// (exponential with jitter).
	BackoffMin, BackoffMax time.Duration
	PruneEvery             time.Duration
	Now                    func() time.Time
	Logger                 *slog.Logger
	// Metrics receives chwatch_feed_*.
	Metrics *metrics.Set
}

// Feed delivers the outbox to its sinks: one goroutine per sink, each in
// outbox order, and a pruner.
type Feed struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	state map[string]*SinkState // what each sink's goroutine last knew, for metrics and alerts
}

// New returns a feed; nothing runs before Run.
func New(cfg Config) *Feed {
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.Batch = cmp.Or(cfg.Batch, DefaultBatch)
	cfg.BackoffMin = cmp.Or(cfg.BackoffMin, DefaultBackoffMin)
	cfg.BackoffMax = max(cmp.Or(cfg.BackoffMax, DefaultBackoffMax), cfg.BackoffMin)
	cfg.PruneEvery = cmp.Or(cfg.PruneEvery, DefaultPruneEvery)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	f := &Feed{cfg: cfg, log: cfg.Logger.With("component", "feed"), state: map[string]*SinkState{}}
	for _, s := range cfg.Sinks {
		name := s.Name()
		f.state[name] = &SinkState{Name: name}
		cfg.Metrics.GetOrCreateCounter(`chwatch_feed_delivered_total{sink="` + name + `"}`)
		cfg.Metrics.GetOrCreateCounter(`chwatch_feed_failures_total{sink="` + name + `"}`)
		cfg.Metrics.GetOrCreateGauge(`chwatch_feed_backlog{sink="`+name+`"}`, func() float64 { return float64(f.State(name).Backlog) })
		cfg.Metrics.GetOrCreateGauge(`chwatch_feed_oldest_seconds{sink="`+name+`"}`, func() float64 {
			st := f.State(name)
			if st.OldestAt.IsZero() {
				return 0
			}
			return cfg.Now().Sub(st.OldestAt).Seconds()
		})
		cfg.Metrics.GetOrCreateGauge(`chwatch_feed_failing{sink="`+name+`"}`, func() float64 {
			if f.State(name).FailingSince.IsZero() {
				return 0
			}
			return 1
		})
	}
	cfg.Metrics.GetOrCreateCounter("chwatch_feed_pruned_total")
	return f
}

// State is what the sink's goroutine last knew of it (its backlog is
// refreshed after each batch and while idle).
func (f *Feed) State(name string) SinkState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.state[name]; ok {
		return *s
	}
	return SinkState{Name: name}
}

// States returns every sink's State, in configuration order.
func (f *Feed) States() []SinkState {
	out := make([]SinkState, 0, len(f.cfg.Sinks))
	for _, s := range f.cfg.Sinks {
		out = append(out, f.State(s.Name()))
	}
	return out
}

// Run delivers until ctx is done. A message in flight when ctx ends is not
// counted delivered: the next start sends it again (at least once).
func (f *Feed) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range f.cfg.Sinks {
		wg.Go(func() { f.runSink(ctx, s) })
	}
	wg.Go(func() { f.prune(ctx) })
	wg.Wait()
}

func (f *Feed) runSink(ctx context.Context, s Sink) {
	name := s.Name()
	log := f.log.With("sink", name)
	for attempt := 0; ; attempt++ {
		err := s.Open(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		f.failed(ctx, name, fmt.Errorf("open: %w", err), log)
		if !sleep(ctx, f.backoff(attempt)) {
			return
		}
	}
	defer s.Close()
	pos, err := position(ctx, f.cfg.DB.R, name)
	for err != nil {
		log.Warn("feed sink cannot read its position", "err", err)
		if !sleep(ctx, f.cfg.BackoffMax) {
			return
		}
		pos, err = position(ctx, f.cfg.DB.R, name)
	}
	log.Info("feed sink delivering", "from_id", pos)
	delivered := f.cfg.Metrics.GetOrCreateCounter(`chwatch_feed_delivered_total{sink="` + name + `"}`)
	for ctx.Err() == nil {
		msgs, err := Next(ctx, f.cfg.DB.R, pos, f.cfg.Batch)
		if err != nil {
			if ctx.Err() == nil {
				f.failed(ctx, name, err, log)
				sleep(ctx, f.cfg.BackoffMax)
			}
			continue
		}
		if len(msgs) == 0 {
			f.refresh(ctx, name)
			sleep(ctx, f.cfg.Poll)
			continue
		}
		done := pos
		for _, m := range msgs {
			if !f.deliver(ctx, s, m, log) {
				break
			}
			done = m.ID
			delivered.Inc()
		}
		if done > pos {
			// A stop too saves what was delivered: the context is gone,
			// the write is one small transaction.
			if err := savePosition(context.WithoutCancel(ctx), f.cfg.DB, name, done, f.cfg.Now()); err != nil {
				log.Warn("feed sink position not saved: the messages after it will be delivered again", "err", err)
			} else {
				pos = done
				f.recovered(name, log)
			}
		}
		f.refresh(ctx, name)
	}
}

// deliver tries m until the sink takes it; false when ctx ended first.
func (f *Feed) deliver(ctx context.Context, s Sink, m Message, log *slog.Logger) bool {
	for attempt := 0; ; attempt++ {
		err := s.Deliver(ctx, m)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.failed(ctx, s.Name(), fmt.Errorf("deliver %s: %w", m.Identity, err), log)
		if !sleep(ctx, f.backoff(attempt)) {
			return false
		}
	}
}

// failed records a failed attempt: counted, kept in feed_sinks for status,
// logged when the sink starts failing or the reason changes.
func (f *Feed) failed(ctx context.Context, name string, err error, log *slog.Logger) {
	now := f.cfg.Now()
	why := err.Error()
	f.cfg.Metrics.GetOrCreateCounter(`chwatch_feed_failures_total{sink="` + name + `"}`).Inc()
	f.mu.Lock()
	st := f.state[name]
	first := st.FailingSince.IsZero()
	if first {
		st.FailingSince = now
	}
	changed := st.LastError != why
	st.LastError, st.LastErrorAt = why, now
	since := st.FailingSince
	f.mu.Unlock()
	if first || changed {
		log.Warn("feed sink failing: retrying with backoff; nothing is lost, ingestion goes on", "err", why)
	}
	if err := saveFailure(context.WithoutCancel(ctx), f.cfg.DB, name, why, since, now); err != nil {
		log.Warn("feed sink failure not recorded", "err", err)
	}
	f.refresh(ctx, name)
}

func (f *Feed) recovered(name string, log *slog.Logger) {
	f.mu.Lock()
	st := f.state[name]
	was := st.FailingSince
	st.FailingSince = time.Time{}
	st.DeliveredAt = f.cfg.Now()
	f.mu.Unlock()
	if !was.IsZero() {
		log.Info("feed sink delivering again", "failed_for", f.cfg.Now().Sub(was).Round(time.Second).String())
	}
}

// refresh reads the sink's backlog from the database, as status does.
func (f *Feed) refresh(ctx context.Context, name string) {
	all, err := Read(ctx, f.cfg.DB.R)
	if err != nil {
		return
	}
	for _, s := range all {
		if s.Name == name {
			f.mu.Lock()
			st := f.state[name]
			st.DeliveredID, st.Backlog, st.OldestAt = s.DeliveredID, s.Backlog, s.OldestAt
			f.mu.Unlock()
		}
	}
}

// prune deletes delivered rows every PruneEvery.
func (f *Feed) prune(ctx context.Context) {
	pruned := f.cfg.Metrics.GetOrCreateCounter("chwatch_feed_pruned_total")
	for sleep(ctx, f.cfg.PruneEvery) {
		n, err := Prune(ctx, f.cfg.DB, 0)
		if err != nil && ctx.Err() == nil {
			f.log.Warn("feed outbox not pruned", "err", err)
		}
		pruned.Add(int(n))
	}
}

// backoff is the wait after the attempt-th failure in a row: doubling from
// BackoffMin, capped at BackoffMax, with up to a fifth off at random so
// that restarted consumers are not hit in step.
func (f *Feed) backoff(attempt int) time.Duration {
	d := f.cfg.BackoffMin << min(attempt, 30)
	if d <= 0 || d > f.cfg.BackoffMax {
		d = f.cfg.BackoffMax
	}
	return d - time.Duration(rand.Float64()*float64(d)/5)
}

// sleep waits d or until ctx is done; false when ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// scrub removes secrets (a sink's URL and its parts) from an error's text:
// status and feed_sinks.last_error show it, and they are no log.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "REDACTED")
		}
	}
	return errors.New(s)
}
