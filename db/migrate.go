package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ErrSchemaTooNew is returned when the database was migrated by a newer
// chwatch than this one: nothing is touched.
var ErrSchemaTooNew = errors.New("database schema is newer than this chwatch")

// Migration is one embedded schema step with its way back.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// Migrations returns the embedded migrations in order.
func Migrations() []Migration {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		name := e.Name()
		base, dir, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), ".")
		if !ok || (dir != "up" && dir != "down") {
			panic("migration file " + name + " is not NNNN_name.up.sql or .down.sql")
		}
		num, label, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			panic("migration file " + name + " has no version number")
		}
		body, _ := migrationFS.ReadFile(path.Join("migrations", name))
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v, Name: label}
			byVersion[v] = m
		}
		if dir == "up" {
			m.Up = string(body)
		} else {
			m.Down = string(body)
		}
	}
	var out []Migration
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			panic(fmt.Sprintf("migration %d needs both an up and a down file", m.Version))
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// Latest is the schema version this binary builds.
func Latest() int {
	ms := Migrations()
	return ms[len(ms)-1].Version
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations ( -- schema steps applied to this database
  version    INTEGER PRIMARY KEY, -- migration number (db/migrations/NNNN_*.sql)
  name       TEXT NOT NULL, -- its name
  applied_at TEXT NOT NULL -- when it was applied
)`

// Version reads the schema version of the database through q (0 when it was
// never migrated).
func Version(ctx context.Context, q *sql.DB) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// CheckVersion refuses a database from a newer chwatch.
func (db *DB) CheckVersion(ctx context.Context) (int, error) {
	q := db.R
	if db.W != nil {
		q = db.W
	}
	v, err := Version(ctx, q)
	if err != nil {
		return 0, err
	}
	if v > Latest() {
		return v, fmt.Errorf("database %s is at schema version %d but this chwatch knows only up to %d: %w (upgrade chwatch; nothing was changed)", db.Path, v, Latest(), ErrSchemaTooNew)
	}
	return v, nil
}

// Pending reports how many migrations MigrateUp would apply.
func (db *DB) Pending(ctx context.Context) (int, error) {
	v, err := db.CheckVersion(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range Migrations() {
		if m.Version > v {
			n++
		}
	}
	return n, nil
}

// MigrateUp applies every pending migration, each in its own transaction,
// and returns the versions applied.
func (db *DB) MigrateUp(ctx context.Context, now time.Time) ([]int, error) {
	v, err := db.CheckVersion(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := db.W.ExecContext(ctx, migrationsTable); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", explain(err))
	}
	var applied []int
	for _, m := range Migrations() {
		if m.Version <= v {
			continue
		}
		err := db.WriteTx(ctx, func(tx Tx) error {
			if _, err := tx.ExecContext(ctx, m.Up); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, FormatTime(now))
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, explain(err))
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// CheckDown reports whether MigrateDown(ctx, steps) can run, without
// changing anything, and returns the schema version it would start from.
func (db *DB) CheckDown(ctx context.Context, steps int) (int, error) {
	v, _, err := db.downPlan(ctx, steps)
	return v, err
}

func (db *DB) downPlan(ctx context.Context, steps int) (int, []Migration, error) {
	if steps < 1 {
		return 0, nil, fmt.Errorf("migrate down: --steps must be at least 1, not %d", steps)
	}
	v, err := db.CheckVersion(ctx)
	if err != nil {
		return 0, nil, err
	}
	ms := Migrations()
	var todo []Migration
	for i := len(ms) - 1; i >= 0 && len(todo) < steps; i-- {
		if ms[i].Version <= v {
			todo = append(todo, ms[i])
		}
	}
	if len(todo) < steps {
		return v, nil, fmt.Errorf("migrate down %d steps: the database is at version %d with only %d step(s) applied; nothing was changed", steps, v, len(todo))
	}
	return v, todo, nil
}

// MigrateDown undoes the last steps migrations. Going below zero is an error
// and changes nothing.
func (db *DB) MigrateDown(ctx context.Context, steps int) ([]int, error) {
	_, todo, err := db.downPlan(ctx, steps)
	if err != nil {
		return nil, err
	}
	var undone []int
	for _, m := range todo {
		err := db.WriteTx(ctx, func(tx Tx) error {
			if _, err := tx.ExecContext(ctx, m.Down); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = ?", m.Version)
			return err
		})
		if err != nil {
			return undone, fmt.Errorf("undo migration %04d_%s: %w", m.Version, m.Name, explain(err))
		}
		undone = append(undone, m.Version)
	}
	return undone, nil
}

// WriteTx runs fn in one BEGIN IMMEDIATE transaction on the writer.
func (db *DB) WriteTx(ctx context.Context, fn func(Tx) error) error {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Schema returns the schema as SQLite stores it (the CREATE statements with
// their comments, in creation order), which is what `sqlite3 DB .schema`
// shows. schema.sql at the top of the repository is exactly this.
func Schema(ctx context.Context, q Querier) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT sql FROM sqlite_master
		WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid`)
	if err != nil {
		return "", fmt.Errorf("read schema: %w", err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", fmt.Errorf("read schema: %w", err)
		}
		b.WriteString(s)
		b.WriteString(";\n\n")
	}
	return b.String(), rows.Err()
}
