package app

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/status"
	"github.com/urfave/cli/v2"
)

const exitUnknown = int(status.Unknown)

func (e *env) statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "one screen on the service's state; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
		Description: `Reads only the database, so it works as another user in the service's group
while chwatch run writes. Exit codes follow the monitoring-plugin convention.`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the same facts as one JSON object"}},
		Action: func(c *cli.Context) error {
			asJSON := c.Bool("json")
			fail := func(err error) error {
				if asJSON {
					json.NewEncoder(e.stdout).Encode(map[string]any{"verdict": "UNKNOWN", "reasons": []string{err.Error()}})
				} else {
					fmt.Fprintf(e.stdout, "CHWATCH UNKNOWN - %v\n", err)
				}
				return &exitError{code: exitUnknown, err: errQuiet}
			}
			if c.NArg() > 0 {
				return fail(fmt.Errorf("status takes no arguments, got %q", c.Args().Slice()))
			}
			cfg, err := e.loadConfig(c)
			if err != nil {
				return fail(err)
			}
			d, err := db.OpenReader(c.Context, cfg.Database.Path)
			if err != nil {
				return fail(err)
			}
			defer d.Close()
			th := status.Thresholds{StaleAfter: cfg.Status.StaleAfter.Duration, DownWarn: cfg.Status.DownWarn.Duration, DownCrit: cfg.Status.DownCrit.Duration}
			r, err := status.Gather(c.Context, d, th, time.Now())
			if err != nil {
				return fail(err)
			}
			if asJSON {
				v, _ := version()
				out := struct {
					Version string `json:"version"`
					*status.Report
				}{v, r}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return fail(err)
				}
			} else {
				render(e.stdout, r)
			}
			if r.Verdict == status.OK {
				return nil
			}
			return &exitError{code: int(r.Verdict), err: errQuiet}
		},
	}
}

func render(w io.Writer, r *status.Report) {
	v, _ := version()
	head := "all well"
	if len(r.Reasons) > 0 {
		head = strings.Join(r.Reasons, "; ")
	}
	fmt.Fprintf(w, "CHWATCH %s - %s\n\n", r.Verdict, head)
	row := func(k, format string, a ...any) { fmt.Fprintf(w, "%-11s %s\n", k, fmt.Sprintf(format, a...)) }
	row("version", "%s (database schema %d)", v, r.Database.SchemaVersion)
	free := size(r.Database.FreeBytes) + " free"
	switch {
	case r.Database.FreeBytes < 0:
		free = "free space unknown"
	case r.Database.DiskFull:
		free = "DISK FULL, " + free
	}
	row("database", "%s (%s, WAL %s, %s)", r.Database.Path, size(r.Database.Bytes), size(r.Database.WALBytes), free)
	s := r.Service
	now, _ := db.ParseTime(r.Now)
	switch {
	case s.HeartbeatAt.IsZero():
		row("service", "never run")
	case r.Running:
		row("service", "running, pid %d, version %s, up %s, heartbeat %s ago", s.PID, s.Version, ago(now, s.StartedAt), ago(now, s.HeartbeatAt))
	case r.Database.DiskFull && s.StoppedAt.Before(s.HeartbeatAt):
		row("service", "unknown: last heartbeat %s ago (pid %d), which a full disk keeps it from writing", ago(now, s.HeartbeatAt), s.PID)
	default:
		row("service", "NOT RUNNING: last heartbeat %s ago (pid %d)", ago(now, s.HeartbeatAt), s.PID)
	}
	if !s.HeartbeatAt.IsZero() {
		stream := s.StreamState
		if !s.StreamSince.IsZero() {
			stream += " for " + ago(now, s.StreamSince)
		}
		if s.StreamError != "" {
			stream += " (" + s.StreamError + ")"
		}
		row("stream", "%s, %d reconnects", stream, s.Reconnects)
	}
	if r.Cursor.Timepoint > 0 {
		last := "never"
		if !s.LastEventAt.IsZero() {
			last = ago(now, s.LastEventAt) + " ago"
		}
		row("cursor", "timepoint %d (published %s), lag %.1fs, last event %s", r.Cursor.Timepoint, r.Cursor.PublishedAt, s.LagSeconds, last)
	} else {
		row("cursor", "none yet")
	}
	var ev []string
	for _, o := range []string{"applied", "unchanged", "stale", "deleted", "invalid"} {
		ev = append(ev, fmt.Sprintf("%s %d", o, r.Events[o]))
	}
	row("events", "%s; rejected lines %d", strings.Join(ev, ", "), r.Rejects)
	row("companies", "%d, in strike-off %d (today: %d entered, %d left)", r.Companies, r.StrikeOff, r.EnteredToday, r.LeftToday)
	breaker := s.BreakerState
	if breaker == "" {
		breaker = "closed"
	}
	budget := "REST workers not running"
	if s.APIBudget >= 0 {
		budget = fmt.Sprintf("API budget %d left; breaker %s", s.APIBudget, breaker)
	}
	row("queue", "%d pending (%d status checks), %d dead, %d refused; %s", r.Queue.Pending, r.Queue.StatusChecks, r.Queue.Dead, r.Queue.Refused, budget)
	if s.Sweep != "" {
		row("sweep", "%s", s.Sweep)
	}
	if len(r.Gaps) == 0 {
		row("gaps", "none open")
	}
	for _, g := range r.Gaps {
		row("gap", "#%d timepoints %d..%d (%s to %s), detected %s", g.ID, g.FromTimepoint, g.ToTimepoint, g.FromTime, g.ToTime, g.DetectedAt)
	}
	if s.LastError != "" {
		row("last error", "%s", s.LastError)
	}
	for i, t := range r.Recent {
		k := ""
		if i == 0 {
			k = "recent"
		}
		first := ""
		if t.FirstSeen {
			first = " (first sight)"
		}
		row(k, "%s %s %s%s via %s at %s", strings.ReplaceAll(t.Change, "_", " "), t.Company, t.Name, first, t.Source, t.SourceTime)
	}
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

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
