// Package export writes chwatch's tables as CSV from one snapshot read, with
// formula neutralising and cron-safe incremental marks.
package export

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Kind is what an export holds.
type Kind string

// The kinds of export.
const (
	Companies Kind = "companies"
	StrikeOff Kind = "strike-off"
	Officers  Kind = "officers"
	Changes   Kind = "changes"
)

// Kinds lists every kind, in the order the help text shows them.
var Kinds = []Kind{Companies, StrikeOff, Officers, Changes, PSCs}

// ErrMarkAhead is returned when an incremental export's mark is above the
// database's change sequence: the state file belongs to another database, or
// the database was restored from an older copy.
var ErrMarkAhead = errors.New("state mark is ahead of the database")

// ParseKind checks a kind given on the command line.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown export kind %q: want one of %s", s, kindList())
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Columns returns the header row of kind: the documented, stable columns.
func Columns(k Kind) []string {
	q, ok := queries[k]
	if !ok {
		return nil
	}
	out := make([]string, len(q.cols))
	for i, c := range q.cols {
		out[i] = c.name
	}
	return out
}

// Options select the rows of an export and how cells are written.
type Options struct {
	// Since keeps the rows whose time column (each kind's, in queries.go)
	// is at or after it; the zero time keeps every row.
	Since time.Time
	// Incremental keeps only the rows whose change_seq is above After, in
	// change_seq order.
	Incremental bool
	After       int64
	// DueBefore (strike-off only, a YYYY-MM-DD date from ParseDueBefore)
	// keeps the companies whose dissolution_due_on is before it and whose
	// strike-off is not suspended, soonest first.
	DueBefore string
	// Raw turns off formula neutralising.
	Raw bool
	// OnSnapshot, when set, is called once the read snapshot is taken and
	// before any row is read. Tests use it to commit a write mid-export.
	OnSnapshot func()

	cond string // one more condition, with one ? (Records)
}

// Result says what an export wrote.
type Result struct {
	Rows int64 // data rows, the header not counted
	// Mark is the change sequence of the snapshot the rows were read from:
	// every row with change_seq <= Mark that will ever exist was in it. It is
	// the next --state mark.
	Mark int64
}

// Write writes kind as CSV (a header row, then one row per record) to w. All
// reads happen in one read transaction on r, so a writer committing
// meanwhile is neither blocked nor half seen, and Result.Mark matches the
// rows exactly. w is written through a 64 KiB buffer that is flushed before
// Write returns.
func Write(ctx context.Context, r *sql.DB, w io.Writer, kind Kind, opt Options) (Result, error) {
	var res Result
	q, ok := queries[kind]
	if !ok {
		return res, fmt.Errorf("export: unknown kind %q: want one of %s", kind, kindList())
	}
	if opt.DueBefore != "" && kind != StrikeOff {
		return res, fmt.Errorf("export %s: --due-before is for the strike-off export only", kind)
	}
	conn, err := r.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("export %s: %w", kind, err)
	}
	defer conn.Close()
	restore, err := lowMemory(ctx, conn)
	if err != nil {
		return res, fmt.Errorf("export %s: %w", kind, err)
	}
	defer restore()
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return res, fmt.Errorf("export %s: begin read transaction: %w", kind, err)
	}
	defer tx.Rollback()
	// The first read fixes the snapshot (SQLite's BEGIN is deferred): the
	// mark and the rows below come from the same state of the database.
	err = tx.QueryRowContext(ctx, "SELECT value FROM counters WHERE name = 'change_seq'").Scan(&res.Mark)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return res, fmt.Errorf("export %s: read change_seq: %w", kind, err)
	}
	if opt.Incremental && res.Mark < opt.After {
		return res, fmt.Errorf("export %s: the state mark %d is above the database's change_seq %d: %w (the state file belongs to another database, or the database was restored; delete the state file to export everything again)", kind, opt.After, res.Mark, ErrMarkAhead)
	}
	if opt.OnSnapshot != nil {
		opt.OnSnapshot()
	}
	text, args := q.build(opt)
	rows, err := tx.QueryContext(ctx, text, args...)
	if err != nil {
		return res, fmt.Errorf("export %s: query: %w", kind, err)
	}
	defer rows.Close()

	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw) // reuses bw: it is larger than csv's own buffer
	n := len(q.cols)
	rec := make([]string, n)
	for i, c := range q.cols {
		rec[i] = c.name
	}
	if err := cw.Write(rec); err != nil {
		return res, fmt.Errorf("export %s: write: %w", kind, err)
	}
	vals := make([]sql.NullString, n)
	dest := make([]any, n)
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return res, fmt.Errorf("export %s: read row %d: %w", kind, res.Rows+1, err)
		}
		for i := range vals {
			rec[i] = vals[i].String
			if !opt.Raw && !(q.cols[i].id && plainID(rec[i])) {
				rec[i] = neutralise(rec[i])
			}
		}
		if err := cw.Write(rec); err != nil {
			return res, fmt.Errorf("export %s: write: %w", kind, err)
		}
		res.Rows++
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("export %s: read rows: %w", kind, err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return res, fmt.Errorf("export %s: write: %w", kind, err)
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("export %s: write: %w", kind, err)
	}
	return res, nil
}

// lowMemory sets the connection up for one long sequential read: a small
// page cache (a scan gains nothing from a large one) and sorts spilled to
// temporary files rather than held in memory, so that an export's memory
// does not grow with the table. restore puts the pool's settings back.
func lowMemory(ctx context.Context, conn *sql.Conn) (restore func(), err error) {
	var cache, temp int64
	if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
		return nil, fmt.Errorf("read cache_size: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&temp); err != nil {
		return nil, fmt.Errorf("read temp_store: %w", err)
	}
	restore = func() {
		// A failure here only leaves a pooled connection with small caches.
		conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA cache_size = %d", cache))
		conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA temp_store = %d", temp))
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -2000"); err != nil {
		return nil, fmt.Errorf("set cache_size: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
		restore()
		return nil, fmt.Errorf("set temp_store: %w", err)
	}
	return restore, nil
}

// neutralise returns s as a cell no spreadsheet runs as a formula: one
// starting with =, +, -, @, a tab or a carriage return gets a leading '.
func neutralise(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// plainID reports whether s holds only the characters of Companies House's
// identifiers: letters, digits, '-' and '_'.
func plainID(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// ParseSince parses a --since value: RFC 3339 (2026-11-28T23:41:36Z, any
// offset) or a date (2026-11-28, meaning 00:00 UTC).
func ParseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q is not a time: want RFC 3339 like 2026-11-28T23:41:36Z (or a date, 2026-11-28)", s)
}

// sinceArg turns t into the stored text form to compare with. Stored times
// are whole seconds, so a fractional t rounds up: the comparison stays
// inclusive and exact.
func sinceArg(t time.Time) string {
	u := t.UTC()
	if u.Truncate(time.Second) != u {
		u = u.Truncate(time.Second).Add(time.Second)
	}
	return db.FormatTime(u)
}
