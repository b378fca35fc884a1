// Package dbtest gives tests a migrated chwatch database in a temporary
// directory, closed when the test ends.
package dbtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Open opens a new migrated database in tb's temporary directory.
func Open(tb testing.TB) *db.DB {
	tb.Helper()
	d, err := db.Open(context.Background(), filepath.Join(tb.TempDir(), "chwatch.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	if _, err := d.MigrateUp(context.Background(), time.Now()); err != nil {
		tb.Fatal(err)
	}
	return d
}
