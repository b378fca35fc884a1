package importer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/importer"
)

// sampleLines returns the header and the data rows of a sample file, each
// row split into its fields.
func sampleLines(t *testing.T, path string) (string, [][]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	var rows [][]string
	for _, l := range lines[1:] {
		f, err := csv.NewReader(strings.NewReader(l)).Read()
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, f)
	}
	return lines[0], rows
}

// writeLines writes a bulk file of header and rows, every field quoted as
// the product writes them.
func writeLines(t *testing.T, path, header string, rows [][]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(header + "\r\n")
	for _, f := range rows {
		for i, v := range f {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
		}
		b.WriteString("\r\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// bulkRowsInOrder checks that the bulk rows were applied in company-number
// order: their change_seq grows with their number.
func bulkRowsInOrder(t *testing.T, d *db.DB) int {
	t.Helper()
	return scalar[int](t, d, `SELECT count(*) FROM (SELECT change_seq, lag(change_seq) OVER (ORDER BY company_number) AS prev
		FROM companies WHERE source = 'bulk') WHERE change_seq < prev`)
}

// A file whose numbers are in no order (the sample, in name order, as the
// real file) imports to what the same rows in number order import to:
// companies, status changes, jobs, counters and the companies marked
// missing; sorted in many small runs, merged in two levels.
func TestOutOfOrderFileImportsAsNumberOrder(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	byName := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 1500)
	header, rows := sampleLines(t, byName)
	is.True(!slices.IsSortedFunc(rows, func(a, b []string) int { return strings.Compare(a[1], b[1]) })) // numbers in no order
	slices.SortStableFunc(rows, func(a, b []string) int { return strings.Compare(a[1], b[1]) })
	is.NoErr(os.Mkdir(filepath.Join(dir, "sorted"), 0o755))
	byNumber := writeLines(t, filepath.Join(dir, "sorted", "BasicCompanyDataAsOneFile-2026-11-01.csv"), header, rows)

	var dumps []string
	for i, file := range []string{byName, byNumber} {
		d := openDB(t, filepath.Join(dir, []string{"name.db", "number.db"}[i]))
		stream(t, d, company.Version{Number: "99999901", Name: "GONE LIMITED", Status: "active", Detail: company.StrikeOffDetail,
			DateOfCreation: "2010-01-01", SourceTime: asOf.Add(-72 * time.Hour)})
		o := opts()
		o.Policy.OfficersOnFirstSight = true
		importer.SortInSmallRuns(&o, 16<<10, 4) // about 14 runs of 16 KB
		s := run(t, d, []string{file}, o)
		is.Equal(s.RowsRead, int64(1500))
		is.Equal(s.Missing, int64(1))
		is.True(s.Entered > 50)
		is.Equal(bulkRowsInOrder(t, d), 0)
		is.True(scalar[int](t, d, "SELECT count(*) FROM jobs WHERE kind = 'officers'") > 50)
		dumps = append(dumps, dump(t, d, "companies", "status_changes", "jobs", "counters"))
	}
	is.Equal(dumps[0], dumps[1])
}

// Rows of one number apply in file order, though the sort puts them in
// different runs: the last one wins, and the status changes between them
// come in their order.
func TestDuplicateNumbersKeepFileOrder(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	header, rows := sampleLines(t, sample(t, dir, "whole.csv", 300))
	for i, at := range []int{10, 150, 290} {
		f := rows[at]
		f[1] = "ZZ000001"
		f[0] = []string{"FIRST", "SECOND", "THIRD"}[i] + " ZED LIMITED"
		f[11] = []string{"Active", "Active - Proposal to Strike off", "Active"}[i]
	}
	file := writeLines(t, filepath.Join(dir, "BasicCompanyDataAsOneFile-2026-11-01.csv"), header, rows)
	d := openDB(t, filepath.Join(dir, "d.db"))
	o := opts()
	importer.SortInSmallRuns(&o, 4<<10, 2)
	s := run(t, d, []string{file}, o)
	is.Equal(s.RowsRead, int64(300))
	is.Equal(load(t, d, "ZZ000001").Name, "THIRD ZED LIMITED")
	is.Equal(scalar[string](t, d, "SELECT group_concat(change, ',') FROM (SELECT change FROM status_changes WHERE company_number = 'ZZ000001' ORDER BY id)"),
		"entered_strike_off,left_strike_off")
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM companies"), 298)
}

func noSortDir(t *testing.T, dbPath string) {
	t.Helper()
	if _, err := os.Stat(importer.SortDir(dbPath)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("sort directory %s left behind: %v", importer.SortDir(dbPath), err)
	}
}

// The sort's runs live in DB.import-sort (0700, files 0600) while the
// import runs: runs a crashed import left there are removed first, and the
// directory goes when the import ends, with success or an error.
func TestSortRunsRemoved(t *testing.T) {
	dir := t.TempDir()
	file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 2000)

	t.Run("StaleRunsThenSuccess", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "s.db")
		d := openDB(t, path)
		sd := importer.SortDir(path)
		is.NoErr(os.Mkdir(sd, 0o755))
		is.NoErr(os.WriteFile(filepath.Join(sd, "run-000001"), []byte("left by a crash"), 0o644))
		is.NoErr(os.WriteFile(filepath.Join(sd, "stale"), nil, 0o644))
		o := opts()
		importer.SortInSmallRuns(&o, 64<<10, 64)
		var seen []string
		o.AfterCommit = func(n int) error {
			if n > 1 {
				return nil
			}
			fi, err := os.Stat(sd)
			is.NoErr(err)
			is.Equal(fi.Mode().Perm(), os.FileMode(0o700))
			entries, err := os.ReadDir(sd)
			is.NoErr(err)
			for _, e := range entries {
				seen = append(seen, e.Name())
				fi, err := e.Info()
				is.NoErr(err)
				is.Equal(fi.Mode().Perm(), os.FileMode(0o600))
			}
			return nil
		}
		run(t, d, []string{file}, o)
		is.True(!slices.Contains(seen, "stale"))
		is.True(len(seen) > 3) // the lock and this import's runs
		noSortDir(t, path)
	})

	t.Run("AfterAnError", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "e.db")
		d := openDB(t, path)
		o := opts()
		o.TxBudget = 1
		stop := errors.New("killed")
		o.AfterCommit = func(n int) error {
			if n == 2 {
				return stop
			}
			return nil
		}
		_, err := importer.Run(context.Background(), d, []string{file}, o)
		is.True(errors.Is(err, stop))
		noSortDir(t, path)

		// Stopped while reading, by bad rows.
		o = opts()
		o.MaxErrors = 1
		_, err = importer.Run(context.Background(), d, []string{quirks}, o)
		is.True(errors.Is(err, importer.ErrTooManyErrors))
		noSortDir(t, path)
	})
}

// enospcAfter returns run files that fail with ENOSPC once limit bytes are
// written in all, as a full disk does.
func enospcAfter(limit int64) func(string) (io.WriteCloser, error) {
	var written atomic.Int64
	return func(name string) (io.WriteCloser, error) {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		return &fullDisk{f: f, written: &written, limit: limit}, nil
	}
}

type fullDisk struct {
	f       *os.File
	written *atomic.Int64
	limit   int64
}

func (w *fullDisk) Write(p []byte) (int, error) {
	if w.written.Add(int64(len(p))) > w.limit {
		return 0, &os.PathError{Op: "write", Path: w.f.Name(), Err: syscall.ENOSPC}
	}
	return w.f.Write(p)
}

func (w *fullDisk) Close() error { return w.f.Close() }

// A full disk while sorting stops the import with an error that says where
// and how much space it needs; the database is as it was, the runs are
// gone. So does a sort directory that cannot be made.
func TestSortDiskFull(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 3000)
	path := filepath.Join(dir, "f.db")
	d := openDB(t, path)
	stream(t, d, company.Version{Number: "99999901", Name: "GONE LIMITED", Status: "active", SourceTime: asOf.Add(-72 * time.Hour)})
	before := dump(t, d)

	o := opts()
	importer.SortInSmallRuns(&o, 32<<10, 64)
	importer.CreateRunsWith(&o, enospcAfter(200<<10))
	_, err := importer.Run(context.Background(), d, []string{file}, o)
	is.True(errors.Is(err, importer.ErrNoSpace))
	t.Log(err)
	is.True(strings.Contains(err.Error(), importer.SortDir(path)+" is full"))
	is.True(strings.Contains(err.Error(), "needs about "))
	is.True(strings.Contains(err.Error(), "this run applied no row"))
	is.Equal(dump(t, d), before) // not even a row in imports
	noSortDir(t, path)

	// The same with a file where the directory goes.
	is.NoErr(os.WriteFile(importer.SortDir(path), []byte("in the way"), 0o600))
	_, err = importer.Run(context.Background(), d, []string{file}, opts())
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), importer.SortDir(path)))
	is.Equal(dump(t, d), before)
	is.NoErr(os.Remove(importer.SortDir(path)))

	// With the space back, the import goes through.
	s := run(t, d, []string{file}, opts())
	is.Equal(s.RowsRead, int64(3000))
}

// A second import of the same database is refused while one sorts: it
// would remove the first one's runs as stale.
func TestSecondImportRefused(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 600)
	is.NoErr(os.Mkdir(filepath.Join(dir, "other"), 0o755))
	other := sample(t, filepath.Join(dir, "other"), "BasicCompanyDataAsOneFile-2026-11-01.csv", 700)
	d := openDB(t, filepath.Join(dir, "d.db"))
	o := opts()
	o.TxBudget = 1
	var second error
	o.AfterCommit = func(n int) error {
		if n == 1 {
			_, second = importer.Run(context.Background(), d, []string{other}, opts())
		}
		return nil
	}
	s := run(t, d, []string{file}, o)
	is.True(errors.Is(second, importer.ErrSortBusy))
	is.Equal(s.RowsRead, int64(600))
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM imports"), 1)
}

// An import that an older chwatch began (in file order, its progress a byte
// offset) goes on after that offset, in company-number order.
func TestResumeOfAnImportBegunInFileOrder(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 600)
	whole := openDB(t, filepath.Join(dir, "whole.db"))
	run(t, whole, []string{file}, opts())

	// What the older chwatch did: the first 200 rows, and their progress.
	content, err := os.ReadFile(file)
	is.NoErr(err)
	lines := bytes.SplitAfter(content, []byte("\r\n"))
	prefix := bytes.Join(lines[:201], nil)
	first := filepath.Join(dir, "first", "BasicCompanyDataAsOneFile-2026-11-01.csv")
	is.NoErr(os.MkdirAll(filepath.Dir(first), 0o755))
	is.NoErr(os.WriteFile(first, prefix, 0o644))
	old := openDB(t, filepath.Join(dir, "old.db"))
	run(t, old, []string{first}, opts())
	sum := sha256.Sum256(content)
	_, err = old.W.Exec(`UPDATE imports SET sha256 = ?, file = ?, completed_at = NULL, resume_offset = ?, resume_line = 201,
		resume_number = '', resume_number_line = 0`, hex.EncodeToString(sum[:]), file, len(prefix))
	is.NoErr(err)

	s := run(t, old, []string{file}, opts())
	is.Equal(s.RowsRead, int64(400))
	is.True(strings.Contains(s.String(), "resumed "+file+" after line 201 (200 rows done before)"))
	content1 := `SELECT group_concat(company_number || '|' || company_name || '|' || company_status || '|' || coalesce(company_status_detail, '') || '|' || bulk_as_of, char(10))
		FROM (SELECT * FROM companies ORDER BY company_number)`
	is.Equal(scalar[string](t, old, content1), scalar[string](t, whole, content1))
	is.Equal(scalar[int](t, old, "SELECT count(*) FROM status_changes"), scalar[int](t, whole, "SELECT count(*) FROM status_changes"))
	is.Equal(scalar[string](t, old, "SELECT rows_read || ',' || rows_applied || ',' || rows_bad FROM imports WHERE completed_at IS NOT NULL"), "600,600,0")
}

// Progress covers both phases, each measured to its end: CSV bytes while
// sorting, rows while applying.
func TestProgressCoversBothPhases(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 1000)
	fi, err := os.Stat(file)
	is.NoErr(err)
	d := openDB(t, filepath.Join(dir, "p.db"))
	o := opts()
	o.TxBudget = 1
	var got []importer.Progress
	o.Progress = func(p importer.Progress) { got = append(got, p) }
	run(t, d, []string{file}, o)
	i := slices.IndexFunc(got, func(p importer.Progress) bool { return p.Phase == importer.Applying })
	is.True(i > 1) // several while sorting, first
	sorting, applying := got[:i], got[i:]
	for _, p := range sorting {
		is.Equal(p.Phase, importer.Sorting)
		is.Equal(p.Total, fi.Size())
	}
	is.Equal(sorting[len(sorting)-1].Done, fi.Size())
	is.Equal(sorting[len(sorting)-1].Rows, int64(1000))
	for j, p := range applying {
		is.Equal(p.Phase, importer.Applying)
		is.Equal(p.Total, int64(1000))
		if j > 0 {
			is.True(p.Done >= applying[j-1].Done)
		}
	}
	is.Equal(applying[len(applying)-1].Done, int64(1000))
}
