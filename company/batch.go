package company

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Batch applies many versions inside one write transaction, as a stream
// batch or a bulk import transaction does: it reads their companies with one
// query per Preload instead of one each, and writes new companies many rows
// per INSERT when flushed. The rule and the statements are Applier's; only
// the I/O is grouped. Flush before reading companies or status changes
// through SQL in the same transaction, and before committing.
type Batch struct {
	a       *Applier
	tx      db.Querier
	seq     *db.Seq
	stored  map[string]*Record // nil: known to be absent
	news    map[string]int     // company → its row in inserts, not written yet
	rows    []any              // new company rows, len(insertColumns) values each
	args    []any              // one row's values, reused
	logs    []any              // one statement's change log values, reused
	changes []any              // status_changes rows, changeWidth values each, not written yet
	now     storedTime         // the detection time
	source  storedTime         // the last source time
}

// storedTime is a time as stored, formatted and boxed once while the time
// stays the same: a whole stream batch has one detection time, and every
// row of a bulk file one source time.
type storedTime struct {
	t time.Time
	s string
	v any // s, boxed
}

func (st *storedTime) of(t time.Time) (string, any) {
	if st.v == nil || !t.Equal(st.t) {
		st.t, st.s = t, db.FormatTime(t)
		st.v = st.s
	}
	return st.s, st.v
}

// Begin starts a batch in tx; seq is the transaction's change sequence.
func (a *Applier) Begin(tx db.Querier, seq *db.Seq) *Batch {
	return &Batch{a: a, tx: tx, seq: seq, stored: map[string]*Record{}, news: map[string]int{}}
}

// maxStored bounds the companies a batch remembers: a bulk transaction
// applies tens of thousands of rows, and keeping every record it read until
// the commit cost an import of already-known companies about 20 MB of heap.
const maxStored = 4096

// Preload reads the companies among numbers the batch does not know yet.
// The companies of earlier Preloads, already applied, may be forgotten
// first (new ones are written, known ones were updated in place): one read
// again is read from the transaction, which holds every write.
func (b *Batch) Preload(ctx context.Context, numbers []string) error {
	if len(b.stored)+len(numbers) > maxStored {
		if err := b.Flush(ctx); err != nil {
			return err
		}
		clear(b.stored)
	}
	return b.preload(ctx, numbers)
}

func (b *Batch) preload(ctx context.Context, numbers []string) error {
	var todo []string
	for _, n := range numbers {
		if _, ok := b.stored[n]; !ok {
			b.stored[n] = nil
			todo = append(todo, n)
		}
	}
	found, err := LoadMany(ctx, b.tx, todo)
	if err != nil {
		return err
	}
	for n, r := range found {
		b.stored[n] = r
	}
	return nil
}

// Stored is the company as it stands in the batch (nil when absent), after
// a Preload or Apply that covered it.
func (b *Batch) Stored(number string) *Record { return b.stored[number] }

// Apply applies in through the transition rule.
func (b *Batch) Apply(ctx context.Context, in Version, now time.Time) (Decision, error) {
	stored, ok := b.stored[in.Number]
	if !ok {
		if err := b.preload(ctx, []string{in.Number}); err != nil {
			return Decision{}, err
		}
		stored = b.stored[in.Number]
	}
	d, err := b.a.apply(ctx, b.tx, b.seq, stored, in, now, b)
	if err != nil {
		return d, err
	}
	if d.Write != nil {
		b.stored[in.Number] = d.Write
	}
	if len(b.news) >= rowsPerInsert || len(b.changes) >= rowsPerInsert*changeWidth {
		// A full statement's worth: write it now, so memory holds at most
		// one statement of new rows.
		err = b.Flush(ctx)
	}
	return d, err
}

func (b *Batch) buffered(number string) bool {
	_, ok := b.news[number]
	return ok
}

// buffer holds a new company's row; a second version of it in the same
// batch replaces the first.
func (b *Batch) buffer(number string, args []any) {
	if i, ok := b.news[number]; ok {
		copy(b.rows[i*insertColumns:], args)
		return
	}
	b.news[number] = len(b.rows) / insertColumns
	b.rows = append(b.rows, args...)
}

// change buffers a status_changes row, its values in changeColumns' order,
// for Flush. Every status change is written through a batch, so the rows
// keep the order of their change_seq.
func (b *Batch) change(values ...any) {
	b.changes = append(b.changes, values...)
}

// changeColumns are a status_changes row's values as change takes them.
const (
	changeColumns = `company_number, change, old_status, old_detail, new_status, new_detail,
	source, first_seen, timepoint, source_time, detected_at, change_seq`
	changeWidth = 12
)

// insert writes rows of width values each through into (an INSERT up to
// its VALUES), rowsPerInsert rows a statement, and calls after, when set,
// with each statement's rows once they are written.
func (b *Batch) insert(ctx context.Context, into string, width int, rows []any, after func([]any) error) error {
	for len(rows) > 0 {
		n := min(len(rows)/width, rowsPerInsert)
		row := "(" + strings.Repeat("?,", width-1) + "?)"
		if err := b.exec(ctx, into+" VALUES "+strings.Repeat(row+",", n-1)+row, rows[:n*width]...); err != nil {
			return fmt.Errorf("insert %d rows: %w", n, err)
		}
		if after != nil {
			if err := after(rows[:n*width]); err != nil {
				return err
			}
		}
		rows = rows[n*width:]
	}
	return nil
}

// behind is a Querier that can run a statement while its caller goes on
// (db.Behind): a bulk import's inserts then overlap the deciding and
// building of the next rows.
type behind interface {
	ExecBehind(ctx context.Context, query string, args ...any) error
}

// exec runs a statement whose result nothing reads, behind when the
// transaction's Querier can.
func (b *Batch) exec(ctx context.Context, query string, args ...any) error {
	if q, ok := b.tx.(behind); ok {
		return q.ExecBehind(ctx, query, args...)
	}
	_, err := b.tx.ExecContext(ctx, query, args...)
	return err
}

// insertColumns is the number of values of a companies row.
const insertColumns = 27

// rowsPerInsert is the new companies per INSERT. database/sql and the
// driver each build an array per statement over its values (40 and 16
// bytes a value): at 200 rows, 5,400 values, those were 216 KB and a 128 KB
// array grown by doubling, large objects every statement. At 25 rows they
// stay small; measured, a first import took 10% less CPU and `run` peaked
// 3 MB lower.
const rowsPerInsert = 25

// Flush writes the buffered new companies, their entries in the change
// log and the buffered status changes: this is the one place chwatch
// inserts companies and status changes. Logging new companies here in one
// statement instead of by a trigger's sub-program per row made a first
// import about 6% faster (migration 0010); the status changes of a first
// import (one company in fourteen is first seen in strike-off) were a
// statement each.
func (b *Batch) Flush(ctx context.Context) error {
	err := b.insert(ctx, "INSERT INTO companies ("+columns+", updated_at, change_seq)", insertColumns, b.rows, func(rows []any) error {
		b.logs = b.logs[:0]
		for r := range slices.Chunk(rows, insertColumns) {
			b.logs = append(b.logs, r[insertColumns-1], r[0]) // change_seq, company_number
		}
		return b.insert(ctx, "INSERT INTO company_changes (change_seq, company_number)", 2, b.logs, nil)
	})
	if err != nil {
		return fmt.Errorf("store new companies: %w", err)
	}
	if err := b.insert(ctx, "INSERT INTO status_changes ("+changeColumns+")", changeWidth, b.changes, nil); err != nil {
		return fmt.Errorf("record status changes: %w", err)
	}
	clear(b.changes)
	b.changes = b.changes[:0]
	clear(b.logs)
	// Written: their rowids are unknown, so a later version in this
	// transaction reads them again.
	for n := range b.news {
		delete(b.stored, n)
	}
	clear(b.news)
	clear(b.rows) // let the values go
	b.rows = b.rows[:0]
	return nil
}
