// Package enrich runs chwatch's REST workers: the goroutines of `chwatch
// run` (api.workers of them) that claim jobs from the queue in its order
// (status checks, then gap sweeps, then officer fetches, filing checks and
// PSC fetches), call the REST API through the shared budget and the circuit
// breaker, and apply each answer in one write transaction together with the
// job's completion. A profile (status_check, sweep_check) goes through the
// same company rule as the stream and the bulk file, as source api; an
// officer list replaces the company's officers, a PSC list its persons with
// significant control; a filing history gives the strike-off's cause and
// timetable. Only a failure of the job itself spends an attempt: a 429, a
// pause of the budget, the breaker and a stop spend none. It joins queue,
// budget, breaker, api and company, and writes no SQL of its own; only app
// imports it.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// Defaults for the zero values of Config.
const (
	DefaultWorkers       = 2
	DefaultIdle          = time.Second
	DefaultProbeWait     = 2 * time.Second
	DefaultProgressEvery = 30 * time.Second
)

// Kinds are the kinds of job the workers always run, highest priority
// first; pscs joins them when Config.PSCs is set.
func Kinds() []queue.Kind {
	return []queue.Kind{queue.StatusCheck, queue.SweepCheck, queue.Officers, queue.FilingCheck}
}

// Results of one job, the result label of chwatch_jobs_total.
const (
	Done     = "done"     // applied and completed
	Failed   = "failed"   // an attempt spent, back in the queue after a backoff (or dead after the last)
	Deferred = "deferred" // back in the queue without spending an attempt: the API could not be asked
	Recheck  = "recheck"  // answered and written, to be asked again later (a filing_check that found no notice yet)
	Dead     = "dead"     // buried at once: it can never succeed
	Lost     = "lost"     // the lease was lost meanwhile: another worker holds the job now
	Stopped  = "stopped"  // the service stopped; the lease is released with the others
)

func results() []string { return []string{Done, Failed, Deferred, Recheck, Dead, Lost, Stopped} }

// Config configures the workers. DB, Queue, Budget, Breaker, Client and
// Applier are required.
type Config struct {
	DB      *db.DB
	Queue   *queue.Queue
	Budget  *budget.Budget
	Breaker *breaker.Breaker
	Client  *api.Client
	// Applier applies profiles: the same rule, policy and max depth as
	// the stream's.
	Applier *company.Applier
	// Alerts hears the REST API's 401 and 403 (raised, then resolved by
	// the first success); nil tells no one.
	Alerts  *alert.Alerter
	Workers int // api.workers
	// PSCs runs pscs jobs too (enrich.pscs); without it they are never
	// claimed.
	PSCs   bool
	Logger *slog.Logger
	// Metrics is where chwatch_job_seconds{kind}, chwatch_jobs_total{kind,result}
	// and chwatch_rest_workers go (a private set when nil).
	Metrics *metrics.Set
	// Idle is how long a worker waits before it looks again when no job is
	// due: a job queued meanwhile waits at most that long.
	Idle time.Duration
	// ProbeWait is how long a job refused because the breaker's half-open
	// probe is in flight goes back to the queue for.
	ProbeWait time.Duration
	// ProgressEvery is how often a progress line is logged while jobs run.
	ProgressEvery time.Duration
	// NoticeRecheck is how long a filing_check that found no first-Gazette
	// notice waits before it looks again (DefaultNoticeRecheck when 0).
	NoticeRecheck time.Duration
	Now           func() time.Time
}

// Workers are the REST workers of one service.
type Workers struct {
	cfg Config
	log *slog.Logger

	kinds   []queue.Kind // the kinds claimed: Kinds, and pscs with Config.PSCs
	running atomic.Int64
	stored  atomic.Int64 // officers written
	counts  map[queue.Kind]map[string]*metrics.Counter
	seconds map[queue.Kind]*metrics.Histogram

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

// New checks cfg and returns the workers, not yet running.
func New(cfg Config) (*Workers, error) {
	if cfg.DB == nil || cfg.Queue == nil || cfg.Budget == nil || cfg.Breaker == nil || cfg.Client == nil || cfg.Applier == nil {
		return nil, errors.New("enrich: DB, Queue, Budget, Breaker, Client and Applier are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.ProbeWait <= 0 {
		cfg.ProbeWait = DefaultProbeWait
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = DefaultProgressEvery
	}
	if cfg.NoticeRecheck <= 0 {
		cfg.NoticeRecheck = DefaultNoticeRecheck
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Workers{cfg: cfg, log: cfg.Logger.With("component", "rest"),
		counts: map[queue.Kind]map[string]*metrics.Counter{}, seconds: map[queue.Kind]*metrics.Histogram{}}
	w.kinds = Kinds()
	if cfg.PSCs {
		w.kinds = append(w.kinds, queue.PSCs)
	}
	// Every series exists from the start, so dashboards see it before
	// first use.
	for _, k := range w.kinds {
		w.counts[k] = map[string]*metrics.Counter{}
		for _, r := range results() {
			w.counts[k][r] = cfg.Metrics.NewCounter(fmt.Sprintf(`chwatch_jobs_total{kind=%q,result=%q}`, k, r))
		}
		w.seconds[k] = cfg.Metrics.NewHistogram(fmt.Sprintf(`chwatch_job_seconds{kind=%q}`, k))
	}
	cfg.Metrics.NewGauge("chwatch_rest_workers", func() float64 { return float64(w.running.Load()) })
	return w, nil
}

// Run runs the workers until ctx is done, then hands the jobs they hold
// back to the queue (a graceful stop spends no attempt) and writes the
// budget's state.
func (w *Workers) Run(ctx context.Context) error {
	w.log.Info("REST workers started", "workers", w.cfg.Workers)
	var wg sync.WaitGroup
	for i := range w.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work(ctx, i)
		}()
	}
	progress := make(chan struct{})
	go func() { defer close(progress); w.progress(ctx) }()
	wg.Wait()
	<-progress
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := w.cfg.Queue.ReleaseLeases(stopCtx)
	if err != nil {
		w.log.Warn("leases not released: the jobs come back when their leases expire", "err", err)
	}
	if berr := w.cfg.Budget.Close(stopCtx); berr != nil && err == nil {
		err = berr
	}
	w.log.Info("REST workers stopped")
	return err
}

// State is what the workers report for service_state.
type State struct {
	Running     int       // workers running
	LastError   string    // the last failure of a REST call or of writing its result; never a secret
	LastErrorAt time.Time // when
}

// State returns the workers' state.
func (w *Workers) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return State{Running: int(w.running.Load()), LastError: w.lastErr, LastErrorAt: w.lastErrAt}
}

func (w *Workers) noteError(err error) {
	w.mu.Lock()
	w.lastErr, w.lastErrAt = err.Error(), w.cfg.Now()
	w.mu.Unlock()
}

// work is one worker: wait until REST work may go on, claim the next due
// job, run it.
func (w *Workers) work(ctx context.Context, id int) {
	w.running.Add(1)
	defer w.running.Add(-1)
	// Workers that find nothing look again at different moments.
	r := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	idle := func() time.Duration { return w.cfg.Idle/2 + time.Duration(r.Int64N(int64(w.cfg.Idle/2)+1)) }
	for ctx.Err() == nil {
		// No job is held through a pause (429, 401, 403) or while the
		// budget's next slot is far off: Wait blocks before the claim.
		if err := w.cfg.Budget.Wait(ctx); err != nil {
			return
		}
		// Nor while the breaker is open: nothing could be sent.
		if w.cfg.Breaker.State() == breaker.Open {
			if at := w.cfg.Breaker.ProbeAt(); time.Until(at) > 0 {
				sleep(ctx, time.Until(at))
				continue
			}
		}
		j, ok, err := w.cfg.Queue.Claim(ctx, w.kinds...)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("could not claim a REST job", "err", err)
				w.noteError(err)
			}
			sleep(ctx, idle())
			continue
		}
		if !ok {
			sleep(ctx, idle())
			continue
		}
		w.run(ctx, j)
		if w.cfg.Breaker.State() == breaker.HalfOpen {
			// Another worker's probe is in flight: claiming now would
			// only put job after job back in the queue until it answers.
			sleep(ctx, w.cfg.ProbeWait)
		}
	}
}

// run runs one job, renewing its lease while it runs.
func (w *Workers) run(ctx context.Context, j queue.Job) {
	start := time.Now()
	stop := w.keepLease(ctx, j)
	var res string
	switch j.Kind {
	case queue.StatusCheck, queue.SweepCheck:
		res = w.profile(ctx, j)
	case queue.Officers:
		res = w.officers(ctx, j)
	case queue.FilingCheck:
		res = w.filingCheck(ctx, j)
	case queue.PSCs:
		res = w.pscs(ctx, j)
	}
	stop()
	w.counts[j.Kind][res].Inc()
	if res == Done {
		w.seconds[j.Kind].UpdateDuration(start)
	}
}

// keepLease renews j's lease every third of its length until the returned
// function is called: a list of many pages, each paced by the budget, can
// outlast one lease.
func (w *Workers) keepLease(ctx context.Context, j queue.Job) func() {
	every := max(time.Until(j.LeaseUntil)/3, time.Second)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
				held := j // Renew moves LeaseUntil; the worker's copy is its own
				if err := w.cfg.Queue.Renew(ctx, &held); err != nil {
					if ctx.Err() == nil {
						w.log.Warn("lease not renewed", "job", j.ID, "kind", j.Kind, "company", j.Company, "err", err)
					}
					if errors.Is(err, queue.ErrLeaseLost) {
						return
					}
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// progress logs a line every ProgressEvery while jobs finish.
func (w *Workers) progress(ctx context.Context) {
	t := time.NewTicker(w.cfg.ProgressEvery)
	defer t.Stop()
	last := map[string]int64{}
	var lastStored int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := map[string]int64{}
		changed := false
		for _, k := range w.kinds {
			for _, r := range results() {
				now[r] += int64(w.counts[k][r].Get())
			}
		}
		args := []any{}
		for _, r := range results() {
			if n := now[r] - last[r]; n > 0 || r == Done {
				args = append(args, r, n)
				changed = changed || n > 0
			}
		}
		stored := w.stored.Load()
		if !changed {
			continue
		}
		b := w.cfg.Budget.State()
		args = append(args, "officers_stored", stored-lastStored, "budget_remain", b.Remain, "budget_limit", b.Limit,
			"breaker", w.cfg.Breaker.State().String())
		w.log.Info("REST progress", args...)
		last, lastStored = now, stored
	}
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
