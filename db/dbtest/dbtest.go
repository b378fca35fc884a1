// Package dbtest gives tests a migrated chwatch database in a temporary
// directory, closed when the test ends.
package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
)

// Open opens a new migrated database in tb's temporary directory, with the
// page size chwatch gives a new file.
func Open(tb testing.TB) *db.DB {
	tb.Helper()
	d, err := db.Open(context.Background(), filepath.Join(tb.TempDir(), "chwatch.db"), db.PageSize(config.Default().Database.PageSize))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	if _, err := d.MigrateUp(context.Background(), time.Now()); err != nil {
		tb.Fatal(err)
	}
	return d
}

// Fill makes the disk under d full as far as SQLite can tell: every write on
// d's writer that needs a page more than the file holds fails with
// SQLITE_FULL, the error a full disk gives, until release. It frees the
// file's empty pages first, so the next row that does not fit beside the
// others (or any value larger than a page) is refused. The limit is a
// setting of the writer's one connection (PRAGMA max_page_count): it holds
// for d.W alone, and dies with it. Fill may be called from any goroutine:
// it reports its own failure with tb.Error.
func Fill(tb testing.TB, d *db.DB) (release func()) {
	tb.Helper()
	var was, limit int64
	err := d.W.QueryRow("PRAGMA max_page_count").Scan(&was)
	if err == nil {
		_, err = d.W.Exec("PRAGMA incremental_vacuum")
	}
	if err == nil {
		// SQLite never sets the limit below the database's size, so asking
		// for one page pins it at the size it has at this instant, however
		// the service beside us is writing (reading page_count first and
		// setting it after raced a commit in between).
		err = d.W.QueryRow("PRAGMA max_page_count = 1").Scan(&limit)
	}
	if err == nil && limit <= 1 {
		err = fmt.Errorf("max_page_count is %d: the database is empty", limit)
	}
	if err != nil {
		tb.Errorf("fill the disk: %v", err)
	}
	return func() {
		if _, err := d.W.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", was)); err != nil {
			tb.Errorf("give the disk room again: %v", err)
		}
	}
}

// Plan returns EXPLAIN QUERY PLAN's detail lines of query on d's readers,
// one per step: what a test of an index checks.
func Plan(tb testing.TB, d *db.DB, query string, args ...any) string {
	tb.Helper()
	rows, err := d.R.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// Strings returns the first column of query's rows on q, as text.
func Strings(tb testing.TB, q *sql.DB, query string, args ...any) []string {
	tb.Helper()
	rows, err := q.Query(query, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}
