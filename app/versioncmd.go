package app

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
	_ "modernc.org/sqlite" // for the SQLite version
)

func sqliteVersion(ctx context.Context) string {
	d, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return "unknown"
	}
	defer d.Close()
	var v string
	if err := d.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}

func (e *env) versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit, Go and SQLite versions",
		Action: func(c *cli.Context) error {
			v, commit := version()
			fmt.Fprintf(e.stdout, "chwatch %s\ncommit %s\n%s %s/%s\nSQLite %s (modernc.org/sqlite, no cgo)\n", v, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, sqliteVersion(c.Context))
			return nil
		},
	}
}
