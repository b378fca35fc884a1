package app

import (
	"encoding/json"
	"fmt"
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
while chwatch run writes, and answers in milliseconds on millions of rows.

The first line is the verdict with its reasons and their fixes (monitoring-plugin
output). Then: the service (pid, uptime, heartbeat); the stream's state and since
when, the lag (receive time minus published_at of the latest event) beside the
last event's age, the cursor; today's events by outcome (UTC day); companies,
strike-off total, today's entries and exits (first sightings are not entries);
why and when the strike-off companies go (kinds, suspensions, dissolutions due
this month and next, overdue; the upgrade's backfill; unknown filing items); the
REST queue by kind with the oldest job's age and the drain estimate; the
REST budget and breaker; open gaps; the last error; the database's size, its
WAL's and the free disk; the latest transitions. --json prints the same facts
(keys are only ever added). Exit codes follow the monitoring-plugin convention.`,
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
			th := status.Thresholds{StaleAfter: cfg.Status.StaleAfter.Duration, DownWarn: cfg.Status.DownWarn.Duration, DownCrit: cfg.Status.DownCrit.Duration,
				RateLimit: cfg.API.RateLimit, RateWindow: cfg.API.RateWindow.Duration}
			r, err := status.Gather(c.Context, d, th, time.Now())
			if err != nil {
				return fail(err)
			}
			v, _ := version()
			if asJSON {
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
				status.Render(e.stdout, r, v)
			}
			if r.Verdict == status.OK {
				return nil
			}
			return &exitError{code: int(r.Verdict), err: errQuiet}
		},
	}
}
