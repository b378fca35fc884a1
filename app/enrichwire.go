package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/enrich"
	"github.com/chwatch/chwatch/ops"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/status"
)

// rest is the REST side of run: budget, breaker, client and workers, built
// from the configuration. run runs it beside the stream (run), hears its
// facts for service_state through an ops.Part (part) and serves its
// metrics (m).
type rest struct {
	d       *db.DB
	budget  *budget.Budget
	breaker *breaker.Breaker
	workers *enrich.Workers
	alerts  *alert.Alerter
	log     *slog.Logger
	m       *metrics.Set

	mu    sync.Mutex
	since time.Time // when the breaker's state began
}

// newREST builds the REST side from cfg; nil without an API key. backoff,
// when not 0, is a failed job's first wait (tests). It must run under the
// instance lock: no other process claims jobs then, so every running job it
// finds was left by a process that is gone, and goes back to the queue at
// once.
func newREST(ctx context.Context, cfg *config.Config, d *db.DB, applier *company.Applier, alerts *alert.Alerter, log *slog.Logger, backoff time.Duration) (*rest, error) {
	if cfg.API.Key == "" {
		log.Info("no API key (CHWATCH_API_KEY): REST workers not started; officer fetches and status checks wait in the queue")
		return nil, nil
	}
	r := &rest{d: d, alerts: alerts, log: log.With("component", "rest"), m: metrics.NewSet()}
	q := queue.New(d, queue.Options{MaxAttempts: cfg.Queue.MaxAttempts, MaxDepth: int64(cfg.Queue.MaxDepth), BackoffMin: backoff, BackoffMax: 10 * backoff})
	if n, err := q.RecoverOrphans(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		r.log.Info("REST jobs left running by a stopped process are queued again", "jobs", n)
	}
	var err error
	r.budget, err = budget.New(ctx, d, budget.Config{
		Key: cfg.API.Key, Limit: cfg.API.RateLimit, Window: cfg.API.RateWindow.Duration,
		UnauthorizedWait: cfg.API.UnauthorizedWait.Duration, ForbiddenWait: cfg.API.ForbiddenWait.Duration,
		ResetGuard: resetGuard(cfg.API.RateWindow.Duration), Logger: log, Metrics: r.m,
	})
	if err != nil {
		return nil, fmt.Errorf("open the REST budget: %w", err)
	}
	r.breaker = breaker.New(breaker.Config{Failures: cfg.Breaker.Failures, OpenFor: cfg.Breaker.OpenFor.Duration,
		Metrics: r.m, OnChange: r.breakerChanged})
	client, err := api.New(api.Config{URL: cfg.API.URL, Key: cfg.API.Key, Timeout: cfg.API.Timeout.Duration,
		Limiter: r.budget, Logger: log, Metrics: r.m, UserAgent: "chwatch/" + Version})
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	r.workers, err = enrich.New(enrich.Config{DB: d, Queue: q, Budget: r.budget, Breaker: r.breaker, Client: client,
		Applier: applier, Alerts: alerts, Workers: cfg.API.Workers, PSCs: cfg.Enrich.PSCs, Logger: log, Metrics: r.m})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// run runs the workers until ctx is done; the jobs they hold go back to
// the queue.
func (r *rest) run(ctx context.Context) {
	if err := r.workers.Run(ctx); err != nil {
		r.log.Warn("REST workers stopped with an error", "err", err)
	}
}

// part is what the heartbeat hears of the REST side.
func (r *rest) part() ops.Part {
	return ops.Part{Report: func(_ context.Context, _ time.Time, svc *status.Service) { r.fill(svc) }}
}

// resetGuard is the budget's wait past a window's reset: 1 s per 5 minutes
// of api.rate_window (the real window's whole-second Reset), scaled with a
// shorter window so that a scaled-down test or benchmark keeps the same
// proportions.
func resetGuard(window time.Duration) time.Duration {
	if window <= 0 {
		return budget.DefaultResetGuard
	}
	return min(max(budget.DefaultResetGuard*window/budget.DefaultWindow, 10*time.Millisecond), budget.DefaultResetGuard)
}

// fill writes the REST side's state into svc, for service_state.
func (r *rest) fill(svc *status.Service) {
	ws := r.workers.State()
	if ws.Running == 0 {
		return // stopped: status says the REST workers do not run
	}
	b := r.budget.State()
	svc.BreakerState = r.breaker.State().String()
	svc.APIBudget = int64(b.Remain)
	svc.APIUnauthorized = b.Refused == budget.Unauthorized
	rs := status.RESTService{
		RESTWorkers: ws.Running, APIBudgetLimit: int64(b.Limit), APIBudgetReset: b.WindowEnd, APIRateLimited: b.RateLimited,
		APIPausedUntil: b.PausedUntil, APIPauseReason: b.PauseReason, APILastError: ws.LastError, APILastErrorAt: ws.LastErrorAt,
	}
	switch {
	case b.Refused == budget.Unauthorized:
		rs.APIState = "unauthorized"
	case b.Refused == budget.Forbidden:
		rs.APIState = "forbidden"
	case b.PauseReason != "":
		rs.APIState = "paused"
	default:
		rs.APIState = "ok"
	}
	r.mu.Lock()
	rs.BreakerSince = r.since
	r.mu.Unlock()
	svc.RESTService = rs
}

// breakerChanged announces a change of the breaker's state: one log line,
// service_state at once (status in another process sees it before the
// next heartbeat), and the breaker_open alert raised or resolved.
func (r *rest) breakerChanged(c breaker.Change) {
	r.mu.Lock()
	r.since = c.At
	r.mu.Unlock()
	const openText = "REST breaker open: consecutive REST failures; nothing is sent, jobs wait in the queue and the stream keeps flowing; a probe follows every breaker.open_for (check that the API is reachable)"
	switch {
	case c.To == breaker.Open && !r.alerts.Active(alert.BreakerOpen):
		r.alerts.Raise(alert.BreakerOpen, alert.Warning, openText, map[string]any{"last_error": r.workers.State().LastError})
	case c.To == breaker.Open:
		r.log.Warn("REST breaker open again: the probe failed", "err", r.workers.State().LastError)
	case c.To == breaker.HalfOpen:
		r.log.Info("REST breaker half-open: one probe goes")
	case r.alerts.Active(alert.BreakerOpen):
		r.alerts.Resolve(alert.BreakerOpen)
	default:
		r.log.Info("REST breaker closed")
	}
	kv := map[string]string{"breaker_state": c.To.String(), "breaker_since": c.At.UTC().Format(time.RFC3339Nano)}
	err := r.d.WriteTx(context.Background(), func(tx db.Tx) error { return db.SetState(context.Background(), tx, db.FormatTime(time.Now()), kv) })
	if err != nil {
		r.log.Warn("breaker state not written to service_state", "err", err)
	}
}

// setUpPSCs brings the pscs jobs in line with enrich.pscs (the backfill
// when it was just turned on, the queued jobs dropped when it is off) and
// says what it did. It runs under the instance lock, after newREST has
// queued again the jobs a stopped process left running.
func setUpPSCs(ctx context.Context, cfg *config.Config, d *db.DB, log *slog.Logger) error {
	res, err := enrich.SetUpPSCs(ctx, d, cfg.Enrich.PSCs, int64(cfg.Queue.MaxDepth), time.Now())
	if err != nil {
		return err
	}
	switch {
	case res.Backfill && res.Refused > 0:
		log.Warn("enrich.pscs turned on: PSC fetches queued for the companies already in strike-off, but some were refused past queue.max_depth (raise it, then turn enrich.pscs off and on again across two starts)",
			"queued", res.Queued, "refused", res.Refused)
	case res.Backfill:
		log.Info("enrich.pscs turned on: PSC fetches queued for the companies already in strike-off without PSCs", "queued", res.Queued)
	case res.Cancelled > 0:
		log.Info("enrich.pscs is off: queued PSC fetches dropped (PSCs already stored stay until their company leaves strike-off)", "dropped", res.Cancelled)
	}
	return nil
}
