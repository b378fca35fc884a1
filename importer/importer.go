// Package importer applies the Free Company Data Product to the mirror through
// the shared transition rule, resumably, in short transactions. It owns the
// imports table; companies, jobs and gaps are written through their packages.
//
// Every row becomes a company.Version from source bulk, dated the file's
// as-of at 00:00Z, and goes through company.Applier, the rule the stream and
// the REST API use too. A file is read whole first, its bad rows reported and
// its good rows sorted by company number into runs beside the database (an
// external sort, sort.go); then the rows are applied in that order, which
// keeps SQLite's writes local whatever the file's order. They are written in
// transactions that hold the write lock for about 250 ms, each of which also
// records in `imports` the last row it applied (resume_number,
// resume_number_line), so an interrupted import leaves a consistent database
// and the same command resumes it. Inside a transaction the multi-row
// INSERTs run behind the rule, in a goroutine of their own (db.Behind), and
// the WAL is checkpointed beside the writer (db.Checkpointer), so that a
// second core takes part of the work. Once every part of an as-of is in,
// companies the file lacks are marked missing_from_bulk and gaps that ended
// by the as-of are resolved.
//
// The file is recognised by the sha256 of its bytes (the .zip as given, not
// the CSV inside), computed in a first pass over the file before anything is
// written: the hash must be known to find the row to resume, and a pass
// costs a fraction of a second per 500 MB.
package importer

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/chwatch/chwatch/bulk"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
)

// ErrTooManyErrors means more rows were bad than Options.MaxErrors allows.
// The rows before were committed; the import is not complete.
var ErrTooManyErrors = errors.New("too many bad rows")

// ErrShrunk means a complete import holds no rows, or fewer than half the
// rows of the previous complete import: marking the companies it lacks
// missing would mark most of the register. Its rows are applied, nothing is
// marked; Options.Force marks them anyway.
var ErrShrunk = errors.New("import refused")

// ErrUsage marks errors in what the caller asked for (files of different
// as-of dates, an as-of that disagrees with an earlier run of the same file).
var ErrUsage = errors.New("bad usage")

// Phase is a step of a file's import.
type Phase string

// A file is read and sorted whole (Sorting), then its rows are applied in
// company-number order (Applying).
const (
	Sorting  Phase = "sort"
	Applying Phase = "apply"
)

// Progress is reported as the file is read, and after every transaction.
type Progress struct {
	File  string
	Phase Phase
	Rows  int64 // rows of the current file in this phase: read while Sorting, applied while Applying
	// Done and Total measure the phase in the current file: CSV bytes read
	// of its size (-1 when unknown) while Sorting, rows applied of the rows
	// to apply while Applying.
	Done, Total int64
}

// Options says how to import.
type Options struct {
	// AsOf is the date the file describes (00:00Z of that day).
	AsOf time.Time
	// Policy is the transition rule's policy. OfficersOnFirstSight is
	// `import --officers`.
	Policy company.Policy
	// MaxDepth is queue.max_depth.
	MaxDepth int64
	// MaxErrors is how many bad rows are tolerated (0 means none).
	MaxErrors int64
	// Force marks companies missing after a complete import that
	// ErrShrunk would refuse (`import --force`).
	Force bool
	// Encoding is the file's character encoding (bulk.UTF8, the product's,
	// by default). Text that is not in it stops the import.
	Encoding bulk.Encoding
	// Errors, when set, receives every bad row as a CSV line:
	// file,line,reason,row.
	Errors io.Writer
	// Progress, when set, is called after every transaction.
	Progress func(Progress)
	// Now is the clock for updated_at and friends (time.Now by default).
	Now func() time.Time
	// TxBudget is how long a transaction may hold the write lock (250 ms by
	// default).
	TxBudget time.Duration
	// AfterCommit, when set, is called after every committed row
	// transaction with their count so far; an error stops the import as if
	// it had been interrupted. A test hook.
	AfterCommit func(n int) error

	// The sort's sizes and its run files, replaced by tests (export_test.go)
	// to sort in many small runs, or to fill the disk.
	runBytes, fanIn int
	createRun       func(name string) (io.WriteCloser, error)
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TxBudget <= 0 {
		o.TxBudget = 250 * time.Millisecond
	}
	if o.runBytes <= 0 {
		o.runBytes = runBytes
	}
	if o.fanIn < 2 {
		o.fanIn = fanIn
	}
}

// file is one input file, checked.
type file struct {
	path    string
	sha     string
	partIdx int // 0 when the name says no part
	partOf  int
}

var partInName = regexp.MustCompile(`(?i)part(\d+)_(\d+)`)

// PartOf returns the part number and the part count a file name carries
// (BasicCompanyData-2026-11-01-part1_7.zip is part 1 of 7), or 0, 0.
func PartOf(name string) (part, of int) {
	m := partInName.FindAllStringSubmatch(baseName(name), -1)
	if m == nil {
		return 0, 0
	}
	last := m[len(m)-1]
	p, err1 := strconv.Atoi(last[1])
	n, err2 := strconv.Atoi(last[2])
	if err1 != nil || err2 != nil || p < 1 || n < 1 || p > n {
		return 0, 0
	}
	return p, n
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' || p[i] == '\\' {
			return p[i+1:]
		}
	}
	return p
}

// Check opens every file and reads its header, without touching any
// database. A file that is not the bulk product gives an error wrapping
// bulk.ErrNotBulkFile; parts of different counts give ErrUsage.
func Check(paths []string) error {
	_, err := check(paths, false)
	return err
}

func check(paths []string, hash bool) ([]file, error) {
	var files []file
	partsOf := 0
	for _, p := range paths {
		f := file{path: p}
		f.partIdx, f.partOf = PartOf(p)
		if f.partOf > 0 {
			if partsOf != 0 && partsOf != f.partOf {
				return nil, fmt.Errorf("%w: %s is a part of %d but another file is a part of %d: give the parts of one file", ErrUsage, p, f.partOf, partsOf)
			}
			partsOf = f.partOf
		}
		rc, _, err := bulk.Open(p)
		if err != nil {
			return nil, err
		}
		_, err = bulk.NewReader(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if hash {
			if f.sha, err = hashFile(p); err != nil {
				return nil, err
			}
		}
		files = append(files, f)
	}
	if partsOf > 0 && len(files) > 1 {
		for _, f := range files {
			if f.partOf == 0 {
				return nil, fmt.Errorf("%w: %s is not named as a part while others are: give the parts of one file, or the single file", ErrUsage, f.path)
			}
		}
	}
	return files, nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Run imports the files (the single file, or parts of one as-of) into d and
// returns what it did. On an error the summary holds what was done before
// it; committed work stays and the same call resumes.
func Run(ctx context.Context, d *db.DB, paths []string, opts Options) (*Summary, error) {
	opts.defaults()
	asOf := opts.AsOf.UTC().Format(time.DateOnly)
	s := newSummary(paths, asOf)
	start := time.Now()
	defer func() { s.Elapsed = time.Since(start) }()

	files, err := check(paths, true)
	if err != nil {
		return s, err
	}
	im := &importer{d: d, opts: opts, asOf: asOf, s: s,
		applier: &company.Applier{Policy: opts.Policy, MaxDepth: opts.MaxDepth}}
	im.shared = im.serviceRunning(ctx)
	if im.ckpt, err = d.Checkpointer(ctx); err != nil {
		return s, err
	}
	defer im.ckpt.Close(ctx)
	ran := false
	for _, f := range files {
		done, err := im.importFile(ctx, f)
		if err != nil {
			return s, err
		}
		if done {
			s.AlreadyDone = append(s.AlreadyDone, f.path)
		} else {
			ran = true
		}
	}
	complete, err := im.complete(ctx, files)
	if err != nil || !complete {
		return s, err
	}
	s.Complete = true
	if !ran {
		// Every file was imported before: run the pass only when an earlier
		// run was interrupted in it (or refused), so a re-import changes
		// nothing.
		pending, err := im.passPending(ctx)
		if err != nil || !pending {
			return s, err
		}
	}
	if err := im.checkSize(ctx); err != nil {
		return s, err
	}
	return s, im.markMissing(ctx)
}

// checkSize refuses the pass after a complete import that holds no rows, or
// fewer than half the rows of the previous complete import (unless
// Options.Force): a header-only file or a truncated download would otherwise
// mark most companies missing and queue a status check for every one in
// strike-off. A newer import marks nothing, so it needs no check.
func (im *importer) checkSize(ctx context.Context) error {
	if im.opts.Force {
		return nil
	}
	if newer, err := im.newerImport(ctx); err != nil || newer != "" {
		return err
	}
	sizes, err := im.completeSizes(ctx)
	if err != nil {
		return err
	}
	rows := sizes[im.asOf]
	prevAsOf, prev := "", int64(0)
	for asOf, n := range sizes {
		if asOf < im.asOf && asOf > prevAsOf {
			prevAsOf, prev = asOf, n
		}
	}
	const what = "nothing was marked missing and no status checks were queued (its rows were applied, as any row is); check the file, or pass --force if the register really shrank"
	if rows == 0 {
		return fmt.Errorf("%w: the import as of %s holds no rows: marking every company it lacks missing would mark them all; %s", ErrShrunk, im.asOf, what)
	}
	if rows*2 < prev {
		return fmt.Errorf("%w: the import as of %s holds %d rows, fewer than half the %d rows of the complete import as of %s: %s", ErrShrunk, im.asOf, rows, prev, prevAsOf, what)
	}
	return nil
}

// completeSizes returns the good rows of every complete import by as-of: the
// largest single file, or the parts when all of them are in (a part's name
// says how many there are).
func (im *importer) completeSizes(ctx context.Context) (map[string]int64, error) {
	rows, err := im.d.W.QueryContext(ctx, "SELECT as_of, file, rows_read FROM imports WHERE completed_at IS NOT NULL")
	if err != nil {
		return nil, fmt.Errorf("read imports: %w", err)
	}
	defer rows.Close()
	type parts struct {
		rows int64
		seen map[int]bool
	}
	single := map[string]int64{}
	split := map[string]map[int]*parts{} // as-of, part count
	for rows.Next() {
		var asOf, name string
		var n int64
		if err := rows.Scan(&asOf, &name, &n); err != nil {
			return nil, fmt.Errorf("read imports: %w", err)
		}
		p, of := PartOf(name)
		if of == 0 {
			single[asOf] = max(single[asOf], n)
			continue
		}
		if split[asOf] == nil {
			split[asOf] = map[int]*parts{}
		}
		ps := split[asOf][of]
		if ps == nil {
			ps = &parts{seen: map[int]bool{}}
			split[asOf][of] = ps
		}
		if !ps.seen[p] {
			ps.seen[p] = true
			ps.rows += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read imports: %w", err)
	}
	sizes := map[string]int64{}
	for asOf, n := range single {
		sizes[asOf] = n
	}
	for asOf, byCount := range split {
		for of, ps := range byCount {
			if len(ps.seen) == of {
				if _, ok := sizes[asOf]; !ok || ps.rows > sizes[asOf] {
					sizes[asOf] = ps.rows
				}
			}
		}
	}
	return sizes, nil
}

type importer struct {
	d       *db.DB
	opts    Options
	asOf    string
	s       *Summary
	applier *company.Applier
	commits int
	// shared is true while another writer (chwatch run) uses the database:
	// the importer then leaves longer pauses between its transactions.
	shared      bool
	lastPause   time.Time // the end of the last pause (monotonic)
	dataVersion int64
	ckpt        *db.Checkpointer // nil: checkpoints are external
}

// serviceRunning reports whether `chwatch run` refreshed its heartbeat in
// the last minute.
func (im *importer) serviceRunning(ctx context.Context) bool {
	var hb sql.NullString
	err := im.d.W.QueryRowContext(ctx, "SELECT value FROM service_state WHERE key = 'heartbeat_at'").Scan(&hb)
	if err != nil || !hb.Valid {
		return false
	}
	t, err := db.ParseTime(hb.String)
	return err == nil && time.Since(t) < time.Minute
}

// complete reports whether every part of the as-of is now imported
// completely: a single file by itself, parts when all of 1..N are in
// (imported by this call or an earlier one).
func (im *importer) complete(ctx context.Context, files []file) (bool, error) {
	rows, err := im.d.W.QueryContext(ctx, "SELECT file FROM imports WHERE as_of = ? AND completed_at IS NOT NULL", im.asOf)
	if err != nil {
		return false, fmt.Errorf("read imports: %w", err)
	}
	defer rows.Close()
	parts := map[int]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, fmt.Errorf("read imports: %w", err)
		}
		if p, n := PartOf(name); n == files[0].partOf {
			parts[p] = true
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read imports: %w", err)
	}
	if files[0].partOf == 0 {
		var n int
		err := im.d.W.QueryRowContext(ctx, "SELECT count(*) FROM imports WHERE sha256 = ? AND completed_at IS NOT NULL", files[0].sha).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("read imports: %w", err)
		}
		return n > 0, nil
	}
	n := files[0].partOf
	for p := 1; p <= n; p++ {
		if !parts[p] {
			im.s.PartsMissing = append(im.s.PartsMissing, p)
		}
	}
	im.s.PartsOf = n
	return len(im.s.PartsMissing) == 0, nil
}
