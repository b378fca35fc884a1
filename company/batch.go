package company

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Batch applies many versions inside one write transaction, as a stream
// batch or a bulk import transaction does: it reads their companies with one
// query per Preload instead of one each, and writes new companies many rows
// per INSERT when flushed. The rule and the statements are Applier's; only
// the I/O is grouped. Flush before reading companies through SQL in the same
// transaction, and before committing.
type Batch struct {
	a      *Applier
	tx     db.Querier
	seq    *db.Seq
	stored map[string]*Record // nil: known to be absent
	news   map[string]int     // company → its row in inserts, not written yet
	rows   []any              // new company rows, len(insertColumns) values each
	args   []any              // one row's values, reused
	logs   []any              // one statement's change log values, reused
	now    time.Time          // the detection time of ts
	ts     string             // now as stored
	tsv    any                // ts boxed once for the batch's rows
}

// stamp is now as stored, formatted and boxed once while now stays the
// same (a whole stream batch has one detection time).
func (b *Batch) stamp(now time.Time) (string, any) {
	if b.tsv == nil || !now.Equal(b.now) {
		b.now, b.ts = now, db.FormatTime(now)
		b.tsv = b.ts
	}
	return b.ts, b.tsv
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
	if len(b.news) >= rowsPerInsert {
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

// insertColumns is the number of values of a companies row.
const insertColumns = 27

// rowsPerInsert is the new companies per INSERT. database/sql and the
// driver each build an array per statement over its values (40 and 16
// bytes a value): at 200 rows, 5,400 values, those were 216 KB and a 128 KB
// array grown by doubling, large objects every statement. At 25 rows they
// stay small; measured, a first import took 10% less CPU and `run` peaked
// 3 MB lower.
const rowsPerInsert = 25

// Flush writes the buffered new companies, and their entries in the change
// log: this is the one place chwatch inserts companies, and logging them
// here in one statement instead of by a trigger's sub-program per row made
// a first import about 6% faster (migration 0010).
func (b *Batch) Flush(ctx context.Context) error {
	// rows is walked, not resliced from the front, so that its array is
	// reused by the next rows instead of grown again.
	for rows := b.rows; len(rows) > 0; {
		n := min(len(rows)/insertColumns, rowsPerInsert)
		row := "(" + strings.Repeat("?,", insertColumns-1) + "?)"
		q := "INSERT INTO companies (" + columns + ", updated_at, change_seq) VALUES " + strings.Repeat(row+",", n-1) + row
		if _, err := b.tx.ExecContext(ctx, q, rows[:n*insertColumns]...); err != nil {
			return fmt.Errorf("store %d new companies: %w", n, err)
		}
		b.logs = b.logs[:0]
		for i := range n {
			r := rows[i*insertColumns:]
			b.logs = append(b.logs, r[insertColumns-1], r[0]) // change_seq, company_number
		}
		q = "INSERT INTO company_changes (change_seq, company_number) VALUES " + strings.Repeat("(?,?),", n-1) + "(?,?)"
		if _, err := b.tx.ExecContext(ctx, q, b.logs...); err != nil {
			return fmt.Errorf("log %d new companies: %w", n, err)
		}
		rows = rows[n*insertColumns:]
	}
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
