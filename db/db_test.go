package db_test

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

var update = flag.Bool("update", false, "rewrite ../schema.sql from the migrations")

var now = time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)

const schemaHeader = `-- chwatch database schema, generated from db/migrations by
-- "go test ./db -run TestSchemaFile -update"; a test fails when they differ.
-- It is what "sqlite3 chwatch.db .schema" shows. Times are ISO 8601 UTC text
-- ('2026-11-28T23:41:36Z'), dates 'YYYY-MM-DD'.

`

func TestSchemaFile(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	got, err := db.Schema(context.Background(), d.R)
	is.NoErr(err)
	got = schemaHeader + got
	if *update {
		is.NoErr(os.WriteFile("../schema.sql", []byte(got), 0o644))
	}
	want, err := os.ReadFile("../schema.sql")
	is.NoErr(err)
	if string(want) != got {
		t.Fatalf("schema.sql differs from what the migrations build; run: go test ./db -run TestSchemaFile -update")
	}
}

// Every column and table in the schema carries a comment, for sqlite3 users.
func TestSchemaCommented(t *testing.T) {
	schema, err := os.ReadFile("../schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	create := regexp.MustCompile(`^CREATE (TABLE|VIEW)`)
	inTable := false
	for i, line := range strings.Split(string(schema), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case create.MatchString(trimmed):
			if !strings.Contains(line, "--") {
				t.Errorf("schema.sql:%d: table or view without a comment: %s", i+1, line)
			}
			inTable = strings.HasPrefix(trimmed, "CREATE TABLE")
		case strings.HasPrefix(trimmed, ")"):
			inTable = false
		case inTable && trimmed != "" && !strings.HasPrefix(trimmed, "PRIMARY KEY") && !strings.HasPrefix(trimmed, "--"):
			if !strings.Contains(line, "--") {
				t.Errorf("schema.sql:%d: column without a comment: %s", i+1, line)
			}
			// Columns added by ALTER TABLE end on the table's last line.
			inTable = !strings.HasSuffix(trimmed, ");")
		}
	}
}

func TestOpenPragmas(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	var mode string
	is.NoErr(d.R.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	is.Equal(mode, "wal")
	var av, fk, sync int
	is.NoErr(d.W.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&av))
	is.Equal(av, 2) // incremental
	is.NoErr(d.W.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
	is.Equal(fk, 1)
	is.NoErr(d.W.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
	is.Equal(sync, 1) // NORMAL

	// The read pool cannot write.
	_, err := d.R.ExecContext(ctx, "INSERT INTO counters (name, value) VALUES ('x', 1)")
	is.True(err != nil)
}

// A new file gets the page size asked for; an existing one keeps its own.
func TestPageSize(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chwatch.db")
	pageSize := func(opts ...db.Option) int {
		d, err := db.Open(ctx, path, opts...)
		is.NoErr(err)
		defer d.Close()
		_, err = d.MigrateUp(ctx, time.Now())
		is.NoErr(err)
		var n int
		is.NoErr(d.R.QueryRowContext(ctx, "PRAGMA page_size").Scan(&n))
		return n
	}
	is.Equal(pageSize(db.PageSize(2048)), 2048)
	is.Equal(pageSize(db.PageSize(4096)), 2048) // not changed
	is.Equal(pageSize(), 2048)
}

func TestFileModes(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	is.NoErr(d.WriteTx(context.Background(), func(tx db.Tx) error {
		return db.AddCounter(context.Background(), tx, "x", 1)
	}))
	for _, suffix := range []string{"", "-wal", "-shm"} {
		st, err := os.Stat(d.Path + suffix)
		is.NoErr(err)
		is.Equal(st.Mode().Perm(), os.FileMode(0o660)) // group-readable, never world-readable
	}
}

func TestMigrateUpDownUpWithRows(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	_, err := d.W.ExecContext(ctx, `INSERT INTO companies (company_number, company_name, company_status, source, source_time, first_seen_at, updated_at, change_seq)
		VALUES ('SC571653', 'ACME LTD', 'active', 'stream', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', 1)`)
	is.NoErr(err)
	undone, err := d.MigrateDown(ctx, len(db.Migrations()))
	is.NoErr(err)
	is.Equal(len(undone), len(db.Migrations()))
	v, err := db.Version(ctx, d.W)
	is.NoErr(err)
	is.Equal(v, 0)
	var n int
	is.NoErr(d.W.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE name NOT IN ('schema_migrations')").Scan(&n))
	is.Equal(n, 0) // down removes everything
	applied, err := d.MigrateUp(ctx, now)
	is.NoErr(err)
	is.Equal(len(applied), len(db.Migrations()))
	schema, err := db.Schema(ctx, d.W)
	is.NoErr(err)
	want, err := os.ReadFile("../schema.sql")
	is.NoErr(err)
	is.Equal(schemaHeader+schema, string(want))
}

func TestMigrateDownPastZero(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	_, err := d.MigrateDown(ctx, db.Latest()+1)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "nothing was changed"))
	v, err := db.Version(ctx, d.W)
	is.NoErr(err)
	is.Equal(v, db.Latest())
}

func TestSchemaTooNew(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	_, err := d.W.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '2030-01-01T00:00:00Z')")
	is.NoErr(err)
	before, err := db.Schema(ctx, d.W)
	is.NoErr(err)
	_, err = d.MigrateUp(ctx, now)
	is.True(errors.Is(err, db.ErrSchemaTooNew))
	is.True(strings.Contains(err.Error(), "upgrade chwatch"))
	after, err := db.Schema(ctx, d.W)
	is.NoErr(err)
	is.Equal(before, after)
}

func TestOpenBadPaths(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	_, err := db.Open(ctx, filepath.Join(t.TempDir(), "missing", "chwatch.db"))
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "does not exist"))

	_, err = db.OpenReader(ctx, filepath.Join(t.TempDir(), "none.db"))
	is.True(errors.Is(err, db.ErrNotExist))

	if os.Geteuid() != 0 { // root writes anywhere
		dir := t.TempDir()
		is.NoErr(os.Chmod(dir, 0o555))
		_, err = db.Open(ctx, filepath.Join(dir, "chwatch.db"))
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "not writable"))
	}

	notDB := filepath.Join(t.TempDir(), "not.db")
	is.NoErr(os.WriteFile(notDB, []byte(strings.Repeat("hello, this is not sqlite\n", 100)), 0o600))
	_, err = db.Open(ctx, notDB)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "not a SQLite database"))
}

func TestBackupWhileWriting(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error { return db.AddCounter(ctx, tx, "companies", 42) }))
	// A second writer keeps a transaction open while the backup runs.
	tx, err := d.W.BeginTx(ctx, nil)
	is.NoErr(err)
	is.NoErr(db.AddCounter(ctx, tx, "companies", 1000))
	dest := filepath.Join(t.TempDir(), "copy.db")
	is.NoErr(db.Backup(ctx, d.Path, dest))
	is.NoErr(tx.Commit())
	st, err := os.Stat(dest)
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o660))
	b, err := db.OpenReader(ctx, dest)
	is.NoErr(err)
	defer b.Close()
	c, err := db.Counters(ctx, b.R)
	is.NoErr(err)
	is.Equal(c["companies"], int64(42))          // the committed snapshot, not the open transaction
	is.True(db.Backup(ctx, d.Path, dest) != nil) // never overwrites
}

// Migration 0007 rebuilds event_payloads keyed by timepoint: every payload
// survives it, and its way back, unchanged.
func TestPayloadsKeyedByTimepoint(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	payloads := func() string {
		var s string
		is.NoErr(d.W.QueryRowContext(ctx, "SELECT group_concat(stream || ':' || timepoint || ':' || payload, ' ') FROM (SELECT * FROM event_payloads ORDER BY timepoint)").Scan(&s))
		return s
	}
	_, err := d.MigrateDown(ctx, 1)
	is.NoErr(err)
	_, err = d.W.ExecContext(ctx, `INSERT INTO event_payloads (stream, timepoint, payload) VALUES
		('companies', 47000002, '{"b":2}'), ('companies', 47000001, '{"a":1}'), ('companies', 47000003, '{"c":3}')`)
	is.NoErr(err)
	want := payloads()
	_, err = d.MigrateUp(ctx, time.Now())
	is.NoErr(err)
	is.Equal(payloads(), want)
	var rowid int64
	is.NoErr(d.W.QueryRowContext(ctx, "SELECT rowid FROM event_payloads WHERE timepoint = 47000002").Scan(&rowid))
	is.Equal(rowid, int64(47000002)) // the timepoint is the key: no second B-tree
	var indexes int
	is.NoErr(d.W.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event_payloads'").Scan(&indexes))
	is.Equal(indexes, 0)
	_, err = d.MigrateDown(ctx, 1)
	is.NoErr(err)
	is.Equal(payloads(), want)
}

// The CHECK constraints of the tables written for every event and every
// imported row compile to comparisons, not to an ephemeral index built per
// statement and probed per row (migration 0011); they still refuse what
// they refused, and the way back restores the IN lists.
func TestChecksWithoutIN(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	inserts := map[string]string{
		"companies": `INSERT INTO companies (company_number, company_name, company_status, source, source_time, first_seen_at, updated_at, change_seq, strike_off_kind)
			VALUES ('SC571653', 'ACME LTD', 'active', 'bulk', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', 1, NULL),
			('SC571654', 'ACME 2 LTD', 'active', 'stream', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', 2, 'voluntary')`,
		"status_changes": `INSERT INTO status_changes (company_number, change, source, source_time, detected_at, change_seq)
			VALUES ('SC571653', 'entered_strike_off', 'bulk', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', 1)`,
		"stream_events": `INSERT INTO stream_events (stream, timepoint, outcome, received_at)
			VALUES ('companies', 1, 'applied', '2026-11-28T00:00:00Z')`,
		"jobs": `INSERT INTO jobs (kind, company_number, state, priority, run_after, created_at, updated_at)
			VALUES ('officers', 'SC571653', 'queued', 0, '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z')`,
	}
	for table, insert := range inserts {
		t.Run(table, func(t *testing.T) {
			is := is.New(t)
			is.Equal(opcodes(t, d, insert)["OpenEphemeral"], 0)
			_, err := d.W.ExecContext(ctx, insert)
			is.NoErr(err)
		})
	}
	_, err := d.W.ExecContext(ctx, "UPDATE companies SET source = 'file' WHERE company_number = 'SC571653'")
	is.True(err != nil && strings.Contains(err.Error(), "CHECK constraint failed"))
	_, err = d.W.ExecContext(ctx, "UPDATE jobs SET state = 'paused'")
	is.True(err != nil && strings.Contains(err.Error(), "CHECK constraint failed"))

	_, err = d.MigrateDown(ctx, 1)
	is.NoErr(err)
	var n int
	is.NoErr(d.W.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%CHECK (source IN (''stream'', ''bulk'', ''api''))%'").Scan(&n))
	is.Equal(n, 1)
	var ok string
	is.NoErr(d.W.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok))
	is.Equal(ok, "ok")
	_, err = d.W.ExecContext(ctx, "UPDATE companies SET source = 'file' WHERE company_number = 'SC571653'")
	is.True(err != nil && strings.Contains(err.Error(), "CHECK constraint failed: source IN"))
}

// opcodes counts the opcodes of query's program on d's writer.
func opcodes(t *testing.T, d *db.DB, query string) map[string]int {
	t.Helper()
	rows, err := d.W.Query("EXPLAIN " + query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := map[string]int{}
	for rows.Next() {
		var addr, p1, p2, p3, p5 int
		var op string
		var p4, comment sql.NullString
		if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
			t.Fatal(err)
		}
		n[op]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
