package app

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chwatch/chwatch/gaps"
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
					list, err := gaps.List(c.Context, d.R)
					if err != nil {
						return fmt.Errorf("list gaps: %w", err)
					}
					w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "ID\tFROM\tTO\tFROM TIME\tTO TIME\tDETECTED\tRESOLVED\tRESOLUTION")
					for _, g := range list {
						to, resolved := "", g.ResolvedAt
						if g.ToTimepoint != 0 {
							to = strconv.FormatInt(g.ToTimepoint, 10)
						}
						if g.Open() {
							resolved = "OPEN"
						}
						fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.FromTimepoint, to, g.FromTime, g.ToTime, g.DetectedAt, resolved, g.Resolution)
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
					ok, err := gaps.Resolve(c.Context, d, id, note, time.Now())
					if err != nil {
						return err
					}
					if !ok {
						return fmt.Errorf("resolve gap %d: no open gap with that ID (see chwatch gaps list)", id)
					}
					fmt.Fprintf(e.stdout, "gap %d resolved\n", id)
					return nil
				},
			},
		},
	}
}
