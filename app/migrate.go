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
				Usage: "apply every pending migration, after a backup when the database holds a schema already; refused while chwatch run uses the database",
				Action: func(c *cli.Context) error {
					d, err := e.openWriter(c)
					if err != nil {
						return err
					}
					defer d.Close()
					applied, err := e.migrateUpLocked(c.Context, d, e.stdout)
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
				Usage: "undo the last migrations (default one), after a backup; refused while chwatch run uses the database; going below version 0 is refused",
				Flags: []cli.Flag{&cli.IntFlag{Name: "steps", Value: 1, Usage: "how many migrations to undo"}},
				Action: func(c *cli.Context) error {
					cfg, err := e.loadConfig(c)
					if err != nil {
						return err
					}
					steps := c.Int("steps")
					if steps < 1 {
						return usageErr("migrate down: --steps must be at least 1, not %d", steps)
					}
					lock, err := e.lock(c.Context, cfg.Database.Path)
					if err != nil {
						return err
					}
					defer lock.Unlock()
					d, err := db.Open(c.Context, cfg.Database.Path, dbOptions(cfg)...)
					if err != nil {
						return err
					}
					defer d.Close()
					from, err := d.CheckDown(c.Context, steps)
					if err != nil {
						return err
					}
					if err := backupBeforeMigrating(c.Context, d, from, e.stdout); err != nil {
						return err
					}
					undone, err := d.MigrateDown(c.Context, steps)
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
					// Not e.openReader: a newer schema is shown, then refused.
					cfg, err := e.loadConfig(c)
					if err != nil {
						return err
					}
					d, err := db.OpenReader(c.Context, cfg.Database.Path)
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

// defaultLockWait bounds how long a command waits for another chwatch
// process to release the instance lock: a restart right after a crash can
// find the dead process's lock not yet released.
const defaultLockWait = 10 * time.Second

// lockBound is wait, or defaultLockWait when it is not set.
func lockBound(wait time.Duration) time.Duration {
	if wait <= 0 {
		return defaultLockWait
	}
	return wait
}

// lock takes the instance lock of the database at path for a command,
// saying on stderr when it has to wait.
func (e *env) lock(ctx context.Context, path string) (*db.InstanceLock, error) {
	wait := lockBound(e.lockWait)
	return db.Lock(ctx, path, wait, func(holder string) {
		fmt.Fprintf(e.stderr, "chwatch: waiting up to %s for pid %s to release %s\n", wait, holder, path)
	})
}

// migrateUpLocked is migrateUp for the commands that do not hold the
// instance lock (migrate up, import): when a migration is pending it takes
// the lock first, so the schema never changes under a running chwatch run.
// With nothing pending it takes no lock and changes nothing.
func (e *env) migrateUpLocked(ctx context.Context, d *db.DB, out io.Writer) ([]int, error) {
	pending, err := d.Pending(ctx)
	if err != nil || pending == 0 {
		return nil, err
	}
	lock, err := e.lock(ctx, d.Path)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	return migrateUp(ctx, d, out)
}

// migrateUp brings the schema up to date, taking a backup first when an
// existing schema is about to change. The caller holds the instance lock.
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
	if err := backupBeforeMigrating(ctx, d, from, out); err != nil {
		return nil, err
	}
	applied, err := d.MigrateUp(ctx, time.Now())
	for _, v := range applied {
		fmt.Fprintf(out, "applied migration %04d\n", v)
	}
	return applied, err
}

// backupBeforeMigrating copies the database beside itself before its schema
// changes up or down from version from (nothing to keep at version 0).
func backupBeforeMigrating(ctx context.Context, d *db.DB, from int, out io.Writer) error {
	if from == 0 {
		return nil
	}
	name := fmt.Sprintf("%s.v%d-%s.bak", d.Path, from, time.Now().UTC().Format("20060102T150405Z"))
	if err := db.Backup(ctx, d.Path, name); err != nil {
		return fmt.Errorf("back up before migrating (nothing was changed): %w", err)
	}
	fmt.Fprintf(out, "backed up %s to %s before migrating\n", d.Path, name)
	return nil
}
