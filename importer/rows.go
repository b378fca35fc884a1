package importer

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/chwatch/chwatch/bulk"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
)

// chunkRows is how many rows the reader hands over at a time.
const chunkRows = 256

// Pauses between row transactions, so another writer's busy handler finds
// the lock free: SQLite's handler polls at growing intervals up to 100 ms,
// so a writer waiting beside the import gets in at a poll that falls in a
// pause. 10 ms (4% of the import's time) lets a writer that waits the
// whole 10 s busy timeout in with about 98% certainty; once someone else is
// seen committing (PRAGMA data_version), or `chwatch run` has a fresh
// heartbeat, pauses are 50 ms (about a 1 in 6 chance per poll).
const (
	pauseSolo   = 10 * time.Millisecond
	pauseShared = 50 * time.Millisecond
)

type item struct {
	rec    bulk.Record
	bad    *bulk.RowError
	offset int64 // after the row
	line   int64 // physical lines consumed after the row
}

type chunk struct {
	items []item
	err   error // fatal read error, after the items
	eof   bool  // the stream ended after the items
}

// state is the file's row in imports.
type state struct {
	id                      int64
	rowsRead, applied, bad  int64
	offset, line            int64
	completed               bool
	asOf, file, completedAt string
}

// importFile imports one file, resuming it when an earlier run stopped, and
// reports whether it had been imported completely before.
func (im *importer) importFile(ctx context.Context, f file) (bool, error) {
	st, err := im.loadState(ctx, f)
	if err != nil {
		return false, err
	}
	if st.completed {
		return true, nil
	}
	if st.rowsRead > 0 || st.bad > 0 {
		im.s.Resumed = append(im.s.Resumed, Resume{File: f.path, Line: st.line, Rows: st.rowsRead + st.bad})
	}
	if im.opts.MaxErrors >= 0 && st.bad > im.opts.MaxErrors {
		return false, fmt.Errorf("%w: %s: %d bad rows so far, more than --max-errors %d (raise it to go on; the import resumes at line %d)",
			ErrTooManyErrors, f.path, st.bad, im.opts.MaxErrors, st.line+1)
	}

	rc, size, err := bulk.Open(f.path)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	r, err := im.position(rc, f, st)
	if err != nil {
		return false, err
	}

	// The reader runs ahead in its own goroutine, so parsing overlaps with
	// SQLite; two chunks in flight keep memory constant.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	chunks := make(chan chunk, 2)
	go read(rctx, r, chunks)

	var pending []item
	var eof bool // the reader sent its last chunk
	for {
		if len(pending) == 0 && !eof {
			select {
			case c := <-chunks:
				if c.err != nil && len(c.items) == 0 {
					return false, fmt.Errorf("read %s: %w", f.path, c.err)
				}
				pending, eof = c.items, c.eof
				if c.err != nil {
					chunks <- chunk{err: c.err} // for the next round
				}
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		var tooMany bool
		pending, eof, tooMany, err = im.rowTx(ctx, f, st, pending, eof, chunks, size)
		if err != nil {
			return false, err
		}
		im.commits++
		if tooMany {
			return false, fmt.Errorf("%w: %s: %d bad rows, more than --max-errors %d (the rows before were committed; fix the file or raise --max-errors, and the import resumes at line %d)",
				ErrTooManyErrors, f.path, st.bad, im.opts.MaxErrors, st.line+1)
		}
		if im.opts.AfterCommit != nil {
			if err := im.opts.AfterCommit(im.commits); err != nil {
				return false, err
			}
		}
		if eof && len(pending) == 0 {
			return false, nil
		}
		im.pause(ctx)
	}
}

// pause leaves the write lock free for a moment. After a pause in which
// someone else committed, the pauses get longer.
func (im *importer) pause(ctx context.Context) {
	d := pauseSolo
	if im.shared {
		d = pauseShared
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
}

// loadState finds the file's row in imports, or starts one.
func (im *importer) loadState(ctx context.Context, f file) (*state, error) {
	st := &state{}
	var completed sql.NullString
	err := im.d.W.QueryRowContext(ctx, `SELECT id, file, as_of, rows_read, rows_applied, rows_bad, resume_offset, resume_line, completed_at
		FROM imports WHERE sha256 = ?`, f.sha).Scan(&st.id, &st.file, &st.asOf, &st.rowsRead, &st.applied, &st.bad, &st.offset, &st.line, &completed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		now := db.FormatTime(im.opts.Now())
		err := im.d.WriteTx(ctx, func(tx db.Tx) error {
			res, err := tx.ExecContext(ctx, `INSERT INTO imports (file, sha256, as_of, started_at, resume_offset, resume_line)
				VALUES (?, ?, ?, ?, 0, 1)`, f.path, f.sha, im.asOf, now)
			if err != nil {
				return err
			}
			st.id, err = res.LastInsertId()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("record import of %s: %w", f.path, err)
		}
		st.asOf, st.file, st.line = im.asOf, f.path, 1
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("read imports for %s: %w", f.path, err)
	}
	if st.asOf != im.asOf {
		return nil, fmt.Errorf("%w: %s (sha256 %s) was imported as of %s, not %s: pass --as-of %s, or leave --as-of out", ErrUsage, f.path, f.sha[:12], st.asOf, im.asOf, st.asOf)
	}
	st.completed, st.completedAt = completed.Valid, completed.String
	return st, nil
}

// position returns a reader at the row where the import resumes, in the
// file's encoding.
func (im *importer) position(rc io.ReadCloser, f file, st *state) (*bulk.Reader, error) {
	r, err := im.seek(rc, f, st)
	if err == nil {
		r.SetEncoding(im.opts.Encoding)
	}
	return r, err
}

func (im *importer) seek(rc io.ReadCloser, f file, st *state) (*bulk.Reader, error) {
	if st.offset == 0 {
		r, err := bulk.NewReader(rc)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.path, err)
		}
		return r, nil
	}
	if !f.standard {
		// Columns elsewhere than in the published layout: read from the
		// top and skip the rows done.
		r, err := bulk.NewReader(rc)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.path, err)
		}
		r.SetEncoding(im.opts.Encoding)
		for r.Offset() < st.offset {
			if _, err := r.Next(); err != nil {
				var re *bulk.RowError
				if !errors.As(err, &re) {
					return nil, fmt.Errorf("skip to the resume point of %s: %w", f.path, err)
				}
			}
		}
		return r, nil
	}
	if sk, ok := rc.(io.Seeker); ok {
		if _, err := sk.Seek(st.offset, io.SeekStart); err != nil {
			return nil, fmt.Errorf("resume %s at byte %d: %w", f.path, st.offset, err)
		}
	} else if _, err := io.CopyN(io.Discard, rc, st.offset); err != nil {
		return nil, fmt.Errorf("resume %s at byte %d: %w", f.path, st.offset, err)
	}
	return bulk.NewReaderAt(rc, st.offset, st.line), nil
}

// read sends the file's rows in chunks until the end, an error or ctx ends.
func read(ctx context.Context, r *bulk.Reader, out chan<- chunk) {
	for {
		c := chunk{items: make([]item, 0, chunkRows)}
		for len(c.items) < chunkRows {
			rec, err := r.Next()
			if err == io.EOF {
				c.eof = true
				break
			}
			var re *bulk.RowError
			if errors.As(err, &re) {
				c.items = append(c.items, item{bad: re, offset: r.Offset(), line: r.Line()})
				continue
			}
			if err != nil {
				c.err = err
				break
			}
			c.items = append(c.items, item{rec: rec, offset: r.Offset(), line: r.Line()})
		}
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
		if c.eof || c.err != nil {
			return
		}
	}
}

const saveProgress = `UPDATE imports SET rows_read = ?, rows_applied = ?, rows_bad = ?,
	resume_offset = ?, resume_line = ?, completed_at = ? WHERE id = ?`

// rowTx applies rows in one transaction until the time budget is spent or
// no more rows are ready, and commits them with the file's progress. It
// returns the rows not applied yet and whether the reader has sent its last
// chunk.
func (im *importer) rowTx(ctx context.Context, f file, st *state, pending []item, eof bool, chunks chan chunk, size int64) (rest []item, lastChunk, tooMany bool, err error) {
	dctx := context.WithoutCancel(ctx) // a started transaction commits
	t, err := im.beginRows(dctx, st)
	if err != nil {
		return pending, eof, false, err
	}
	defer t.tx.Rollback()
	// The companies of the rows at hand, read a chunk at a time: one query
	// instead of one per row.
	if err := preload(dctx, t.batch, pending); err != nil {
		return pending, eof, false, err
	}
	pending, eof, err = t.applyRows(ctx, dctx, pending, eof, chunks)
	if err != nil {
		return pending, eof, false, err
	}
	done := eof && len(pending) == 0 && !t.tooMany
	if err := t.commit(dctx, f, st, done); err != nil {
		return pending, eof, false, err
	}
	im.dataVersion = im.readDataVersion(dctx)
	im.report(f, st, t, done, size)
	return pending, eof, t.tooMany, nil
}

// rowTxn is one row transaction: what it writes through, and what its rows
// did, kept apart from the file's state until it commits.
type rowTxn struct {
	im    *importer
	tx    *sql.Tx
	q     *db.StmtCache
	seq   *db.Seq
	batch *company.Batch
	start time.Time
	now   time.Time
	ts    string
	asOf  time.Time

	local   state // the file's state as of the rows applied
	tally   tally
	bad     []*bulk.RowError
	tooMany bool // more than --max-errors bad rows
}

func (im *importer) beginRows(ctx context.Context, st *state) (*rowTxn, error) {
	now := im.opts.Now()
	t := &rowTxn{im: im, now: now, ts: db.FormatTime(now), asOf: im.opts.AsOf.UTC().Truncate(24 * time.Hour), local: *st}
	var err error
	if t.tx, err = im.d.W.BeginTx(ctx, nil); err != nil {
		return nil, fmt.Errorf("begin import transaction: %w", err)
	}
	t.start = time.Now()
	if im.changedByOthers(ctx, t.tx) {
		im.shared = true
	}
	t.q = db.NewStmtCache(t.tx)
	if t.seq, err = db.BeginSeq(ctx, t.q); err != nil {
		t.tx.Rollback()
		return nil, err
	}
	t.batch = im.applier.Begin(t.q, t.seq)
	return t, nil
}

// applyRows applies pending rows, taking more from chunks only when they
// are ready (never waiting for the reader while holding the lock), until
// none are ready, the time budget is spent or ctx is done, or there are
// too many bad rows.
func (t *rowTxn) applyRows(ctx, dctx context.Context, pending []item, eof bool, chunks chan chunk) ([]item, bool, error) {
	for n := 0; ; {
		if len(pending) == 0 {
			if eof {
				return pending, eof, nil
			}
			c, ok := ready(chunks)
			if !ok {
				return pending, eof, nil
			}
			pending, eof = c.items, c.eof
			if err := preload(dctx, t.batch, pending); err != nil {
				return pending, eof, err
			}
			continue
		}
		if n > 0 && n%32 == 0 && (time.Since(t.start) >= t.im.opts.TxBudget || ctx.Err() != nil) {
			return pending, eof, nil
		}
		it := &pending[0]
		pending = pending[1:]
		n++
		t.local.offset, t.local.line = it.offset, it.line
		if it.bad != nil {
			t.local.bad++
			t.bad = append(t.bad, it.bad)
			if t.im.opts.MaxErrors >= 0 && t.local.bad > t.im.opts.MaxErrors {
				t.tooMany = true
				return pending, eof, nil
			}
			continue
		}
		t.local.rowsRead++
		if err := t.im.applyRow(dctx, t.q, t.seq, t.batch, &it.rec, t.asOf, t.now, t.ts, &t.tally); err != nil {
			return pending, eof, err
		}
	}
}

// ready takes the reader's next chunk when it is ready. A read error goes
// back into chunks, for the round after the rows before it.
func ready(chunks chan chunk) (chunk, bool) {
	select {
	case c := <-chunks:
		if c.err != nil && len(c.items) == 0 {
			chunks <- c
			return chunk{}, false
		}
		if c.err != nil {
			chunks <- chunk{err: c.err}
		}
		return c, true
	default:
		return chunk{}, false
	}
}

// commit writes the transaction's companies, counters and the file's
// progress (completed when done), and commits.
func (t *rowTxn) commit(ctx context.Context, f file, st *state, done bool) error {
	t.local.applied = st.applied + t.tally.applied
	t.local.completed = done
	completed := sql.NullString{}
	if done {
		completed = sql.NullString{String: t.ts, Valid: true}
	}
	if err := t.batch.Flush(ctx); err != nil {
		return err
	}
	if err := t.seq.Save(ctx, t.q); err != nil {
		return err
	}
	if _, err := t.q.ExecContext(ctx, saveProgress, t.local.rowsRead, t.local.applied, t.local.bad, t.local.offset, t.local.line, completed, st.id); err != nil {
		return fmt.Errorf("record import progress of %s: %w", f.path, err)
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("commit import of %s: %w", f.path, err)
	}
	return nil
}

// report counts and reports what a committed transaction did, and moves
// the file's state on.
func (im *importer) report(f file, st *state, t *rowTxn, done bool, size int64) {
	im.s.add(&t.tally, t.local.rowsRead-st.rowsRead)
	for _, re := range t.bad {
		im.s.badRow(f.path, re)
		if im.opts.Errors != nil {
			w := csv.NewWriter(im.opts.Errors)
			w.Write([]string{f.path, strconv.FormatInt(re.Line, 10), re.Reason, re.Raw})
			w.Flush()
		}
	}
	*st = t.local
	if im.opts.Progress != nil {
		im.opts.Progress(Progress{File: f.path, Rows: im.s.RowsRead + im.s.Bad, Bytes: st.offset, TotalBytes: size})
	}
}

// changedByOthers reports whether another connection committed since this
// importer's last commit (PRAGMA data_version moves only for others').
func (im *importer) changedByOthers(ctx context.Context, tx *sql.Tx) bool {
	if im.dataVersion == 0 {
		return false
	}
	var v int64
	if err := tx.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return false
	}
	return v != im.dataVersion
}

func (im *importer) readDataVersion(ctx context.Context) int64 {
	var v int64
	if err := im.d.W.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0
	}
	return v
}

// tally counts what the rows of one transaction did.
type tally struct {
	applied, unchanged, stale int64
	entered, firstSeen, left  int64
	refused                   int64 // officer fetches refused past queue.max_depth
	unknown                   []string
}

// applyRow applies one row through the transition rule.
func (im *importer) applyRow(ctx context.Context, q db.Querier, seq *db.Seq, batch *company.Batch, r *bulk.Record, asOf, now time.Time, ts string, t *tally) error {
	v := company.Version{
		Number: r.CompanyNumber, Name: r.CompanyName,
		Status: r.CompanyStatus, Detail: r.CompanyStatusDetail,
		Type: r.CompanyType, Jurisdiction: r.Jurisdiction,
		DateOfCreation: r.DateOfCreation, DateOfCessation: r.DateOfCessation,
		SICCodes:     r.SICCodes,
		AddressLine1: r.AddressLine1, AddressLine2: r.AddressLine2,
		Locality: r.Locality, Region: r.Region, PostalCode: r.PostalCode, Country: r.Country,
		Source: company.Bulk, SourceTime: asOf,
	}
	t.unknown = append(t.unknown, r.Unknown...)
	before := batch.Stored(v.Number)
	d, err := batch.Apply(ctx, v, now)
	if err != nil {
		return fmt.Errorf("apply line %d (company %s): %w", r.Line, r.CompanyNumber, err)
	}
	switch d.Change {
	case company.EnteredStrikeOff:
		t.entered++
		if d.FirstSeen {
			t.firstSeen++
		}
	case company.LeftStrikeOff:
		t.left++
	}
	if d.OfficersRefused {
		t.refused++
	}
	switch d.Outcome {
	case company.Applied, company.Deleted:
		t.applied++
		return nil
	case company.Unchanged:
		t.unchanged++
	case company.Stale:
		t.stale++
		if m := before.MissingFromBulk; m != "" && m <= im.asOf {
			if err := company.ClearMissing(ctx, q, seq, r.CompanyNumber, im.asOf, now); err != nil {
				return err
			}
			before.MissingFromBulk = ""
		}
	}
	if before.BulkAsOf >= im.asOf {
		return nil // already recorded
	}
	if err := company.MarkListed(ctx, q, r.CompanyNumber, im.asOf); err != nil {
		return err
	}
	before.BulkAsOf = im.asOf
	return nil
}

// preload reads the companies of items into the batch.
func preload(ctx context.Context, batch *company.Batch, items []item) error {
	numbers := make([]string, 0, len(items))
	for i := range items {
		if items[i].bad == nil {
			numbers = append(numbers, items[i].rec.CompanyNumber)
		}
	}
	return batch.Preload(ctx, numbers)
}
