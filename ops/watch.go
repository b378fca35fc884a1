package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/gaps"
	"github.com/chwatch/chwatch/status"
)

// watch turns what the heartbeat sees into alert conditions: each beat it
// raises what holds and resolves what no longer does; the alert package
// sends only the changes.
type watch struct {
	alerts             *alert.Alerter
	downWarn, downCrit time.Duration
	onGap              string
	log                *slog.Logger

	// The stream_down text is fixed when its severity changes, so a new
	// error on each reconnect does not count as a new alert. Only the
	// heartbeat's goroutine (and the first beat before it starts) calls
	// check.
	downSev  alert.Severity
	downText string
}

func (w *watch) check(ctx context.Context, d *db.DB, now time.Time, svc status.Service) {
	w.stream(now, svc)
	if svc.DiskFull {
		w.alerts.Raise(alert.DiskFull, alert.Critical,
			"disk full: chwatch cannot commit; the cursor holds and ingestion resumes by itself when space returns (free space beside the database)",
			map[string]any{"last_error": svc.LastError})
	} else {
		w.alerts.Resolve(alert.DiskFull)
	}
	open, err := gaps.OpenGaps(ctx, d.R)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			w.log.Warn("open gaps not read for alerts", "err", err)
		}
		return
	}
	w.gaps(open)
}

func (w *watch) stream(now time.Time, svc status.Service) {
	if svc.StreamState == "unauthorized" {
		w.alerts.Raise(alert.StreamUnauthorized, alert.Critical,
			"the stream answers 401: the stream key is wrong or revoked (set CHWATCH_STREAM_KEY and restart chwatch); retrying every stream.unauthorized_wait",
			map[string]any{"since": svc.StreamSince.UTC().Format(time.RFC3339), "last_error": svc.StreamError})
	} else {
		w.alerts.Resolve(alert.StreamUnauthorized)
	}
	if svc.StreamState == "connected" {
		w.alerts.Resolve(alert.StreamDown)
		w.downSev = ""
		return
	}
	down := now.Sub(svc.StreamSince)
	sev, limit := alert.Severity(""), time.Duration(0)
	switch {
	case svc.StreamSince.IsZero():
	case down >= w.downCrit:
		sev, limit = alert.Critical, w.downCrit
	case down >= w.downWarn:
		sev, limit = alert.Warning, w.downWarn
	}
	// A 401 says it all; a stream_down already raised stays until the
	// stream is back.
	if sev == "" || (svc.StreamState == "unauthorized" && w.downSev == "") {
		return
	}
	if sev != w.downSev {
		w.downSev = sev
		w.downText = fmt.Sprintf("stream down for more than %s (since %s)", limit, svc.StreamSince.UTC().Format(time.RFC3339))
		if svc.StreamError != "" {
			w.downText += ": " + svc.StreamError
		}
		w.downText += "; chwatch keeps reconnecting (check the network and the service log)"
	}
	w.alerts.Raise(alert.StreamDown, sev, w.downText, map[string]any{
		"state": svc.StreamState, "down_since": svc.StreamSince.UTC().Format(time.RFC3339),
		"down_seconds": int64(down.Seconds()), "last_error": svc.StreamError, "reconnects": svc.Reconnects,
	})
}

func (w *watch) gaps(open []gaps.Gap) {
	if len(open) == 0 {
		w.alerts.Resolve(alert.Gap)
		return
	}
	g := open[len(open)-1]
	text := fmt.Sprintf("stream gap %d: timepoints %d to %d could not be replayed (416): events were lost", g.ID, g.FromTimepoint, g.ToTimepoint)
	if w.onGap == "sweep" {
		text += "; every strike-off company is queued for a re-check through the API (stream.on_gap = sweep)"
	}
	text += fmt.Sprintf("; import a bulk file dated after it, or `chwatch gaps resolve %d --note TEXT`", g.ID)
	if len(open) > 1 {
		text += fmt.Sprintf(" (%d gaps open)", len(open))
	}
	w.alerts.Raise(alert.Gap, alert.Warning, text, map[string]any{
		"gap_id": g.ID, "from_timepoint": g.FromTimepoint, "to_timepoint": g.ToTimepoint, "reason": g.Reason, "open_gaps": len(open),
	})
}

// deadJobs follows the jobs past queue.max_attempts.
func (w *watch) deadJobs(n int64) {
	if n == 0 {
		w.alerts.Resolve(alert.DeadJobs)
		return
	}
	w.alerts.Raise(alert.DeadJobs, alert.Warning,
		"dead jobs: REST jobs failed queue.max_attempts times and wait for the operator (`chwatch queue status`; `chwatch queue retry` queues them again)",
		map[string]any{"dead": n})
}
