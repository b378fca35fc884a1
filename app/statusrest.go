package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/status"
)

// renderREST writes status's REST rows: jobs by kind and state, the REST
// workers and their budget, the backlog's estimate and the last REST error.
func renderREST(row func(k, format string, a ...any), r *status.Report, now time.Time) {
	first := true
	for _, k := range queue.Kinds() {
		states := r.Queue.Jobs[string(k)]
		if len(states) == 0 {
			continue
		}
		var parts []string
		for _, st := range queue.States() {
			n := states[string(st)]
			if n == 0 {
				continue
			}
			p := fmt.Sprintf("%d %s", n, st)
			if o, ok := r.Queue.Oldest[string(k)]; ok && st == queue.StateQueued {
				p += fmt.Sprintf(" (oldest %s)", ago(now, now.Add(-time.Duration(o.AgeSeconds*float64(time.Second)))))
			}
			parts = append(parts, p)
		}
		key := ""
		if first {
			key, first = "jobs", false
		}
		row(key, "%s: %s", k, strings.Join(parts, ", "))
	}

	s := r.Service
	var rest []string
	if r.Running && s.RESTWorkers > 0 {
		rest = append(rest, fmt.Sprintf("%d workers", s.RESTWorkers))
		api := "API " + s.APIState
		if !s.APIPausedUntil.IsZero() {
			api += fmt.Sprintf(" (%s, until %s)", s.APIPauseReason, db.FormatTime(s.APIPausedUntil))
		}
		rest = append(rest, api)
	} else {
		rest = append(rest, "REST workers not running (they run in chwatch run with an API key)")
	}
	if b := r.REST.Budget; b != nil {
		bud := fmt.Sprintf("budget %d of %d left", b.Remain, b.Limit)
		if t, err := db.ParseTime(b.ResetsAt); err == nil {
			bud += ", window resets in " + ago(t, now)
		}
		if b.Shared {
			bud += ", shared with another program"
		}
		rest = append(rest, bud, fmt.Sprintf("%d requests, %d answered 429", b.Requests, b.RateLimited))
	}
	if r.Running && s.RESTWorkers > 0 {
		br := "breaker " + s.BreakerState
		if !s.BreakerSince.IsZero() {
			br += " for " + ago(now, s.BreakerSince)
		}
		rest = append(rest, br)
	}
	row("REST", "%s", strings.Join(rest, "; "))

	bl := r.REST.Backlog
	if bl.Jobs > 0 {
		per := fmt.Sprintf("%.1f", bl.RequestsPerJob[string(queue.Officers)])
		row("backlog", "%d jobs, %d requests: %s (an officer list takes %s requests on average)", bl.Jobs, bl.Requests, bl.Text, per)
	}
	if s.APILastError != "" {
		row("REST error", "%s (%s ago)", s.APILastError, ago(now, s.APILastErrorAt))
	}
}
