package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/urfave/cli/v2"
)

func (e *env) migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "apply, undo or show schema migrations",
		Subcommands: []*cli.Command{
			{
				Name:  "up",
				Usage: "apply every pending migration (after a backup when the database holds a schema already)",
				Action: func(c *cli.Context) error {
					d, err := e.openWriter(c)
					if err != nil {
						return err
					}
					defer d.Close()
					applied, err := migrateUp(c.Context, d, e.stdout)
					if err != nil {
						return err
					}
					if len(applied) == 0 {
						fmt.Fprintf(e.stdout, "%s is at schema version %d: nothing to do\n", d.Path, db.Latest())
					}
					return nil
				},
			},
			{
				Name:  "down",
				Usage: "undo the last migrations (default one); going below version 0 is refused",
				Flags: []cli.Flag{&cli.IntFlag{Name: "steps", Value: 1, Usage: "how many migrations to undo"}},
				Action: func(c *cli.Context) error {
					cfg, err := e.loadConfig(c)
					if err != nil {
						return err
					}
					if c.Int("steps") < 1 {
						return usageErr("migrate down: --steps must be at least 1, not %d", c.Int("steps"))
					}
					d, err := db.Open(c.Context, cfg.Database.Path, dbOptions(cfg)...)
					if err != nil {
						return err
					}
					defer d.Close()
					undone, err := d.MigrateDown(c.Context, c.Int("steps"))
					for _, v := range undone {
						fmt.Fprintf(e.stdout, "undid migration %04d\n", v)
					}
					return err
				},
			},
			{
				Name:  "status",
				Usage: "show the schema version of the database and the migrations this binary knows",
				Action: func(c *cli.Context) error {
					d, err := e.openReader(c)
					if err != nil {
						return err
					}
					defer d.Close()
					v, err := db.Version(c.Context, d.R)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "database %s: schema version %d (this chwatch knows up to %d)\n", d.Path, v, db.Latest())
					for _, m := range db.Migrations() {
						state := "pending"
						if m.Version <= v {
							state = "applied"
						}
						fmt.Fprintf(e.stdout, "  %04d_%s  %s\n", m.Version, m.Name, state)
					}
					if v > db.Latest() {
						return fmt.Errorf("database %s is at schema version %d, newer than this chwatch (%d): upgrade chwatch", d.Path, v, db.Latest())
					}
					return nil
				},
			},
		},
	}
}

// migrateUp brings the schema up to date, taking a backup first when an
// existing schema is about to change.
func migrateUp(ctx context.Context, d *db.DB, out io.Writer) ([]int, error) {
	pending, err := d.Pending(ctx)
	if err != nil {
		return nil, err
	}
	if pending == 0 {
		return nil, nil
	}
	from, err := db.Version(ctx, d.W)
	if err != nil {
		return nil, err
	}
	if from > 0 {
		name := fmt.Sprintf("%s.v%d-%s.bak", d.Path, from, time.Now().UTC().Format("20060102T150405Z"))
		if err := db.Backup(ctx, d.Path, name); err != nil {
			return nil, fmt.Errorf("back up before migrating (nothing was changed): %w", err)
		}
		fmt.Fprintf(out, "backed up %s to %s before migrating\n", d.Path, name)
	}
	applied, err := d.MigrateUp(ctx, time.Now())
	for _, v := range applied {
		fmt.Fprintf(out, "applied migration %04d\n", v)
	}
	return applied, err
}
