package app

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/export"
	"github.com/urfave/cli/v2"
)

func (e *env) exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write companies, strike-off, officers, changes or pscs as CSV with a header row",
		ArgsUsage: "companies|strike-off|officers|changes|pscs",
		Description: `Reads one snapshot of the database, so it runs beside chwatch run without
blocking it and never sees half a batch. Cells starting with = + - @ tab or
carriage return get a leading ' unless --raw; ids (officer_id, psc_id) of
only letters, digits, - and _ are left as they are.

--since TIME keeps rows at or after TIME (companies: updated_at, strike-off:
strike_off_since, officers: fetched_at, changes: detected_at, pscs: fetched_at).
pscs holds the persons with significant control of strike-off companies, fetched
only with enrich.pscs = true.
--due-before DATE (strike-off only) keeps the companies Companies House may
dissolve before DATE (dissolution_due_on < DATE, exclusive), soonest first,
leaving out those whose strike-off is suspended: "what will be dissolved this
month" is --due-before the first of next month.
--state FILE is for cron: only rows written since the mark in FILE (a change
sequence, not a clock; a missing file exports everything), and the mark moves
only after the output is safely written. Use one state file per kind and
output.

Example: chwatch export strike-off --state /var/lib/chwatch/strike-off.state --out /srv/exports/strike-off.csv`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write to `FILE` (a temporary file beside it, fsynced, then renamed) instead of stdout"},
			&cli.StringFlag{Name: "since", Usage: "only rows at or after `TIME` (RFC 3339, e.g. 2026-11-28T00:00:00Z)"},
			&cli.StringFlag{Name: "state", Usage: "incremental: only rows changed since the mark in `FILE`, which then advances"},
			&cli.StringFlag{Name: "due-before", Usage: "strike-off only: companies due for dissolution before `DATE` (YYYY-MM-DD, exclusive), suspended ones left out"},
			&cli.BoolFlag{Name: "raw", Usage: "do not neutralise cells that look like spreadsheet formulas"},
		},
		Action: func(c *cli.Context) error {
			args, err := positionals(c)
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return usageErr("export: give exactly one KIND (%s), e.g. chwatch export strike-off --out strike-off.csv", kinds())
			}
			kind, err := export.ParseKind(args[0])
			if err != nil {
				return usageErr("export: %v", err)
			}
			opt := export.Options{Raw: c.Bool("raw")}
			if s := c.String("since"); s != "" {
				if opt.Since, err = export.ParseSince(s); err != nil {
					return usageErr("export: %v", err)
				}
			}
			if c.IsSet("due-before") {
				if kind != export.StrikeOff {
					return usageErr("export: --due-before is for the strike-off export only, not %s", kind)
				}
				if opt.DueBefore, err = export.ParseDueBefore(c.String("due-before")); err != nil {
					return usageErr("export: %v", err)
				}
			}
			statePath := c.String("state")
			if statePath != "" && c.IsSet("since") {
				return usageErr("export: --since and --state do not go together: --state exports what changed since its own mark")
			}
			out := c.String("out")
			if c.IsSet("out") && out == "" {
				return usageErr("export: --out needs a file name")
			}
			cfg, err := e.loadConfig(c)
			if err != nil {
				return err
			}
			if statePath != "" {
				if err := export.CheckStatePath(statePath); err != nil {
					return withCode(ExitFailure, err)
				}
				mark, err := export.ReadMark(statePath)
				if err != nil {
					return withCode(ExitFailure, err)
				}
				opt.Incremental, opt.After = true, mark
			}
			d, err := db.OpenReader(c.Context, cfg.Database.Path)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer d.Close()
			v, err := d.CheckVersion(c.Context)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			if v < db.Latest() {
				return withCode(ExitFailure, fmt.Errorf("export: database %s is at schema version %d, this chwatch needs %d (run chwatch migrate up)", d.Path, v, db.Latest()))
			}

			var res export.Result
			write := func(w io.Writer) error {
				var err error
				res, err = export.Write(c.Context, d.R, w, kind, opt)
				return err
			}
			if out != "" {
				err = export.WriteFile(out, export.OutMode, write)
			} else {
				err = write(e.stdout)
				if err == nil {
					err = syncStdout(e.stdout)
				}
			}
			if err != nil {
				where := "stdout"
				if out != "" {
					where = out
				}
				return withCode(ExitFailure, fmt.Errorf("export %s to %s: %w (no state mark was moved)", kind, where, err))
			}
			if statePath != "" {
				if err := export.WriteMark(statePath, res.Mark); err != nil {
					return withCode(ExitFailure, fmt.Errorf("export %s: the CSV is written but %w: the next run exports these rows again", kind, err))
				}
			}
			return nil
		},
	}
}

func kinds() string {
	s := make([]string, len(export.Kinds))
	for i, k := range export.Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// syncStdout makes output redirected to a file durable before the state mark
// moves; pipes and terminals cannot be synced and need not be.
func syncStdout(w io.Writer) error {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}
