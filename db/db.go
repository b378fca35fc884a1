// Package db owns chwatch's SQLite file: opening it with the right pragmas, one
// writer and a read pool, embedded migrations, the instance lock, backups, and
// the small helpers every writer shares (time format, counters, change sequence).
//
// Of the tables it owns schema_migrations, service_state and counters; every
// other table has one owner package that alone writes it (see
// ownership_test.go at the top of the repository).
package db

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileMode is the mode of the database, its -wal and -shm (SQLite copies the
// database's mode to them) and of backups: group-readable for operators in the
// service's group, never world-readable.
const FileMode os.FileMode = 0o660

// ErrNotExist is returned by OpenReader when the database file does not exist.
var ErrNotExist = errors.New("database does not exist")

// ErrHardLinked is returned by every opener (and Lock) when the database file
// has more than one hard link. SQLite names its -wal and -shm after the path
// it opens, so two names of one file are two journals over one database: a
// writer through one corrupts what readers through the other see, and no
// lock can make that safe. A symbolic link is fine (SQLite resolves it).
var ErrHardLinked = errors.New("hard-linked database")

// DB is an open chwatch database: W is the single writer connection (every
// transaction on it is BEGIN IMMEDIATE), R a pool of read-only connections
// that never block the writer.
type DB struct {
	Path string
	W    *sql.DB
	R    *sql.DB

	noAutoCheckpoint bool // another program owns checkpoints
}

// Pragmas set on every connection. synchronous=NORMAL is deliberate (see
// docs/design.md): in WAL mode it survives any process crash, and a power loss
// can only drop whole recent transactions, which the stream then replays.
var pragmas = []string{
	"busy_timeout(10000)",
	"foreign_keys(1)",
	"synchronous(normal)",
	"journal_size_limit(67108864)",
	"cache_size(-2000)",
	"temp_store(memory)",
}

func dsn(path string, extra url.Values) string {
	v := url.Values{}
	for _, p := range pragmas {
		v.Add("_pragma", p)
	}
	for k, vs := range extra {
		for _, x := range vs {
			v.Add(k, x)
		}
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode()
}

// Open opens (creating it when missing) the database at path for writing and
// reading, switches it to WAL and checks that WAL really took.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkLinks(path, path); err != nil {
		return nil, err
	}
	if err := CheckDir(path, "set database.path"); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	fresh, err := createFile(path)
	if err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(path, url.Values{"_txlock": {"immediate"}, "_pragma": o.connPragmas()}))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if fresh && o.pageSize > 0 {
		// Like auto_vacuum, only before the first table exists.
		if _, err := w.ExecContext(ctx, "PRAGMA page_size = "+strconv.Itoa(o.pageSize)); err != nil {
			w.Close()
			return nil, fmt.Errorf("set page_size on %s: %w", path, err)
		}
	}
	if fresh {
		// auto_vacuum only takes effect before the first table exists.
		if _, err := w.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
			w.Close()
			return nil, fmt.Errorf("set auto_vacuum on %s: %w", path, err)
		}
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, explain(err))
	}
	if mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("open database %s: journal_mode is %q, not wal (is it on a network file system?)", path, mode)
	}
	r, err := openReadPool(path, "rw", o.connPragmas()...)
	if err != nil {
		w.Close()
		return nil, err
	}
	return &DB{Path: path, W: w, R: r, noAutoCheckpoint: o.noAutoCheckpoint}, nil
}

// OpenReader opens an existing database for reading only: status, export and
// other commands that run beside `chwatch run`, often as another user. It
// never creates the file.
func OpenReader(ctx context.Context, path string) (*DB, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open database %s: %w (run `chwatch migrate up` or `chwatch run` first, or pass --db)", path, ErrNotExist)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open database %s: permission denied (join the group that owns it, e.g. `sudo usermod -aG chwatch $USER`, then log in again)", path)
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := checkFile(path, st); err != nil {
		return nil, err
	}
	r, err := openReadPool(path, "rw")
	if err != nil {
		return nil, err
	}
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("open database %s: %w", path, explain(err))
	}
	return &DB{Path: path, R: r}, nil
}

func openReadPool(path, mode string, pragmas ...string) (*sql.DB, error) {
	r, err := sql.Open("sqlite", dsn(path, url.Values{"mode": {mode}, "_pragma": append([]string{"query_only(1)"}, pragmas...)}))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(2)
	return r, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	var errs []error
	if db.W != nil {
		errs = append(errs, db.W.Close())
	}
	if db.R != nil {
		errs = append(errs, db.R.Close())
	}
	return errors.Join(errs...)
}

// CheckDir says what keeps a file from being created at path, naming its
// directory: it does not exist, is not a directory, or this user may not
// write in it (SQLite creates the -wal and -shm beside the database, where
// it reports no more than "unable to open database file"; an export writes
// a temporary file there and renames it). elsewhere is the other way out,
// such as "set database.path", or "".
func CheckDir(path, elsewhere string) error {
	dir := filepath.Dir(path)
	or := ""
	if elsewhere != "" {
		or = ", or " + elsewhere
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("directory %s does not exist (create it%s)", dir, or)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory (%s)", dir, cmp.Or(elsewhere, "give another path"))
	case !writable(dir):
		return fmt.Errorf("directory %s is not writable by this user (files are created in it beside %s: fix its owner or mode%s)", dir, filepath.Base(path), or)
	}
	return nil
}

// createFile creates the database file with FileMode when it is missing, so
// that SQLite (which copies the database's mode to -wal and -shm) never
// creates a world-readable file. It reports whether the file is new.
func createFile(path string) (bool, error) {
	st, err := os.Stat(path)
	if err == nil {
		if err := checkFile(path, st); err != nil {
			return false, err
		}
		return st.Size() == 0, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("open database %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, FileMode)
	if err != nil {
		return false, fmt.Errorf("create database %s: %w", path, err)
	}
	f.Close()
	// The umask may have removed group bits: set the mode we promised.
	if err := os.Chmod(path, FileMode); err != nil {
		return false, fmt.Errorf("create database %s: %w", path, err)
	}
	return true, nil
}

// checkFile refuses what exists at path but cannot be the database: a
// directory, or a file with several hard links (see ErrHardLinked).
func checkFile(path string, st os.FileInfo) error {
	if st.IsDir() {
		return fmt.Errorf("open database %s: it is a directory (set database.path to a file, e.g. %s)", path, filepath.Join(path, "chwatch.db"))
	}
	if n := linkCount(st); n > 1 {
		return fmt.Errorf("open database %s: %w: it has %d hard links, and SQLite names its -wal and -shm after the path, so each name would be a separate journal over one file and corrupt it (keep one name; find the others with `find / -xdev -samefile %s`; a symbolic link is fine)", path, ErrHardLinked, n, path)
	}
	return nil
}

// checkLinks is checkFile for the real path of a database that may not
// exist yet. It comes before CheckDir, whose messages are about the
// directory a file would be created in.
func checkLinks(path, real string) error {
	st, err := os.Stat(real)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	return checkFile(path, st)
}

// realPath returns path with every symbolic link resolved, as SQLite
// resolves it when it names the -wal and -shm files; for a file not created
// yet, its directory's real path joined with its name.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolve database path %s: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("resolve database path %s: %w", path, err)
	}
	if st, err := os.Lstat(abs); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return "", fmt.Errorf("open database %s: it is a symbolic link to a file that does not exist (fix the link, or set database.path to the real file)", path)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", fmt.Errorf("resolve database path %s: %w", path, err)
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// TimeFormat is how every time is stored: ISO 8601, UTC, whole seconds.
const TimeFormat = "2006-01-02T15:04:05Z"

// FormatTime formats t as stored in the database.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ParseTime parses a stored time; an empty string is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339, s)
}
