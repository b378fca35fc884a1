package app

import (
	"fmt"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
	"github.com/urfave/cli/v2"
)

// addKinds are the kinds `queue add` queues: those a worker runs (pscs
// only with enrich.pscs, checked once the configuration is read).
func addKinds() []queue.Kind {
	return []queue.Kind{queue.StatusCheck, queue.Officers, queue.FilingCheck, queue.PSCs}
}

// companyNumber is what Companies House accepts as a company number.
var companyNumber = regexp.MustCompile(`^[A-Z0-9]{8}$`)

// deadShown is how many dead jobs `queue status` lists.
const deadShown = 10

func (e *env) queueCommand() *cli.Command {
	return &cli.Command{
		Name:  "queue",
		Usage: "inspect the queue of REST jobs, queue one by hand, retry dead ones, purge them",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "jobs by kind and state, the oldest queued job of each kind, refusals, and the last errors of dead jobs",
				Action: func(c *cli.Context) error {
					d, err := e.openReader(c)
					if err != nil {
						return err
					}
					defer d.Close()
					return e.queueStatus(c, d, time.Now())
				},
			},
			{
				Name:      "add",
				Usage:     "queue a job now for each company (or move its queued job to now), whatever queue.max_depth says",
				ArgsUsage: "KIND NUMBER...",
				Description: `KIND is status_check, officers, filing_check or pscs (pscs only with
enrich.pscs = true: otherwise no worker would ever run it). NUMBER is a company number, 8 letters and
digits (SC571653, 00000006; lower case is upper-cased). A company with a
queued job of that kind has it moved to now; one with a running job is left
alone. Nothing is queued when any argument is wrong (exit 2).`,
				Action: func(c *cli.Context) error {
					args, err := positionals(c)
					if err != nil {
						return err
					}
					kind, numbers, err := parseQueueAdd(args)
					if err != nil {
						return err
					}
					if kind == queue.PSCs {
						cfg, err := e.loadConfig(c)
						if err != nil {
							return err
						}
						if !cfg.Enrich.PSCs {
							return usageErr("queue add pscs: enrich.pscs is off, so no worker would run the job and the next start would drop it (set enrich.pscs = true or CHWATCH_ENRICH_PSCS=true, restart chwatch run, then queue it; nothing was queued)")
						}
					}
					d, err := e.openQueueWriter(c)
					if err != nil {
						return err
					}
					defer d.Close()
					counts := map[queue.Result]int{}
					now := time.Now()
					err = d.WriteTx(c.Context, func(tx db.Tx) error {
						clear(counts)
						for _, n := range numbers {
							res, err := queue.EnqueueNow(c.Context, tx, kind, n, now)
							if err != nil {
								return err
							}
							counts[res]++
						}
						return nil
					})
					if err != nil {
						return fmt.Errorf("queue add %s: %w", kind, err)
					}
					fmt.Fprintf(e.stdout, "%s: %d queued, %d moved to now, %d already running\n",
						kind, counts[queue.Queued], counts[queue.Moved], counts[queue.Exists])
					return nil
				},
			},
			{
				Name:  "retry",
				Usage: "put every dead job back in the queue, due now, attempts reset",
				Action: func(c *cli.Context) error {
					d, err := e.openQueueWriter(c)
					if err != nil {
						return err
					}
					defer d.Close()
					n, err := queue.New(d, queue.Options{}).Retry(c.Context)
					if err != nil {
						return fmt.Errorf("queue retry: %w", err)
					}
					fmt.Fprintf(e.stdout, "retried %d dead jobs\n", n)
					return nil
				},
			},
			{
				Name:  "purge",
				Usage: "delete dead jobs (--dead is required, so nothing else can be purged by accident)",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "dead", Usage: "purge the dead jobs"}},
				Action: func(c *cli.Context) error {
					if !c.Bool("dead") {
						return usageErr("queue purge: say what to purge: --dead")
					}
					d, err := e.openQueueWriter(c)
					if err != nil {
						return err
					}
					defer d.Close()
					n, err := queue.New(d, queue.Options{}).Purge(c.Context)
					if err != nil {
						return fmt.Errorf("queue purge: %w", err)
					}
					fmt.Fprintf(e.stdout, "purged %d dead jobs\n", n)
					return nil
				},
			},
		},
	}
}

// parseQueueAdd checks `queue add KIND NUMBER...` whole before anything is
// written: the kind, and every number upper-cased.
func parseQueueAdd(args []string) (queue.Kind, []string, error) {
	kinds := addKinds()
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	if len(args) < 2 {
		return "", nil, usageErr("queue add: give a KIND (%s) and one or more company numbers", strings.Join(names, " or "))
	}
	var kind queue.Kind
	for _, k := range kinds {
		if args[0] == string(k) {
			kind = k
		}
	}
	if kind == "" {
		return "", nil, usageErr("queue add: unknown kind %q: give %s", args[0], strings.Join(names, " or "))
	}
	seen := map[string]bool{}
	var numbers []string
	for _, a := range args[1:] {
		n := strings.ToUpper(strings.TrimSpace(a))
		if !companyNumber.MatchString(n) {
			return "", nil, usageErr("queue add: %q is not a company number: it must be 8 letters and digits, like SC571653 or 00000006 (nothing was queued)", a)
		}
		if !seen[n] {
			seen[n] = true
			numbers = append(numbers, n)
		}
	}
	return kind, numbers, nil
}

// openQueueWriter opens the database for a command that changes jobs: it
// must exist and be at this chwatch's schema.
func (e *env) openQueueWriter(c *cli.Context) (*db.DB, error) {
	cfg, err := e.loadConfig(c)
	if err != nil {
		return nil, err
	}
	// OpenReader first: it never creates a missing file.
	r, err := db.OpenReader(c.Context, cfg.Database.Path)
	if err != nil {
		return nil, err
	}
	v, err := r.CheckVersion(c.Context)
	r.Close()
	if err != nil {
		return nil, err
	}
	if v < db.Latest() {
		return nil, fmt.Errorf("database %s is at schema version %d, this chwatch needs %d: run `chwatch migrate up` (or `chwatch run`) first", cfg.Database.Path, v, db.Latest())
	}
	return db.Open(c.Context, cfg.Database.Path, dbOptions(cfg)...)
}

// queueStatus prints jobs by kind and state (from the counters), the oldest
// queued job of each kind, refusals and the latest dead jobs.
func (e *env) queueStatus(c *cli.Context, d *db.DB, now time.Time) error {
	if _, err := d.CheckVersion(c.Context); err != nil {
		return err
	}
	depths, err := queue.Depths(c.Context, d.R)
	if err != nil {
		return err
	}
	oldest, err := queue.Oldest(c.Context, d.R)
	if err != nil {
		return err
	}
	counters, err := db.Counters(c.Context, d.R)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tQUEUED\tRUNNING\tDONE\tDEAD\tOLDEST QUEUED")
	for _, k := range queue.Kinds() {
		old := "-"
		if t, ok := oldest[k]; ok {
			old = fmt.Sprintf("%s (%s ago)", db.FormatTime(t), age(now.Sub(t)))
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\n", k, depths.Count(k, queue.StateQueued), depths.Count(k, queue.StateRunning),
			depths.Count(k, queue.StateDone), depths.Count(k, queue.StateDead), old)
	}
	w.Flush()
	if n := counters[queue.CounterRefused]; n > 0 {
		fmt.Fprintf(e.stdout, "refused past queue.max_depth: %d officer, filing and PSC fetches (raise queue.max_depth, or queue one with chwatch queue add)\n", n)
	}
	dead, err := queue.ListDead(c.Context, d.R, deadShown)
	if err != nil {
		return err
	}
	for _, j := range dead {
		fmt.Fprintf(e.stdout, "dead job %d: %s %s after %d attempts: %s\n", j.ID, j.Kind, j.Company, j.Attempts, j.LastError)
	}
	if total := depths.Sum(queue.StateDead); total > int64(len(dead)) {
		fmt.Fprintf(e.stdout, "... and %d more dead jobs (retry them with chwatch queue retry, or delete them with chwatch queue purge --dead)\n", total-int64(len(dead)))
	}
	return nil
}

// age is a duration for people: whole seconds, minutes past a minute.
func age(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}
