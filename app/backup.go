package app

import (
	"fmt"

	"github.com/chwatch/chwatch/db"
	"github.com/urfave/cli/v2"
)

func (e *env) backupCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "write a consistent copy of the live database (VACUUM INTO), safe while run writes",
		ArgsUsage: "FILE",
		Action: func(c *cli.Context) error {
			args, err := positionals(c)
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return usageErr("backup: give exactly one FILE to write, e.g. chwatch backup /srv/backup/chwatch-$(date +%%F).db")
			}
			dest := args[0]
			cfg, err := e.loadConfig(c)
			if err != nil {
				return err
			}
			d, err := db.OpenReader(c.Context, cfg.Database.Path)
			if err != nil {
				return err
			}
			d.Close()
			if err := db.Backup(c.Context, cfg.Database.Path, dest); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "backed up %s to %s\n", cfg.Database.Path, dest)
			return nil
		},
	}
}
