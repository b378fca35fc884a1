package status

import (
	"strconv"
	"time"
)

// RESTService is what a running chwatch publishes about its REST workers,
// in service_state beside the rest of Service (its JSON keys sit in
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
