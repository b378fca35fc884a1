package app

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
	"github.com/urfave/cli/v2"
)

func (e *env) queueCommand() *cli.Command {
	return &cli.Command{
		Name:  "queue",
		Usage: "inspect the queue of REST jobs, retry dead ones, purge them",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "jobs by kind and state, and the last errors of dead jobs",
				Action: func(c *cli.Context) error {
					d, err := e.openReader(c)
					if err != nil {
						return err
					}
					defer d.Close()
					depths, err := queue.Depths(c.Context, d.R)
					if err != nil {
						return err
					}
					w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "KIND\tQUEUED\tRUNNING\tDONE\tDEAD")
					kinds := make([]string, 0, len(queue.Priority))
					for k := range queue.Priority {
						kinds = append(kinds, k)
					}
					sort.Slice(kinds, func(i, j int) bool { return queue.Priority[kinds[i]] < queue.Priority[kinds[j]] })
					for _, k := range kinds {
						m := depths[k]
						fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", k, m["queued"], m["running"], m["done"], m["dead"])
					}
					w.Flush()
					rows, err := d.R.QueryContext(c.Context, "SELECT id, kind, company_number, attempts, coalesce(last_error, '') FROM jobs WHERE state = 'dead' ORDER BY updated_at DESC LIMIT 10")
					if err != nil {
						return fmt.Errorf("read dead jobs: %w", err)
					}
					defer rows.Close()
					for rows.Next() {
						var id, attempts int64
						var kind, num, last string
						if err := rows.Scan(&id, &kind, &num, &attempts, &last); err != nil {
							return fmt.Errorf("read dead jobs: %w", err)
						}
						fmt.Fprintf(e.stdout, "dead job %d: %s %s after %d attempts: %s\n", id, kind, num, attempts, last)
					}
					return rows.Err()
				},
			},
			{
				Name:  "retry",
				Usage: "put every dead job back in the queue",
				Action: func(c *cli.Context) error {
					return e.queueWrite(c, "retried", `UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?1, lease_until = NULL, updated_at = ?1
						WHERE state = 'dead' AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = jobs.kind AND j.company_number = jobs.company_number AND j.state IN ('queued', 'running'))`,
						1, db.FormatTime(time.Now()))
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
					return e.queueWrite(c, "purged", "DELETE FROM jobs WHERE state = 'dead'", 0)
				},
			},
		},
	}
}

// queueWrite runs one statement over dead jobs; pendingDelta says how each
// affected row changes the pending counter.
func (e *env) queueWrite(c *cli.Context, verb, stmt string, pendingDelta int64, args ...any) error {
	d, err := e.openWriter(c)
	if err != nil {
		return err
	}
	defer d.Close()
	var n int64
	err = d.WriteTx(c.Context, func(tx db.Tx) error {
		res, err := tx.ExecContext(c.Context, stmt, args...)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return db.AddCounter(c.Context, tx, queue.CounterPending, n*pendingDelta)
	})
	if err != nil {
		return fmt.Errorf("queue %s: %w", verb, err)
	}
	fmt.Fprintf(e.stdout, "%s %d dead jobs\n", verb, n)
	return nil
}
