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
// the lock free: SQLite's handler polls at growing intervals of at most
// 100 ms, so a pause longer than that always holds one of its polls.
// Alone, the import pauses 110 ms once every 5 s (2% of its time): a
// writer that arrives meanwhile (a `chwatch queue retry`, a `run` starting)
// gets in within about 5 s, inside its 10 s busy timeout, with certainty.
// A 10 ms pause after every transaction cost 4% and let such a writer in
// with about 98% certainty. Once someone else is seen committing (PRAGMA
// data_version), or `chwatch run` has a fresh heartbeat, the import pauses
// 50 ms after every transaction, so the service's batch commits keep
// getting in (about a 1 in 6 chance per poll, every 250 ms).
const (
	pauseSolo      = 110 * time.Millisecond
	pauseSoloEvery = 5 * time.Second
	pauseShared    = 50 * time.Millisecond
)

// item is one row to apply: a good row of the file, in company-number order.
type item struct {
	rec bulk.Record
}

type chunk struct {
	items []item
	err   error // fatal read error, after the items
	eof   bool  // the stream ended after the items
}

// state is the file's row in imports.
type state struct {
	id                      int64 // 0 until the row is written
	rowsRead, applied, bad  int64
	offset, line            int64 // file-order progress of an import begun before migration 0009
	number                  string
	numberLine              int64 // with number: the last row applied, in sort order
	completed               bool
	asOf, file, completedAt string
}

// done reports whether an earlier run applied the row.
func (st *state) done(r *bulk.Record) bool {
	if r.Offset <= st.offset {
		return true
	}
	if st.number == "" {
		return false
	}
	k, _ := keyOf(r.CompanyNumber, r.Line)
	last, _ := keyOf(st.number, st.numberLine)
	return k.compare(last) <= 0
}

// importFile imports one file, resuming it when an earlier run stopped, and
// reports whether it had been imported completely before. It reads and
// sorts the whole file first (phase 1, sortFile), then applies the rows in
// company-number order (phase 2): rows that land near each other in the
// companies table's key arrive together, so SQLite's page cache holds the
// pages they touch (docs/design.md, "Import in company-number order").
func (im *importer) importFile(ctx context.Context, f file) (bool, error) {
	st, err := im.loadState(ctx, f)
	if err != nil {
		return false, err
	}
	if st.completed {
		return true, nil
	}
	if st.rowsRead > 0 {
		r := Resume{File: f.path, Number: st.number, Line: st.numberLine, Rows: st.rowsRead}
		if st.number == "" {
			r.Line = st.line // an older chwatch's progress, in file order
		}
		im.s.Resumed = append(im.s.Resumed, r)
	}
	if im.opts.MaxErrors >= 0 && st.bad > im.opts.MaxErrors {
		return false, fmt.Errorf("%w: %s: %d bad rows, more than --max-errors %d (raise it to go on)",
			ErrTooManyErrors, f.path, st.bad, im.opts.MaxErrors)
	}

	dir, err := openSortDir(im.d.Path)
	if err != nil {
		return false, err
	}
	defer dir.remove()
	if im.opts.createRun != nil {
		dir.createFile = im.opts.createRun
	}
	sortStart := time.Now()
	srt, err := im.sortFile(ctx, f, st, dir)
	im.s.Sorting += time.Since(sortStart)
	if err != nil {
		return false, err
	}
	if err := im.recordState(ctx, f, st); err != nil {
		return false, err
	}

	// The merge runs ahead in its own goroutine, so decoding overlaps with
	// SQLite; two chunks in flight keep memory constant. It ends before its
	// run files are removed.
	rctx, stop := context.WithCancel(ctx)
	chunks := make(chan chunk, 2)
	merged := make(chan struct{})
	go func() {
		defer close(merged)
		srt.merge(rctx, chunks)
	}()
	defer func() {
		stop()
		<-merged
	}()
	total := srt.rows

	var pending []item
	var eof bool // the merge sent its last chunk
	var applied int64
	for {
		if len(pending) == 0 && !eof {
			select {
			case c := <-chunks:
				if c.err != nil && len(c.items) == 0 {
					return false, c.err
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
		before := st.rowsRead
		pending, eof, err = im.rowTx(ctx, f, st, pending, eof, chunks)
		if err != nil {
			return false, err
		}
		applied += st.rowsRead - before
		im.commits++
		if err := im.committed(); err != nil {
			return false, err
		}
		if im.opts.Progress != nil {
			im.opts.Progress(Progress{File: f.path, Phase: Applying, Rows: applied, Done: applied, Total: total})
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

// sortFile is phase 1: it reads the whole file, reports its bad rows, and
// sorts the rows an earlier run did not apply into runs in dir. More than
// --max-errors bad rows stop it before any row is applied. st.bad becomes
// the file's bad rows.
func (im *importer) sortFile(ctx context.Context, f file, st *state, dir *sortDir) (*sorter, error) {
	rc, size, err := bulk.Open(f.path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	r, err := bulk.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	r.SetEncoding(im.opts.Encoding)

	srt := newSorter(dir, im.opts.runBytes, im.opts.fanIn)
	var read int64 // CSV bytes read
	srt.need = func() int64 {
		if size <= 0 || read <= 0 {
			return srt.written
		}
		return int64(float64(srt.written) * float64(size) / float64(read))
	}
	// The reader parses in its own goroutine while this one encodes,
	// sorts and writes; it ends before the file is closed.
	rctx, stop := context.WithCancel(ctx)
	chunks := make(chan readChunk, 2)
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		readFile(rctx, r, chunks)
	}()
	defer func() {
		stop()
		<-reading
	}()
	var bad, rows int64
	for n := 0; ; n++ {
		var c readChunk
		select {
		case c = <-chunks:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		for i := range c.items {
			it := &c.items[i]
			if it.bad != nil {
				bad++
				im.badRow(f, it.bad)
				if im.opts.MaxErrors >= 0 && bad > im.opts.MaxErrors {
					st.bad = bad
					if err := im.recordState(ctx, f, st); err != nil {
						return nil, err
					}
					return nil, fmt.Errorf("%w: %s: %d bad rows, more than --max-errors %d (found before any row was applied: fix the file or raise --max-errors)",
						ErrTooManyErrors, f.path, bad, im.opts.MaxErrors)
				}
				continue
			}
			if st.done(&it.rec) {
				continue
			}
			if err := srt.add(&it.rec); err != nil {
				return nil, fmt.Errorf("sort %s: %w", f.path, err)
			}
		}
		if len(c.items) > 0 {
			read = c.items[len(c.items)-1].offset
		}
		rows += int64(len(c.items))
		if c.err != nil {
			return nil, fmt.Errorf("read %s: %w", f.path, c.err)
		}
		if im.opts.Progress != nil && (n%16 == 0 || c.eof) {
			im.opts.Progress(Progress{File: f.path, Phase: Sorting, Rows: rows, Done: read, Total: size})
		}
		if c.eof {
			break
		}
	}
	if err := srt.finish(ctx); err != nil {
		return nil, fmt.Errorf("sort %s: %w", f.path, err)
	}
	st.bad = bad
	return srt, nil
}

// badRow reports a bad row found in phase 1.
func (im *importer) badRow(f file, re *bulk.RowError) {
	im.s.badRow(f.path, re)
	if im.opts.Errors != nil {
		w := csv.NewWriter(im.opts.Errors)
		w.Write([]string{f.path, strconv.FormatInt(re.Line, 10), re.Reason, re.Raw})
		w.Flush()
	}
}

// committed follows every import transaction's commit: the background
// checkpoint copies it, and past the WAL's limit the next transaction waits
// for the copy.
func (im *importer) committed() error {
	im.ckpt.Committed()
	return im.ckpt.Ready()
}

// pause leaves the write lock free for a moment: after every transaction
// while another writer uses the database, every pauseSoloEvery otherwise.
func (im *importer) pause(ctx context.Context) {
	d := pauseShared
	if !im.shared {
		if im.lastPause.IsZero() {
			im.lastPause = time.Now() // the first one 5 s in
		}
		if time.Since(im.lastPause) < pauseSoloEvery {
			return
		}
		d = pauseSolo
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	im.lastPause = time.Now()
}

// loadState finds the file's row in imports; a file not imported before
// gets its row only once phase 1 is through (recordState), so a file that
// cannot be sorted leaves the database as it was.
func (im *importer) loadState(ctx context.Context, f file) (*state, error) {
	st := &state{}
	var completed sql.NullString
	err := im.d.W.QueryRowContext(ctx, `SELECT id, file, as_of, rows_read, rows_applied, rows_bad, resume_offset, resume_line, resume_number, resume_number_line, completed_at
		FROM imports WHERE sha256 = ?`, f.sha).Scan(&st.id, &st.file, &st.asOf, &st.rowsRead, &st.applied, &st.bad, &st.offset, &st.line, &st.number, &st.numberLine, &completed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
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

// recordState writes the file's row in imports, with the bad rows phase 1
// found.
func (im *importer) recordState(ctx context.Context, f file, st *state) error {
	err := im.d.WriteTx(ctx, func(tx db.Tx) error {
		if st.id != 0 {
			_, err := tx.ExecContext(ctx, "UPDATE imports SET rows_bad = ? WHERE id = ?", st.bad, st.id)
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO imports (file, sha256, as_of, started_at, rows_bad)
			VALUES (?, ?, ?, ?, ?)`, f.path, f.sha, im.asOf, db.FormatTime(im.opts.Now()), st.bad)
		if err != nil {
			return err
		}
		st.id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("record import of %s: %w", f.path, err)
	}
	return nil
}

// readChunk is rows of the file as read, in file order.
type readChunk struct {
	items []readItem
	err   error
	eof   bool
}

type readItem struct {
	rec    bulk.Record
	bad    *bulk.RowError
	offset int64 // after the row
}

// readFile sends the file's rows in chunks until the end, an error or ctx
// ends. Parsing the CSV and mapping its fields take about the same time
// (0.6 and 0.25 s of 300,000 rows), and the parse alone bounded the sort's
// phase: this goroutine parses, mapRows maps, and the caller sorts.
func readFile(ctx context.Context, r *bulk.Reader, out chan<- readChunk) {
	parsed := make(chan rowChunk, 1)
	free := make(chan []bulk.Row, 3) // the chunks of rows, reused
	for range cap(free) {
		free <- make([]bulk.Row, parseRows)
	}
	mapped := make(chan struct{})
	go func() {
		defer close(mapped)
		mapRows(ctx, r, parsed, free, out)
	}()
	defer func() {
		close(parsed)
		<-mapped
	}()
	for {
		var rows []bulk.Row
		select {
		case rows = <-free:
		case <-ctx.Done():
			return
		}
		c := rowChunk{}
		n := 0
		for ; n < len(rows); n++ {
			if err := r.ReadRow(&rows[n]); err != nil {
				c.eof = err == io.EOF
				if !c.eof {
					c.err = err
				}
				break
			}
		}
		c.rows = rows[:n]
		select {
		case parsed <- c:
		case <-ctx.Done():
			return
		}
		if c.eof || c.err != nil {
			return
		}
	}
}

// parseRows is the rows of a chunk between the parser and the mapper: a
// parsed row holds its fields' slice and its first 200 bytes (about 1 KB).
const parseRows = 64

// rowChunk is rows as parsed, and what ended the parse after them.
type rowChunk struct {
	rows []bulk.Row
	err  error
	eof  bool
}

// mapRows maps the rows of parsed into chunks of items for out, and hands
// each chunk of rows back to free.
func mapRows(ctx context.Context, r *bulk.Reader, parsed <-chan rowChunk, free chan<- []bulk.Row, out chan<- readChunk) {
	for pc := range parsed {
		c := readChunk{items: make([]readItem, 0, len(pc.rows)), err: pc.err, eof: pc.eof}
		for i := range pc.rows {
			row := &pc.rows[i]
			rec, err := r.Map(row)
			var re *bulk.RowError
			if err != nil && !errors.As(err, &re) {
				// Map's errors are rows'; should another come, it ends the read.
				c.err, c.eof = err, false
				break
			}
			c.items = append(c.items, readItem{rec: rec, bad: re, offset: row.Offset()})
		}
		free <- pc.rows[:cap(pc.rows)]
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
	resume_number = ?, resume_number_line = ?, completed_at = ? WHERE id = ?`

// rowTx applies rows in one transaction until the time budget is spent or
// no more rows are ready, and commits them with the file's progress. It
// returns the rows not applied yet and whether the merge has sent its last
// chunk.
func (im *importer) rowTx(ctx context.Context, f file, st *state, pending []item, eof bool, chunks chan chunk) (rest []item, lastChunk bool, err error) {
	dctx := context.WithoutCancel(ctx) // a started transaction commits
	t, err := im.beginRows(dctx, st)
	if err != nil {
		return pending, eof, err
	}
	defer t.tx.Rollback()
	defer func() {
		// Before the rollback: nothing may run behind it. A statement that
		// failed behind is the cause of whatever failed after it.
		if berr := t.q.Close(); berr != nil && err != nil {
			err = fmt.Errorf("import of %s: %w", f.path, berr)
		}
	}()
	// The companies of the rows at hand, read a chunk at a time: one query
	// instead of one per row.
	if err := preload(dctx, t.batch, pending); err != nil {
		return pending, eof, err
	}
	pending, eof, err = t.applyRows(ctx, dctx, pending, eof, chunks)
	if err != nil {
		return pending, eof, err
	}
	done := eof && len(pending) == 0
	if err := t.commit(dctx, f, st, done); err != nil {
		return pending, eof, err
	}
	im.dataVersion = im.readDataVersion(dctx)
	im.s.add(&t.tally, t.local.rowsRead-st.rowsRead)
	*st = t.local
	return pending, eof, nil
}

// rowTxn is one row transaction: what it writes through, and what its rows
// did, kept apart from the file's state until it commits.
type rowTxn struct {
	im    *importer
	tx    *sql.Tx
	q     *db.Behind
	seq   *db.Seq
	batch *company.Batch
	start time.Time
	now   time.Time
	ts    string
	asOf  time.Time

	local state // the file's state as of the rows applied
	tally tally
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
	t.q = db.NewBehind(db.NewStmtCache(t.tx))
	if t.seq, err = db.BeginSeq(ctx, t.q); err != nil {
		t.q.Close()
		t.tx.Rollback()
		return nil, err
	}
	t.batch = im.applier.Begin(t.q, t.seq)
	return t, nil
}

// applyRows applies pending rows, taking more from chunks only when they
// are ready (never waiting for the merge while holding the lock), until
// none are ready, the time budget is spent or ctx is done.
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
		t.local.number, t.local.numberLine = it.rec.CompanyNumber, it.rec.Line
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
	if _, err := t.q.ExecContext(ctx, saveProgress, t.local.rowsRead, t.local.applied, t.local.bad, t.local.number, t.local.numberLine, completed, st.id); err != nil {
		return fmt.Errorf("record import progress of %s: %w", f.path, err)
	}
	if err := t.q.Close(); err != nil {
		return err // named by rowTx
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("commit import of %s: %w", f.path, err)
	}
	return nil
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
		numbers = append(numbers, items[i].rec.CompanyNumber)
	}
	return batch.Preload(ctx, numbers)
}
