package status

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// Render writes the human view: the verdict line a monitoring plugin
// prints (verdict, reasons, fixes), then one row per fact. version is this
// chwatch's.
func Render(w io.Writer, r *Report, version string) {
	head := "all well"
	if len(r.Reasons) > 0 {
		head = strings.Join(r.Reasons, "; ")
	}
	fmt.Fprintf(w, "CHWATCH %s - %s\n\n", r.Verdict, head)
	p := &printer{w: w, r: r, now: r.now}
	if p.now.IsZero() {
		p.now, _ = db.ParseTime(r.Now) // a report not from Gather
	}
	if r.Database.SchemaVersion > 0 {
		p.service()
		p.stream()
		p.events()
		p.companies()
		p.filings()
		p.queue()
		p.rest()
		p.feed()
		p.gaps()
		if r.Service.LastError != "" {
			p.row("last error", "%s", r.Service.LastError)
		}
	}
	p.database(version)
	p.recent()
}

type printer struct {
	w   io.Writer
	r   *Report
	now time.Time
}

// row prints a row; an empty key continues the row above.
func (p *printer) row(key, format string, a ...any) {
	fmt.Fprintf(p.w, "%-11s %s\n", key, fmt.Sprintf(format, a...))
}

func (p *printer) ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return Ago(p.now.Sub(t))
}

func (p *printer) service() {
	s, r := p.r.Service, p.r
	switch {
	case s.HeartbeatAt.IsZero():
		p.row("service", "never run on this database")
	case r.Running:
		p.row("service", "running, pid %d, version %s, up %s, heartbeat %s ago", s.PID, s.Version, p.ago(s.StartedAt), p.ago(s.HeartbeatAt))
	case r.Database.DiskFull && s.StoppedAt.Before(s.HeartbeatAt):
		p.row("service", "unknown: last heartbeat %s ago (pid %d), which a full disk keeps it from writing", p.ago(s.HeartbeatAt), s.PID)
	case !s.StoppedAt.Before(s.HeartbeatAt):
		p.row("service", "NOT RUNNING: stopped cleanly %s ago (pid %d, version %s)", p.ago(s.StoppedAt), s.PID, s.Version)
	default:
		p.row("service", "NOT RUNNING: last heartbeat %s ago (pid %d, version %s)", p.ago(s.HeartbeatAt), s.PID, s.Version)
	}
}

// stream prints the stream's state, the lag and the cursor.
func (p *printer) stream() {
	s, r := p.r.Service, p.r
	if !s.HeartbeatAt.IsZero() {
		state := s.StreamState
		if state == "" {
			state = "unknown"
		}
		if !s.StreamSince.IsZero() {
			state += fmt.Sprintf(" since %s (%s)", db.FormatTime(s.StreamSince), p.ago(s.StreamSince))
		}
		if s.StreamError != "" {
			state += ": " + s.StreamError
		}
		p.row("stream", "%s; %s", state, plural(s.Reconnects, "reconnect", "reconnects"))
		if s.Sweep != "" {
			p.row("sweep", "%s", s.Sweep)
		}
	}
	if s.LastEventAt.IsZero() {
		p.row("lag", "no event received yet")
	} else {
		note := ""
		if !r.Running {
			note = ", as last reported"
		}
		p.row("lag", "%s (receive time minus published_at of the latest event)%s; last event %s ago", lag(s.LagSeconds), note, p.ago(s.LastEventAt))
	}
	if r.Cursor.Timepoint > 0 {
		moved, _ := db.ParseTime(r.Cursor.UpdatedAt)
		p.row("cursor", "timepoint %d, published %s, moved %s ago", r.Cursor.Timepoint, r.Cursor.PublishedAt, p.ago(moved))
	} else {
		p.row("cursor", "none yet")
	}
}

// outcomes are the event outcomes in screen order.
var outcomes = []string{"applied", "unchanged", "stale", "deleted", "invalid"}

func (p *printer) events() {
	r := p.r
	var today []string
	for _, o := range outcomes {
		today = append(today, fmt.Sprintf("%s %s", count(r.Today.Events[o]), o))
	}
	var all int64
	for _, n := range r.Events {
		all += n
	}
	p.row("events", "today %s; %s rejected; %s in all", strings.Join(today, ", "), plural(r.Today.Rejects, "line", "lines"), plural(all, "event", "events"))
}

func (p *printer) companies() {
	r := p.r
	first := ""
	if r.Today.FirstSeen > 0 {
		first = fmt.Sprintf(", and %s first seen in strike-off (no entries: the day they entered is unknown)", count(r.Today.FirstSeen))
	}
	p.row("companies", "%s, in strike-off %s; today %s entered, %s left%s", count(r.Companies), count(r.StrikeOff), count(r.Today.Entered), count(r.Today.Left), first)
	switch {
	case r.PSCsSince != "":
		p.row("pscs", "%s stored (enrich.pscs on since %s)", count(r.PSCs), r.PSCsSince)
	case r.PSCs > 0:
		p.row("pscs", "%s stored (enrich.pscs off: no more are fetched)", count(r.PSCs))
	}
}

// queue prints each kind with work waiting or dead, the drain estimate and
// the refusals.
func (p *printer) queue() {
	r := p.r
	key := "queue"
	for _, k := range queue.Kinds() {
		jobs := r.REST.Jobs
		queued, running, dead := jobs.Count(k, queue.StateQueued), jobs.Count(k, queue.StateRunning), jobs.Count(k, queue.StateDead)
		if queued+running+dead == 0 {
			continue
		}
		var parts []string
		if queued > 0 {
			q := count(queued) + " queued"
			if age, ok := r.REST.OldestQueuedAgeSeconds[k]; ok {
				q += fmt.Sprintf(" (oldest %s)", Ago(seconds(age)))
			}
			parts = append(parts, q)
		}
		if running > 0 {
			parts = append(parts, count(running)+" running")
		}
		if dead > 0 {
			parts = append(parts, count(dead)+" dead")
		}
		p.row(key, "%s: %s", k, strings.Join(parts, ", "))
		key = ""
	}
	if key != "" {
		p.row(key, "empty")
		key = ""
	}
	if d := r.REST.Drain; d != nil {
		p.row(key, "drain %s", d.text())
	}
	if r.Queue.Refused > 0 {
		p.row(key, "%s fetches (officers, filing checks, PSCs) refused past queue.max_depth", count(r.Queue.Refused))
	}
}

// rest prints the budget and the breaker, or that no REST worker runs.
func (p *printer) rest() {
	r := p.r
	b := r.REST.Budget
	if !r.REST.WorkersRunning {
		p.row("rest", "REST workers not running")
		if b != nil {
			p.row("budget", "last known: %s", p.budget(b))
		}
		return
	}
	if s := r.Service; s.RESTWorkers > 0 {
		api := "API " + s.APIState
		if s.APIPauseReason != "" && s.APIPausedUntil.After(p.now) {
			api += fmt.Sprintf(" (%s until %s)", strings.ReplaceAll(s.APIPauseReason, "_", " "), db.FormatTime(s.APIPausedUntil))
		}
		p.row("rest", "%s, %s", plural(int64(s.RESTWorkers), "worker", "workers"), api)
	}
	if b == nil {
		p.row("budget", "no REST request yet")
	} else {
		p.row("budget", "%s", p.budget(b))
	}
	breaker := r.REST.Breaker
	if since := r.Service.BreakerSince; !since.IsZero() {
		breaker += " for " + p.ago(since)
	}
	p.row("breaker", "%s", breaker)
	if s := r.Service; s.APILastError != "" {
		p.row("rest error", "%s (%s ago)", s.APILastError, p.ago(s.APILastErrorAt))
	}
}

func (p *printer) budget(b *Budget) string {
	window := seconds(b.WindowSeconds)
	out := fmt.Sprintf("%s of %s left in this %s window", count(int64(b.Remain)), count(int64(b.Limit)), short(window))
	if end, err := db.ParseTime(b.WindowEnd); err == nil && end.After(p.now) {
		out += fmt.Sprintf(" (resets in %s)", Ago(end.Sub(p.now)))
	}
	if until, err := db.ParseTime(b.PausedUntil); err == nil && until.After(p.now) {
		out += fmt.Sprintf("; PAUSED (%s) until %s", strings.ReplaceAll(b.PauseReason, "_", " "), b.PausedUntil)
	}
	out += fmt.Sprintf("; %s, %s answered 429", plural(b.Requests, "request", "requests"), count(b.RateLimited))
	if last, err := db.ParseTime(b.LastResponseAt); err == nil {
		out += fmt.Sprintf("; last answer %s %s ago", answer(b.LastStatus), p.ago(last))
	}
	if b.Shared {
		out += "; another program spends the same key"
	}
	return out
}

func answer(status int) string {
	if status == 0 {
		return "none (network error or timeout)"
	}
	return strconv.Itoa(status)
}

func (p *printer) gaps() {
	if len(p.r.Gaps) == 0 {
		p.row("gaps", "none open")
	}
	for _, g := range p.r.Gaps {
		p.row("gap", "#%d timepoints %d to %d (%s to %s), detected %s", g.ID, g.FromTimepoint, g.ToTimepoint, g.FromTime, g.ToTime, g.DetectedAt)
	}
}

func (p *printer) database(version string) {
	d := p.r.Database
	free := size(d.FreeBytes) + " free"
	switch {
	case d.FreeBytes < 0:
		free = "free space unknown"
	case d.DiskFull:
		free = "DISK FULL, " + free
	}
	p.row("database", "%s: %s, WAL %s, %s; schema %d", d.Path, size(d.Bytes), size(d.WALBytes), free, d.SchemaVersion)
	p.row("version", "%s", version)
}

func (p *printer) recent() {
	for i, t := range p.r.Recent {
		key := ""
		if i == 0 {
			key = "recent"
		}
		first := ""
		if t.FirstSeen {
			first = " (first sight)"
		}
		p.row(key, "%s %s %s%s via %s at %s", strings.ReplaceAll(t.Change, "_", " "), t.Company, t.Name, first, t.Source, t.SourceTime)
	}
}

// Ago is a duration as the screen and the reasons show it: 45s, 12m,
// 5h12m, 3d4h.
func Ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int(d.Hours())/24, int(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

// span is an estimate in words: under a minute, about 5 minutes, about
// 4.2 hours, about 2.3 days.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < 90*time.Second:
		return "about a minute"
	case d < 2*time.Hour:
		return fmt.Sprintf("about %d minutes", int(d.Round(time.Minute).Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("about %.1f hours", d.Hours())
	}
	return fmt.Sprintf("about %.1f days", d.Hours()/24)
}

// short is a window length: 5m, 1h, 30s.
func short(d time.Duration) string { return Ago(d) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// lag is the stream lag: tenths of a second while small.
func lag(s float64) string {
	if s < 10 {
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	return Ago(seconds(s))
}

// count writes n with thousands separators: 1,000,000.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// plural is n with thousands separators and the noun that fits it.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(n) + " " + many
}

// size is a file size for the screen.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// bytesText is a byte count for a reason.
func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d kB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
