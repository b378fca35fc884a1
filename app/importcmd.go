package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/chwatch/chwatch/bulk"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/importer"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// progressLogEvery is how often a non-terminal import logs its progress.
const progressLogEvery = 10 * time.Second

func (e *env) importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "apply the Free Company Data Product (the single file or its parts, .csv or .zip)",
		ArgsUsage: "FILE...",
		Description: `Reads the bulk file as a stream (never unpacked, never whole in memory) and
applies every row through the same transition rule as the stream: a company
whose stored data is newer than the file is left alone. Several FILEs are the
parts of one as-of. After a complete import, live companies the file lacks are
marked missing_from_bulk (those in strike-off are queued for a status check) and
stream gaps that ended by the as-of are resolved.

Each file is read twice: first whole, checking every row and sorting the
rows into files in DB.import-sort beside the database (they need about a
third of the CSV's size free there; a full disk stops the import with nothing
applied), then its rows are applied in company-number order, which keeps the
database's writes local whatever the file's order. The sort files are
removed when the import ends.

Safe beside a running chwatch run: each transaction holds the write lock for
about 250 ms. Progress is kept in the imports table: after Ctrl-C or a crash
the same command reads the file again and resumes after the last company
applied; a file imported completely before (same sha256) changes nothing.

Bad rows and text not in the file's encoding are found while the file is
read, before any row is applied: more than --max-errors bad rows, or a byte
that is not UTF-8 (the product is UTF-8), stop the import with nothing
applied; --encoding latin1 converts a Latin-1 (Windows-1252) file. A
complete import that holds no rows, or fewer than half the rows of the
previous complete import, is refused before any company is marked missing,
unless --force.

Exit codes: 0 done, 1 failure, more bad rows than --max-errors, text not in
the file's encoding, or a refused small import, 2 bad usage (no as-of date,
parts of different dates, ...).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "as-of", Usage: "the `DATE` (YYYY-MM-DD) the file describes (default: the date in the file name)"},
			&cli.BoolFlag{Name: "officers", Usage: "also queue officer fetches and filing checks (and PSC fetches with enrich.pscs) for companies first seen in strike-off (about 400,000 on a first import)"},
			&cli.StringFlag{Name: "errors", Usage: "write every bad row, with its line number, to `FILE` (CSV)"},
			&cli.Int64Flag{Name: "max-errors", Value: 1000, Usage: "stop with exit 1 after more than `N` bad rows"},
			&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar, even on a terminal"},
			&cli.StringFlag{Name: "encoding", Value: "utf-8", Usage: "the file's character `ENCODING`: utf-8 (the product's), or latin1 (ISO-8859-1 read as Windows-1252) to convert it"},
			&cli.BoolFlag{Name: "force", Usage: "mark missing companies even after a complete import that holds no rows, or fewer than half the rows of the previous complete import"},
		},
		Action: func(c *cli.Context) error {
			files, err := positionals(c)
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return usageErr("import: name the bulk file, e.g. chwatch import BasicCompanyDataAsOneFile-2026-11-01.zip")
			}
			if c.Int64("max-errors") < 0 {
				return usageErr("import: --max-errors must be 0 or more, not %d", c.Int64("max-errors"))
			}
			enc, err := bulk.ParseEncoding(c.String("encoding"))
			if err != nil {
				return usageErr("import: --encoding: %v", err)
			}
			asOf, err := importAsOf(c.String("as-of"), files)
			if err != nil {
				return err
			}
			cfg, err := e.loadConfig(c)
			if err != nil {
				return err
			}
			log := e.logger(cfg)
			if err := importer.Check(files); err != nil {
				if errors.Is(err, importer.ErrUsage) {
					return withCode(ExitUsage, err)
				}
				if errors.Is(err, bulk.ErrNotBulkFile) {
					return fmt.Errorf("%w (nothing was written: give the Free Company Data Product, BasicCompanyData*.csv or .zip)", err)
				}
				return err
			}

			d, err := db.Open(c.Context, cfg.Database.Path, dbOptions(cfg)...)
			if err != nil {
				return err
			}
			defer d.Close()
			if _, err := e.migrateUpLocked(c.Context, d, e.stderr); err != nil {
				return err
			}

			opts := importer.Options{
				AsOf: asOf,
				Policy: company.Policy{ConfirmExit: cfg.ConfirmExit(), KeepOfficers: cfg.StrikeOff.OnExit == "keep",
					OfficersOnFirstSight: c.Bool("officers"), PSCs: cfg.Enrich.PSCs},
				MaxDepth:  int64(cfg.Queue.MaxDepth),
				MaxErrors: c.Int64("max-errors"),
				Encoding:  enc,
				Force:     c.Bool("force"),
			}
			if name := c.String("errors"); name != "" {
				f, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
				if err != nil {
					return fmt.Errorf("create --errors file: %w", err)
				}
				defer f.Close()
				fmt.Fprintln(f, "file,line,reason,row")
				opts.Errors = f
			}
			done := e.importProgress(&opts, log, c.Bool("no-progress"))
			sum, err := importer.Run(c.Context, d, files, opts)
			done()
			// The summary ("imported ...") is for success only: a run that
			// stopped says what it did in its error.
			switch {
			case err == nil:
				fmt.Fprintln(e.stdout, sum)
				return nil
			case errors.Is(err, importer.ErrUsage):
				return withCode(ExitUsage, err)
			case errors.Is(err, importer.ErrTooManyErrors), errors.Is(err, importer.ErrShrunk):
				return fmt.Errorf("%w; %s", err, sum.SoFar())
			case errors.Is(err, context.Canceled) && c.Context.Err() != nil:
				return fmt.Errorf("import interrupted; %s; what was committed stays, run the same command to resume", sum.SoFar())
			case errors.Is(err, bulk.ErrNotBulkFile):
				return fmt.Errorf("%w (nothing was written)", err)
			case errors.Is(err, bulk.ErrEncoding):
				return fmt.Errorf("%w (if the file is Latin-1 or Windows-1252, pass --encoding latin1; otherwise repair it); the whole file is read before its rows are applied, so no row of the file was applied in this run", err)
			case errors.Is(err, importer.ErrNoSpace), errors.Is(err, importer.ErrSortBusy):
				return err
			case db.IsFull(err):
				return fmt.Errorf("%w (the disk holding the database is full: free space there, then run the same command to resume); %s; what was committed stays", err, sum.SoFar())
			}
			return fmt.Errorf("%w; %s; what was committed stays, run the same command to resume", err, sum.SoFar())
		},
	}
}

// importAsOf is --as-of, else the date every file name carries.
func importAsOf(flag string, files []string) (time.Time, error) {
	var fromName time.Time
	var first string
	for _, f := range files {
		t, ok := bulk.AsOfFromName(f)
		if !ok {
			if flag == "" {
				return time.Time{}, usageErr("import: no date in the name %s: pass --as-of YYYY-MM-DD (the date the file describes)", f)
			}
			continue
		}
		if first != "" && !t.Equal(fromName) {
			return time.Time{}, usageErr("import: %s is as of %s but %s is as of %s: the FILEs must be parts of one as-of", first, fromName.Format(time.DateOnly), f, t.Format(time.DateOnly))
		}
		fromName, first = t, f
	}
	if flag == "" {
		return fromName, nil
	}
	t, err := time.Parse(time.DateOnly, flag)
	if err != nil {
		return time.Time{}, usageErr("import: --as-of %q: want a date YYYY-MM-DD", flag)
	}
	return t, nil
}

// importProgress sets opts.Progress: a bar on a terminal, else a log line
// every progressLogEvery. Each file goes through two phases (reading and
// sorting it, then applying its rows), each with its own bar, rate and
// ETA, measured from the phase's start. The function it returns ends the
// display.
func (e *env) importProgress(opts *importer.Options, log *slog.Logger, off bool) func() {
	var file string
	var phase importer.Phase
	var phaseStart time.Time
	newPhase := func(p importer.Progress) bool {
		if p.File == file && p.Phase == phase {
			return false
		}
		file, phase, phaseStart = p.File, p.Phase, time.Now()
		return true
	}
	if f, ok := e.stderr.(*os.File); ok && !off && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		opts.Progress = func(p importer.Progress) {
			if newPhase(p) {
				if bar != nil {
					bar.Finish()
					fmt.Fprintln(e.stderr)
				}
				desc := "sorting " + p.File
				if p.Phase == importer.Applying {
					desc = "applying " + p.File
				}
				fmt.Fprintln(e.stderr, desc)
				bar = progressbar.NewOptions64(p.Total,
					progressbar.OptionSetWriter(e.stderr),
					progressbar.OptionSetWidth(30),
					progressbar.OptionShowBytes(p.Phase == importer.Sorting),
					progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionThrottle(200*time.Millisecond),
					progressbar.OptionShowDescriptionAtLineEnd(),
				)
			}
			rate := float64(p.Rows) / max(time.Since(phaseStart).Seconds(), 0.001)
			bar.Describe(fmt.Sprintf("%d rows, %.0f rows/s", p.Rows, rate))
			bar.Set64(p.Done)
		}
		return func() {
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(e.stderr)
			}
		}
	}
	var last time.Time
	opts.Progress = func(p importer.Progress) {
		if newPhase(p) {
			last = time.Now()
			return
		}
		if time.Since(last) < progressLogEvery {
			return
		}
		last = time.Now()
		elapsed := time.Since(phaseStart).Seconds()
		args := []any{"file", p.File, "phase", string(p.Phase), "rows", p.Rows, "rows_per_s", int(float64(p.Rows) / max(elapsed, 0.001))}
		if p.Total > 0 {
			pct := float64(p.Done) / float64(p.Total)
			args = append(args, "percent", int(pct*100))
			if pct > 0 {
				args = append(args, "eta", time.Duration(elapsed*(1-pct)/pct*float64(time.Second)).Round(time.Second).String())
			}
		}
		log.Info("importing", args...)
	}
	return func() {}
}
