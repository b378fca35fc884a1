package app

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/urfave/cli/v2"
)

func (e *env) gapsCommand() *cli.Command {
	return &cli.Command{
		Name:  "gaps",
		Usage: "list stream gaps (416: timepoints that could not be replayed) or resolve one",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "every gap, open ones first",
				Action: func(c *cli.Context) error {
					d, err := e.openReader(c)
					if err != nil {
						return err
					}
					defer d.Close()
					rows, err := d.R.QueryContext(c.Context, `SELECT id, from_timepoint, coalesce(to_timepoint, ''), coalesce(from_time, ''), coalesce(to_time, ''),
						detected_at, coalesce(resolved_at, ''), coalesce(resolution, '') FROM stream_gaps ORDER BY resolved_at IS NOT NULL, id`)
					if err != nil {
						return fmt.Errorf("list gaps: %w", err)
					}
					defer rows.Close()
					w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "ID\tFROM\tTO\tFROM TIME\tTO TIME\tDETECTED\tRESOLVED\tRESOLUTION")
					for rows.Next() {
						var id int64
						var f [7]string
						if err := rows.Scan(&id, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]); err != nil {
							return fmt.Errorf("list gaps: %w", err)
						}
						if f[5] == "" {
							f[5] = "OPEN"
						}
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, f[0], f[1], f[2], f[3], f[4], f[5], f[6])
					}
					if err := rows.Err(); err != nil {
						return fmt.Errorf("list gaps: %w", err)
					}
					return w.Flush()
				},
			},
			{
				Name:      "resolve",
				Usage:     "acknowledge an open gap (e.g. after checking the missed companies another way)",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "note", Usage: "why the gap is resolved (recorded as its resolution; required)"}},
				Action: func(c *cli.Context) error {
					args, err := positionals(c)
					if err != nil {
						return err
					}
					note := c.String("note")
					if len(args) != 1 {
						return usageErr("gaps resolve: give one gap ID (see chwatch gaps list) and --note TEXT")
					}
					id, err := strconv.ParseInt(args[0], 10, 64)
					if err != nil {
						return usageErr("gaps resolve: %q is not a gap ID (see chwatch gaps list)", args[0])
					}
					if strings.TrimSpace(note) == "" {
						return usageErr("gaps resolve %d: say why with --note TEXT (it is recorded as the gap's resolution)", id)
					}
					d, err := e.openWriter(c)
					if err != nil {
						return err
					}
					defer d.Close()
					var n int64
					err = d.WriteTx(c.Context, func(tx db.Tx) error {
						res, err := tx.ExecContext(c.Context, "UPDATE stream_gaps SET resolved_at = ?, resolution = ? WHERE id = ? AND resolved_at IS NULL",
							db.FormatTime(time.Now()), note, id)
						if err != nil {
							return err
						}
						n, _ = res.RowsAffected()
						return nil
					})
					if err != nil {
						return fmt.Errorf("resolve gap %d: %w", id, err)
					}
					if n == 0 {
						return fmt.Errorf("resolve gap %d: no open gap with that ID (see chwatch gaps list)", id)
					}
					fmt.Fprintf(e.stdout, "gap %d resolved\n", id)
					return nil
				},
			},
		},
	}
}
