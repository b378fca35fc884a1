package status

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// REST is the REST side of the screen: the jobs the workers drain, the
// shared budget they spend, the breaker in front of them. Everything here
// comes from counters (jobs by kind and state), one index lookup per kind
// (the oldest queued job), the api_budget row and service_state.
type REST struct {
	// WorkersRunning: the running service has REST workers (it reports a
	// budget in service_state, or its budget row was written since it
	// started).
	WorkersRunning bool `json:"workers_running"`
	// Jobs are the jobs by kind and state (queue.Depths).
	Jobs queue.Depth `json:"jobs"`
	// OldestQueued is when the oldest queued job of each kind was
	// created; kinds with nothing queued are absent.
	OldestQueued           map[queue.Kind]string  `json:"oldest_queued"`
	OldestQueuedAgeSeconds map[queue.Kind]float64 `json:"oldest_queued_age_seconds"`
	// Budget is the shared REST budget as the database holds it; nil
	// before any REST request.
	Budget *Budget `json:"budget"`
	// Breaker is the breaker's state as the service last reported it
	// (closed | half-open | open); "" without REST workers.
	Breaker string `json:"breaker_state"`
	// Drain estimates how long the queued and running jobs take; nil
	// when none wait.
	Drain *Drain `json:"drain"`
}

// Budget is the api_budget row (budget.Read). Times are as stored, on the
// writing process's clock.
type Budget struct {
	Limit          int     `json:"limit"`
	WindowSeconds  float64 `json:"window_seconds"`
	Remain         int     `json:"remain"`
	WindowEnd      string  `json:"window_end,omitempty"`
	PausedUntil    string  `json:"paused_until,omitempty"`
	PauseReason    string  `json:"pause_reason,omitempty"` // rate_limited | unauthorized | forbidden
	Refused        string  `json:"refused,omitempty"`      // unauthorized | forbidden: the last answer was a 401 or 403
	Shared         bool    `json:"shared"`                 // another program spends the same key
	Requests       int64   `json:"requests"`
	RateLimited    int64   `json:"rate_limited"`
	LastStatus     int     `json:"last_status"`
	LastResponseAt string  `json:"last_response_at,omitempty"`
	UpdatedAt      string  `json:"updated_at"`
}

// Drain is the backlog's estimated drain time: requests / limit * window,
// the pace of a budget spent whole on them, where requests are the jobs at
// the measured requests a job of their kind (an officer list can take
// several pages; one a job until a kind is measured). It is an estimate:
// failures are retried, and another program on the same key slows it.
type Drain struct {
	Jobs     int64 `json:"jobs"`     // queued and running, every kind
	Requests int64 `json:"requests"` // the requests they need, at RequestsPerJob
	// RequestsPerJob is the measured average of each kind finished so far
	// (queue.Costs); absent kinds count one request a job.
	RequestsPerJob map[queue.Kind]float64 `json:"requests_per_job,omitempty"`
	PerWindow      int                    `json:"per_window"`
	WindowSeconds  float64                `json:"window_seconds"`
	Seconds        float64                `json:"seconds"`
	// LimitFrom says where the pace comes from: "api_budget" (the server's
	// word as last stored) or "config" (api.rate_limit / api.rate_window).
	LimitFrom string `json:"limit_from"`
}

// readREST: the jobs' oldest ages, the budget row, the breaker, the drain
// estimate. readQueue has already read the counts.
func (r *Report) readREST(ctx context.Context, s source) error {
	oldest, err := queue.Oldest(ctx, s.tx)
	if err != nil {
		return err
	}
	r.REST.OldestQueued, r.REST.OldestQueuedAgeSeconds = map[queue.Kind]string{}, map[queue.Kind]float64{}
	for k, t := range oldest {
		r.REST.OldestQueued[k] = db.FormatTime(t)
		r.REST.OldestQueuedAgeSeconds[k] = s.now.Sub(t).Seconds()
	}
	b, ok, err := budget.Read(ctx, s.tx)
	if err != nil {
		return err
	}
	if ok {
		r.REST.Budget = budgetFacts(b)
	}
	svc := r.Service
	freshRow := ok && !svc.StartedAt.IsZero() && !b.UpdatedAt.Before(svc.StartedAt)
	r.REST.WorkersRunning = svc.APIBudget >= 0 || freshRow
	if r.REST.WorkersRunning {
		r.REST.Breaker = svc.BreakerState
		if r.REST.Breaker == "" {
			r.REST.Breaker = "closed"
		}
	}
	costs, err := queue.Costs(ctx, s.tx)
	if err != nil {
		return err
	}
	r.REST.Drain = drain(r.REST.Jobs, costs, r.REST.Budget, s.th)
	return nil
}

func budgetFacts(b budget.State) *Budget {
	t := func(x time.Time) string {
		if x.IsZero() {
			return ""
		}
		return db.FormatTime(x)
	}
	return &Budget{
		Limit: b.Limit, WindowSeconds: b.Window.Seconds(), Remain: b.Remain, WindowEnd: t(b.WindowEnd),
		PausedUntil: t(b.PausedUntil), PauseReason: b.PauseReason, Refused: b.Refused, Shared: b.Shared,
		Requests: b.Requests, RateLimited: b.RateLimited, LastStatus: b.LastStatus, LastResponseAt: t(b.LastResponseAt),
		UpdatedAt: t(b.UpdatedAt),
	}
}

// drain estimates the backlog's drain time at the budget's limit: the
// stored row's (the server's word) when there is one, the configured one
// otherwise; each kind's jobs at its measured requests a job.
func drain(jobs queue.Depth, costs map[queue.Kind]float64, b *Budget, th Thresholds) *Drain {
	n := jobs.Sum(queue.StateQueued) + jobs.Sum(queue.StateRunning)
	if n == 0 {
		return nil
	}
	var requests float64
	for _, k := range queue.Kinds() {
		per, ok := costs[k]
		if !ok {
			per = 1
		}
		requests += per * float64(jobs.Count(k, queue.StateQueued)+jobs.Count(k, queue.StateRunning))
	}
	d := &Drain{Jobs: n, Requests: int64(math.Round(requests)), PerWindow: th.RateLimit, WindowSeconds: th.RateWindow.Seconds(), LimitFrom: "config"}
	if len(costs) > 0 {
		d.RequestsPerJob = costs
	}
	if d.PerWindow <= 0 || d.WindowSeconds <= 0 {
		d.PerWindow, d.WindowSeconds = budget.DefaultLimit, budget.DefaultWindow.Seconds()
	}
	if b != nil && b.Limit > 0 && b.WindowSeconds > 0 {
		d.PerWindow, d.WindowSeconds, d.LimitFrom = b.Limit, b.WindowSeconds, "api_budget"
	}
	d.Seconds = math.Round(requests / float64(d.PerWindow) * d.WindowSeconds)
	return d
}

// judgeREST adds the REST verdicts of a running service: a refused key is
// CRITICAL (nothing can be fetched until it changes), an open breaker a
// WARNING (jobs wait, nothing is lost).
func (r *Report) judgeREST(add func(Verdict, string)) {
	if !r.Running {
		return
	}
	refused := ""
	if b := r.REST.Budget; b != nil && r.REST.WorkersRunning {
		refused = b.Refused
	}
	switch {
	case r.Service.APIUnauthorized || refused == budget.Unauthorized:
		add(Critical, "the REST API answers 401: the API key is wrong or revoked (set CHWATCH_API_KEY)")
	case refused == budget.Forbidden:
		add(Critical, "the REST API answers 403: Companies House refuses this client or address; REST work waits api.forbidden_wait between tries (do not restart in a loop; check the key is a REST key, then contact Companies House)")
	}
	if !r.REST.WorkersRunning && r.Queue.StatusChecks > 0 {
		add(Warning, fmt.Sprintf("%d status checks wait but no REST workers run: their companies keep their stored status (set CHWATCH_API_KEY and restart chwatch run)", r.Queue.StatusChecks))
	}
	if r.Service.BreakerState == "open" {
		add(Warning, "REST breaker open: API requests are paused, jobs wait in the queue (check that the API is reachable and the last error; a successful probe closes it)")
	}
}

// text is the estimate for the screen.
func (d *Drain) text() string {
	window := time.Duration(d.WindowSeconds * float64(time.Second))
	per := "one request a job"
	if len(d.RequestsPerJob) > 0 {
		var kinds []string
		for _, k := range queue.Kinds() {
			if c, ok := d.RequestsPerJob[k]; ok {
				kinds = append(kinds, fmt.Sprintf("%s %.2f", k, c))
			}
		}
		per = "requests a job as measured: " + strings.Join(kinds, ", ")
	}
	return fmt.Sprintf("%s at %s per %s (an estimate: %s requests, %s; the whole budget)",
		span(time.Duration(d.Seconds*float64(time.Second))), count(int64(d.PerWindow)), short(window), count(d.Requests), per)
}
