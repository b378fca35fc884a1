package status

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apibudget "github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// RESTService is what a running chwatch publishes about its REST side, in
// service_state beside the rest of Service (its JSON keys sit in
// "service").
type RESTService struct {
	RESTWorkers    int       `json:"rest_workers"`               // REST workers running; 0 when none (no API key, or stopped)
	APIState       string    `json:"api_state,omitempty"`        // ok | unauthorized | forbidden | paused; "" without REST workers
	APIPausedUntil time.Time `json:"api_paused_until,omitzero"`  // while REST work is paused (a 429, 401 or 403)
	APIPauseReason string    `json:"api_pause_reason,omitempty"` // rate_limited | unauthorized | forbidden | exhausted
	APIBudgetLimit int64     `json:"api_budget_limit,omitempty"` // requests per window, as the server last said
	APIBudgetReset time.Time `json:"api_budget_reset,omitzero"`  // when the current window resets
	APIRateLimited int64     `json:"api_rate_limited"`           // 429s ever met on this database
	APILastError   string    `json:"api_last_error,omitempty"`   // the last failed REST call or unwritten answer; never a secret
	APILastErrorAt time.Time `json:"api_last_error_at,omitzero"` // when
	BreakerSince   time.Time `json:"breaker_since,omitzero"`     // when BreakerState began (zero: closed since start)
}

func (s RESTService) kv(m map[string]string) {
	t := func(x time.Time) string {
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(time.RFC3339Nano)
	}
	m["rest_workers"] = strconv.Itoa(s.RESTWorkers)
	m["api_state"] = s.APIState
	m["api_paused_until"] = t(s.APIPausedUntil)
	m["api_pause_reason"] = s.APIPauseReason
	m["api_budget_limit"] = strconv.FormatInt(s.APIBudgetLimit, 10)
	m["api_budget_reset"] = t(s.APIBudgetReset)
	m["api_rate_limited"] = strconv.FormatInt(s.APIRateLimited, 10)
	m["api_last_error"] = s.APILastError
	m["api_last_error_at"] = t(s.APILastErrorAt)
	m["breaker_since"] = t(s.BreakerSince)
}

func parseREST(kv map[string]string) RESTService {
	t := func(k string) time.Time { x, _ := time.Parse(time.RFC3339Nano, kv[k]); return x }
	i := func(k string) int64 { n, _ := strconv.ParseInt(kv[k], 10, 64); return n }
	return RESTService{
		RESTWorkers: int(i("rest_workers")), APIState: kv["api_state"], APIPausedUntil: t("api_paused_until"),
		APIPauseReason: kv["api_pause_reason"], APIBudgetLimit: i("api_budget_limit"), APIBudgetReset: t("api_budget_reset"),
		APIRateLimited: i("api_rate_limited"), APILastError: kv["api_last_error"], APILastErrorAt: t("api_last_error_at"),
		BreakerSince: t("breaker_since"),
	}
}

// OldestJob is the oldest queued job of a kind.
type OldestJob struct {
	CreatedAt  string  `json:"created_at"`
	AgeSeconds float64 `json:"age_seconds"`
}

// Budget is the shared REST budget as api_budget holds it.
type Budget struct {
	Limit         int     `json:"limit"`
	WindowSeconds float64 `json:"window_seconds"`
	Remain        int     `json:"remain"`
	ResetsAt      string  `json:"resets_at,omitempty"` // when the current window resets; empty when unknown or past
	PausedUntil   string  `json:"paused_until,omitempty"`
	PauseReason   string  `json:"pause_reason,omitempty"`
	Shared        bool    `json:"shared"` // another program spends the same key
	Requests      int64   `json:"requests"`
	RateLimited   int64   `json:"rate_limited"` // 429s, ever
	UpdatedAt     string  `json:"updated_at"`
}

// Backlog is how long the pending REST jobs take at the budget's pace.
type Backlog struct {
	Jobs     int64 `json:"jobs"`     // queued and running jobs the workers run
	Requests int64 `json:"requests"` // the requests they need, at RequestsPerJob
	// RequestsPerJob is the measured average per kind (an officer list
	// can take several pages); 1 until a job of the kind is measured.
	RequestsPerJob map[string]float64 `json:"requests_per_job"`
	Seconds        float64            `json:"seconds"` // Requests at Limit per Window
	Limit          int                `json:"limit"`
	WindowSeconds  float64            `json:"window_seconds"`
	Text           string             `json:"text"` // "about 2d 8h at 600 requests per 5m0s"
}

// REST is the REST side of the report.
type REST struct {
	Budget  *Budget `json:"budget,omitempty"` // nil before any REST request on this database
	Backlog Backlog `json:"backlog"`
}

// restKinds are the kinds the REST workers of this version run.
var restKinds = []queue.Kind{queue.StatusCheck, queue.SweepCheck, queue.Officers}

// gatherREST reads the queue by kind and state, the oldest queued jobs,
// the budget and the backlog's estimate.
func (r *Report) gatherREST(ctx context.Context, q db.Querier, th Thresholds, now time.Time) error {
	depths, err := queue.Depths(ctx, q)
	if err != nil {
		return err
	}
	r.Queue.Jobs = map[string]map[string]int64{}
	for k, states := range depths {
		r.Queue.Jobs[string(k)] = map[string]int64{}
		for s, n := range states {
			r.Queue.Jobs[string(k)][string(s)] = n
		}
	}
	oldest, err := queue.Oldest(ctx, q)
	if err != nil {
		return err
	}
	r.Queue.Oldest = map[string]OldestJob{}
	for k, t := range oldest {
		r.Queue.Oldest[string(k)] = OldestJob{CreatedAt: db.FormatTime(t), AgeSeconds: max(now.Sub(t).Seconds(), 0)}
	}
	b, ok, err := apibudget.Read(ctx, q)
	if err != nil {
		return err
	}
	limit, window := th.RateLimit, th.RateWindow
	if ok {
		r.REST.Budget = &Budget{Limit: b.Limit, WindowSeconds: b.Window.Seconds(), Remain: b.Remain, PauseReason: b.PauseReason,
			Shared: b.Shared, Requests: b.Requests, RateLimited: b.RateLimited, UpdatedAt: db.FormatTime(b.UpdatedAt)}
		if b.WindowEnd.After(now) {
			r.REST.Budget.ResetsAt = db.FormatTime(b.WindowEnd)
		}
		if b.PausedUntil.After(now) {
			r.REST.Budget.PausedUntil = db.FormatTime(b.PausedUntil)
		}
		limit, window = b.Limit, b.Window
	}
	if limit <= 0 || window <= 0 {
		limit, window = apibudget.DefaultLimit, apibudget.DefaultWindow
	}
	costs, err := queue.Costs(ctx, q)
	if err != nil {
		return err
	}
	bl := Backlog{RequestsPerJob: map[string]float64{}, Limit: limit, WindowSeconds: window.Seconds()}
	var requests float64
	for _, k := range restKinds {
		per := costs[k]
		if per <= 0 {
			per = 1
		}
		bl.RequestsPerJob[string(k)] = per
		n := depths.Count(k, queue.StateQueued) + depths.Count(k, queue.StateRunning)
		bl.Jobs += n
		requests += float64(n) * per
	}
	bl.Requests = int64(requests + 0.5)
	bl.Seconds = requests * window.Seconds() / float64(limit)
	bl.Text = "none"
	if bl.Requests > 0 {
		bl.Text = fmt.Sprintf("about %s at %d requests per %s", span(time.Duration(bl.Seconds*float64(time.Second))), limit, window)
		if r.REST.Budget != nil && r.REST.Budget.Shared {
			bl.Text += ", longer while another program spends the same key"
		}
	}
	r.REST.Backlog = bl
	return nil
}

// decideREST adds the REST side's verdicts.
func (r *Report) decideREST(add func(Verdict, string)) {
	s := r.Service
	if !r.Running {
		return
	}
	if s.APIState == "forbidden" {
		why := "the REST API answers 403: Companies House refuses this machine's address; REST work is paused (api.forbidden_wait)"
		if !s.APIPausedUntil.IsZero() {
			why += " until " + db.FormatTime(s.APIPausedUntil)
		}
		add(Critical, why+"; do not restart in a loop (see the runbook, \"403 from the API\")")
	}
	if s.RESTWorkers == 0 && r.Queue.StatusChecks > 0 {
		add(Warning, fmt.Sprintf("%d status checks wait but no REST workers run: their companies keep their stored status (set CHWATCH_API_KEY and restart chwatch run)", r.Queue.StatusChecks))
	}
}

// span writes a long duration for people: "2d 7h", "3h 20m", "12m", "40s".
func span(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute).Minutes()))
	}
	return d.Round(time.Second).String()
}
