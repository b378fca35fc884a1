package status

import (
	"fmt"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Disk thresholds: under diskLow status warns; under diskFull SQLite
// cannot grow the WAL by a batch, and nothing commits.
const (
	diskLow  = 512 << 20
	diskFull = 1 << 20
)

// decide applies SPEC.md's verdict table: the worst verdict wins, and
// every reason says what is wrong and what to do.
func (r *Report) decide(th Thresholds, now time.Time) {
	add := func(v Verdict, reason string) {
		if v > r.Verdict {
			r.Verdict = v
		}
		r.Reasons = append(r.Reasons, reason)
	}
	if !r.judgeService(th, now, add) {
		return
	}
	if !r.Running {
		// A stopped service runs no REST worker, whatever it last said.
		r.REST.WorkersRunning, r.REST.Breaker = false, ""
	}
	r.judgeStream(th, now, add)
	r.judgeREST(add)
	r.judgeData(add)
	r.judgeFeed(add)
}

// judgeService decides whether the service runs, and whether the disk
// lets it write; false when it never ran (nothing else to judge).
func (r *Report) judgeService(th Thresholds, now time.Time, add func(Verdict, string)) bool {
	s := r.Service
	free := r.Database.FreeBytes
	r.Database.DiskFull = free >= 0 && free < diskFull
	fix := fmt.Sprintf("free space on the filesystem holding %s (old backups, logs, the journal) or grow it; ingestion resumes by itself", dirOf(r.Database.Path))
	full := "disk full: the cursor holds until space returns"
	if free >= 0 {
		full += fmt.Sprintf(" (%s free)", bytesText(free))
	}
	stopped := !s.StoppedAt.Before(s.HeartbeatAt)
	switch {
	case s.HeartbeatAt.IsZero():
		add(Warning, "never run: no chwatch run has used this database yet")
		return false
	case r.Database.DiskFull && !stopped && now.Sub(s.HeartbeatAt) > th.StaleAfter:
		// The service writes its heartbeat to this full disk: its age
		// says nothing about whether it runs.
		add(Critical, fmt.Sprintf("%s; the service cannot write its heartbeat (last one %s ago), so that is no sign it stopped: %s; then check it runs (systemctl status chwatch)", full, Ago(now.Sub(s.HeartbeatAt)), fix))
	case now.Sub(s.HeartbeatAt) > th.StaleAfter || stopped:
		why := fmt.Sprintf("service not running: last heartbeat %s ago", Ago(now.Sub(s.HeartbeatAt)))
		if !s.StoppedAt.IsZero() {
			why += fmt.Sprintf(" (stopped cleanly at %s)", db.FormatTime(s.StoppedAt))
		} else if s.DiskFull {
			why += " (it then reported a full disk; there is room now)"
		}
		add(Critical, why+": start it (systemctl start chwatch, or chwatch run) and check its log")
		if r.Database.DiskFull {
			add(Critical, full+": "+fix)
		}
	default:
		r.Running = true
		if r.Database.DiskFull || s.DiskFull {
			r.Database.DiskFull = true
			add(Critical, full+": "+fix)
		}
	}
	return true
}

// judgeStream: a refused stream key, and a stream down past the
// thresholds, while the service runs (a stopped service's stream state is
// history).
func (r *Report) judgeStream(th Thresholds, now time.Time, add func(Verdict, string)) {
	s := r.Service
	if !r.Running {
		return
	}
	if s.StreamState == "unauthorized" {
		add(Critical, "the stream answers 401: the stream key is wrong or revoked (set CHWATCH_STREAM_KEY)")
	}
	if s.StreamState == "connected" || s.StreamSince.IsZero() {
		return
	}
	down := now.Sub(s.StreamSince)
	why := fmt.Sprintf("stream down for %s", Ago(down))
	if s.StreamState == "stalled" {
		why = fmt.Sprintf("stream stalled for %s: lines arrive too slowly, and each connection is cut after stream.line_timeout", Ago(down))
	}
	if s.StreamError != "" {
		why += ": " + s.StreamError
	}
	why += " (check the network and the service log; it keeps reconnecting)"
	switch {
	case down > th.DownCrit:
		add(Critical, why)
	case down > th.DownWarn:
		add(Warning, why)
	}
}

// judgeData: what waits for the operator whether or not the service runs:
// open gaps, dead jobs, a disk filling up.
func (r *Report) judgeData(add func(Verdict, string)) {
	for _, g := range r.Gaps {
		add(Warning, fmt.Sprintf("unresolved stream gap %d (timepoints %d to %d): import a bulk file dated after it or run `chwatch gaps resolve %d --note TEXT`", g.ID, g.FromTimepoint, g.ToTimepoint, g.ID))
	}
	if r.Queue.Dead > 0 {
		add(Warning, fmt.Sprintf("%d dead jobs (see `chwatch queue status`, retry with `chwatch queue retry`)", r.Queue.Dead))
	}
	if free := r.Database.FreeBytes; !r.Database.DiskFull && free >= 0 && free < diskLow {
		add(Warning, fmt.Sprintf("disk nearly full: %d MB free beside the database (free space before the service stops)", free>>20))
	}
}
