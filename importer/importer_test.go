package importer_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/chwatch/chwatch/bulk"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/importer"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	asOf   = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	fixed  = time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)
	quirks = "../bulk/testdata/quirks.csv"
)

func opts() importer.Options {
	return importer.Options{AsOf: asOf, MaxErrors: 1000, Now: func() time.Time { return fixed }}
}

func run(t *testing.T, d *db.DB, files []string, o importer.Options) *importer.Summary {
	t.Helper()
	s, err := importer.Run(context.Background(), d, files, o)
	if err != nil {
		t.Fatalf("import %v: %v", files, err)
	}
	s.Elapsed, s.Sorting = 0, 0
	return s
}

// dump renders the tables an import writes, in a stable order.
func dump(t *testing.T, d *db.DB, tables ...string) string {
	t.Helper()
	if len(tables) == 0 {
		tables = []string{"companies", "status_changes", "jobs", "counters", "imports", "stream_gaps"}
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := d.W.Query("SELECT * FROM " + table + " ORDER BY 1, 2")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "== %s\n", table)
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if v == nil {
					continue
				}
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%s=%v ", cols[i], v)
			}
			b.WriteString("\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("differs from %s (rewrite with -update):\n%s", path, got)
	}
}

func sample(t testing.TB, dir, name string, rows int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := bulk.WriteSample(f, rows, 7); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func zipOf(t *testing.T, csvPath, zipPath string) string {
	t.Helper()
	out, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(out)
	w, err := zw.Create(filepath.Base(csvPath))
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := io.Copy(w, in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return zipPath
}

// stream stores a stream version of a company through the transition rule.
func stream(t *testing.T, d *db.DB, v company.Version) {
	t.Helper()
	v.Source = company.Stream
	if v.Timepoint == 0 {
		v.Timepoint = 1
	}
	err := d.WriteTx(context.Background(), func(tx db.Tx) error {
		seq, err := db.BeginSeq(context.Background(), tx)
		if err != nil {
			return err
		}
		a := company.Applier{Policy: company.Policy{ConfirmExit: "stream", OfficersOnFirstSight: true}}
		if _, err := a.Apply(context.Background(), tx, seq, v, fixed); err != nil {
			return err
		}
		return seq.Save(context.Background(), tx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, d *db.DB, number string) *company.Record {
	t.Helper()
	found, err := company.LoadMany(context.Background(), d.W, []string{number})
	if err != nil {
		t.Fatal(err)
	}
	return found[number]
}

func scalar[T any](t *testing.T, d *db.DB, query string, args ...any) T {
	t.Helper()
	var v T
	if err := d.W.QueryRow(query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func TestQuirksGolden(t *testing.T) {
	d := openDB(t, filepath.Join(t.TempDir(), "q.db"))
	var errs bytes.Buffer
	o := opts()
	o.Errors = &errs
	s := run(t, d, []string{quirks}, o)
	got := "summary: " + s.String() + "\n\nerrors:\n" + errs.String() + "\n" + dump(t, d, "companies", "status_changes", "jobs", "counters")
	golden(t, "quirks.golden", got)

	t.Run("ReimportChangesNothing", func(t *testing.T) {
		is := is.New(t)
		before := dump(t, d)
		o := opts()
		o.Now = func() time.Time { return fixed.Add(time.Hour) }
		s := run(t, d, []string{quirks}, o)
		is.Equal(dump(t, d), before)
		is.Equal(len(s.AlreadyDone), 1)
		is.True(strings.Contains(s.String(), "already imported completely"))
	})
}

func TestOfficersOnFirstSight(t *testing.T) {
	is := is.New(t)
	for _, officers := range []bool{false, true} {
		d := openDB(t, filepath.Join(t.TempDir(), "o.db"))
		o := opts()
		o.Policy.OfficersOnFirstSight = officers
		s := run(t, d, []string{quirks}, o)
		is.Equal(s.Entered, int64(2))
		is.Equal(s.FirstSeen, int64(2))
		n := scalar[int](t, d, "SELECT count(*) FROM jobs WHERE kind = 'officers'")
		if officers {
			is.Equal(n, 2)
		} else {
			is.Equal(n, 0)
		}
		is.Equal(scalar[int](t, d, "SELECT count(*) FROM status_changes WHERE first_seen = 1 AND source = 'bulk'"), 2)
	}
}

func TestConflicts(t *testing.T) {
	acme := company.Version{Number: "01234567", Name: "ACME FROM THE STREAM LIMITED", Status: "active",
		Type: "ltd", Jurisdiction: "england-wales", DateOfCreation: "2001-04-05"}

	t.Run("StreamNewerThanFile", func(t *testing.T) {
		is := is.New(t)
		d := openDB(t, filepath.Join(t.TempDir(), "c.db"))
		v := acme
		v.SourceTime = asOf.Add(36 * time.Hour)
		stream(t, d, v)
		before := dump(t, d, "companies")
		s := run(t, d, []string{quirks}, opts())
		is.Equal(s.Stale, int64(1))
		r := load(t, d, "01234567")
		is.Equal(r.Name, "ACME FROM THE STREAM LIMITED") // newer data kept
		is.Equal(r.Source, company.Stream)
		is.Equal(r.BulkAsOf, "2026-11-01") // but the file listed it
		is.Equal(r.MissingFromBulk, "")
		// The stale row did not touch updated_at or change_seq.
		is.True(strings.Contains(before, "change_seq=1 "))
		is.Equal(scalar[int](t, d, "SELECT change_seq FROM companies WHERE company_number = '01234567'"), 1)
	})

	t.Run("FileNewerThanStream", func(t *testing.T) {
		is := is.New(t)
		d := openDB(t, filepath.Join(t.TempDir(), "c.db"))
		v := acme
		v.SourceTime = asOf.Add(-36 * time.Hour)
		stream(t, d, v)
		s := run(t, d, []string{quirks}, opts())
		is.Equal(s.Stale, int64(0))
		r := load(t, d, "01234567")
		is.Equal(r.Name, "ACME WIDGETS LIMITED")
		is.Equal(r.Source, company.Bulk)
		is.Equal(r.SourceTime, asOf)
	})

	t.Run("FileLeavesStrikeOffThroughTheRule", func(t *testing.T) {
		is := is.New(t)
		d := openDB(t, filepath.Join(t.TempDir(), "c.db"))
		v := acme
		v.Detail = company.StrikeOffDetail
		v.SourceTime = asOf.Add(-48 * time.Hour)
		stream(t, d, v)
		s := run(t, d, []string{quirks}, opts())
		is.Equal(s.Left, int64(1))
		is.Equal(scalar[int](t, d, "SELECT count(*) FROM status_changes WHERE company_number = '01234567' AND change = 'left_strike_off' AND source = 'bulk'"), 1)
		is.Equal(scalar[int](t, d, "SELECT value FROM counters WHERE name = 'strike_off'"), 2) // the two first seen in the file
	})

	t.Run("OlderFileAfterNewer", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		d := openDB(t, filepath.Join(dir, "c.db"))
		newer := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 300)
		run(t, d, []string{newer}, opts())
		before := dump(t, d, "companies", "status_changes", "jobs", "counters")

		// An older file: other content (so another sha256), same companies.
		older := filepath.Join(dir, "BasicCompanyDataAsOneFile-2026-10-01.csv")
		b, _ := os.ReadFile(newer)
		os.WriteFile(older, bytes.ReplaceAll(b, []byte("LIMITED"), []byte("OLD NAME LIMITED")), 0o644)
		o := opts()
		o.AsOf = asOf.AddDate(0, -1, 0)
		o.Now = func() time.Time { return fixed.Add(time.Hour) }
		s := run(t, d, []string{older}, o)
		is.Equal(s.Stale, int64(300))
		is.Equal(s.Applied, int64(0))
		is.Equal(s.MissingSkipped, "2026-11-01")
		is.Equal(dump(t, d, "companies", "status_changes", "jobs", "counters"), before)
	})
}

func TestMissingFromBulk(t *testing.T) {
	is := is.New(t)
	d := openDB(t, filepath.Join(t.TempDir(), "m.db"))
	gone := company.Version{Number: "99999901", Name: "GONE LIMITED", Status: "active", Detail: company.StrikeOffDetail,
		DateOfCreation: "2010-01-01", SourceTime: asOf.Add(-72 * time.Hour)}
	stream(t, d, gone)
	plain := gone
	plain.Number, plain.Detail = "99999902", ""
	plain.Timepoint = 2
	stream(t, d, plain)
	young := gone
	young.Number, young.DateOfCreation, young.SourceTime, young.Timepoint = "99999903", "2026-11-15", asOf.Add(15*24*time.Hour), 3
	stream(t, d, young)
	dissolved := plain
	dissolved.Number, dissolved.Status, dissolved.Timepoint = "99999904", "dissolved", 4
	stream(t, d, dissolved)
	// Gaps: one ended before the as-of, one after.
	for _, to := range []string{"2026-10-30T10:00:00Z", "2026-11-20T10:00:00Z"} {
		_, err := d.W.Exec(`INSERT INTO stream_gaps (stream, from_timepoint, to_timepoint, to_time, detected_at, reason)
			VALUES ('companies', 1, 2, ?, ?, '416 timepoint too old')`, to, db.FormatTime(fixed))
		is.NoErr(err)
	}

	s := run(t, d, []string{quirks}, opts())
	is.Equal(s.Missing, int64(2))
	is.Equal(s.StatusChecks, int64(1))
	is.Equal(s.GapsResolved, int64(1))
	is.Equal(load(t, d, "99999901").MissingFromBulk, "2026-11-01")
	is.Equal(load(t, d, "99999902").MissingFromBulk, "2026-11-01")
	is.Equal(load(t, d, "99999903").MissingFromBulk, "") // created after the as-of
	is.Equal(load(t, d, "99999904").MissingFromBulk, "") // not live
	is.Equal(load(t, d, "01234567").MissingFromBulk, "")
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM jobs WHERE kind = 'status_check' AND company_number = '99999901'"), 1)
	is.Equal(scalar[string](t, d, "SELECT group_concat(coalesce(resolution, '-'), ',') FROM (SELECT resolution FROM stream_gaps ORDER BY id)"), "import,-")
	// The marking took a change_seq, above everything before.
	is.True(scalar[int](t, d, "SELECT change_seq FROM companies WHERE company_number = '99999901'") >
		scalar[int](t, d, "SELECT max(change_seq) FROM companies WHERE source = 'bulk'"))
}

func TestParts(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	d := openDB(t, filepath.Join(dir, "p.db"))
	stream(t, d, company.Version{Number: "99999901", Name: "GONE LIMITED", Status: "active", SourceTime: asOf.Add(-72 * time.Hour)})
	all, _ := os.ReadFile(sample(t, dir, "whole.csv", 200))
	lines := bytes.SplitAfter(all, []byte("\r\n"))
	head := lines[0]
	p1 := filepath.Join(dir, "BasicCompanyData-2026-11-01-part1_2.csv")
	p2 := filepath.Join(dir, "BasicCompanyData-2026-11-01-part2_2.csv")
	os.WriteFile(p1, bytes.Join(lines[:101], nil), 0o644)
	os.WriteFile(p2, append(append([]byte{}, head...), bytes.Join(lines[101:], nil)...), 0o644)

	s := run(t, d, []string{p1}, opts())
	is.True(!s.Complete)
	is.Equal(s.PartsMissing, []int{2})
	is.Equal(s.Missing, int64(0))
	is.Equal(load(t, d, "99999901").MissingFromBulk, "")

	s = run(t, d, []string{p2}, opts())
	is.True(s.Complete)
	is.Equal(s.Missing, int64(1))
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM companies WHERE bulk_as_of = '2026-11-01'"), 200)

	_, err := importer.Run(context.Background(), d, []string{p1, filepath.Join(dir, "BasicCompanyData-2026-11-01-part1_3.csv")}, opts())
	is.True(errors.Is(err, importer.ErrUsage))
}

func TestBadRows(t *testing.T) {
	is := is.New(t)
	d := openDB(t, filepath.Join(t.TempDir(), "b.db"))
	var errs bytes.Buffer
	o := opts()
	o.MaxErrors = 1
	o.Errors = &errs
	s, err := importer.Run(context.Background(), d, []string{quirks}, o)
	is.True(errors.Is(err, importer.ErrTooManyErrors))
	is.Equal(s.Bad, int64(2))
	is.Equal(strings.Count(errs.String(), "\n"), 2)
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM imports WHERE completed_at IS NULL AND rows_bad = 2"), 1)
	// Found while the file was read, before any row was applied.
	is.True(strings.Contains(err.Error(), "before any row was applied"))
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM companies"), 0)

	// Refused again until --max-errors is raised, then it goes on: nothing
	// was applied, so from the first row.
	_, err = importer.Run(context.Background(), d, []string{quirks}, o)
	is.True(errors.Is(err, importer.ErrTooManyErrors))
	o.MaxErrors = 10
	s = run(t, d, []string{quirks}, o)
	is.Equal(len(s.Resumed), 0)
	is.Equal(s.Bad, int64(3))
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM imports WHERE completed_at IS NOT NULL AND rows_bad = 3 AND rows_read = 15"), 1)
}

func TestNotABulkFile(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	d := openDB(t, filepath.Join(dir, "n.db"))
	name := filepath.Join(dir, "BasicCompanyDataAsOneFile-2026-11-01.csv")
	os.WriteFile(name, []byte("a,b,c\n1,2,3\n"), 0o644)
	_, err := importer.Run(context.Background(), d, []string{name}, opts())
	is.True(errors.Is(err, bulk.ErrNotBulkFile))
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM imports"), 0)
}

func TestInterruptedImportResumes(t *testing.T) {
	for _, kind := range []string{"csv", "zip", "small-runs"} {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 3000)
			if kind == "zip" {
				file = zipOf(t, file, filepath.Join(dir, "BasicCompanyDataAsOneFile-2026-11-01.zip"))
			}
			o := opts()
			o.TxBudget = time.Nanosecond // a transaction per 32 rows
			if kind == "small-runs" {
				if testing.Short() {
					t.Skip("long: -short")
				}
				importer.SortInSmallRuns(&o, 8<<10, 3) // merges of merges
			}

			whole := openDB(t, filepath.Join(dir, "whole.db"))
			stream(t, whole, company.Version{Number: "99999901", Name: "GONE LIMITED", Status: "active", SourceTime: asOf.Add(-72 * time.Hour)})
			run(t, whole, []string{file}, o)

			cut := openDB(t, filepath.Join(dir, "cut.db"))
			stream(t, cut, company.Version{Number: "99999901", Name: "GONE LIMITED", Status: "active", SourceTime: asOf.Add(-72 * time.Hour)})
			stop := errors.New("killed")
			for _, at := range []int{3, 17, 40} {
				oi := o
				oi.AfterCommit = func(n int) error {
					if n == at {
						return stop
					}
					return nil
				}
				_, err := importer.Run(context.Background(), cut, []string{file}, oi)
				is.True(errors.Is(err, stop))
				is.Equal(scalar[int](t, cut, "SELECT count(*) FROM imports WHERE completed_at IS NULL"), 1)
				// Every company row written is covered by the recorded progress.
				is.Equal(scalar[int](t, cut, "SELECT count(*) FROM companies WHERE source = 'bulk'"),
					scalar[int](t, cut, "SELECT rows_applied FROM imports"))
				// Applied in company-number order: none past the recorded place.
				is.Equal(scalar[int](t, cut, "SELECT count(*) FROM companies WHERE source = 'bulk' AND company_number > (SELECT resume_number FROM imports)"), 0)
				noSortDir(t, cut.Path)
			}
			s := run(t, cut, []string{file}, o)
			is.Equal(len(s.Resumed), 1)
			is.True(strings.Contains(s.String(), "in company-number order ("))
			is.Equal(dump(t, cut), dump(t, whole))

			// A context cancelled mid-way stops after committing.
			ctx, cancel := context.WithCancel(context.Background())
			third := openDB(t, filepath.Join(dir, "third.db"))
			oc := o
			oc.AfterCommit = func(n int) error {
				if n == 5 {
					cancel()
				}
				return nil
			}
			_, err := importer.Run(ctx, third, []string{file}, oc)
			is.True(errors.Is(err, context.Canceled))
			is.True(scalar[int](t, third, "SELECT rows_read FROM imports") > 0)
		})
	}
}

// A disk that fills while rows are applied stops the import with SQLite's
// full-disk error, through the inserts that run behind the deciding of the
// next rows: the transaction it struck is not committed, those before it
// are, with their progress; with room again the same command finishes, and
// the result is the same as one import without the incident.
func TestDiskFullWhileApplying(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 3000)
	o := opts()
	o.TxBudget = time.Nanosecond // a transaction per 32 rows
	whole := openDB(t, filepath.Join(dir, "whole.db"))
	run(t, whole, []string{file}, o)

	cut := openDB(t, filepath.Join(dir, "cut.db"))
	var release func()
	of := o
	of.AfterCommit = func(n int) error {
		if n == 4 {
			release = dbtest.Fill(t, cut)
		}
		return nil
	}
	_, err := importer.Run(context.Background(), cut, []string{file}, of)
	is.True(err != nil)
	t.Log(err)
	is.True(db.IsFull(err))
	is.True(strings.Contains(err.Error(), "database or disk is full"))
	is.True(release != nil)
	release()
	applied := scalar[int](t, cut, "SELECT rows_applied FROM imports")
	is.True(applied >= 4*32)
	is.Equal(scalar[int](t, cut, "SELECT count(*) FROM companies WHERE source = 'bulk'"), applied)

	s := run(t, cut, []string{file}, o)
	is.Equal(len(s.Resumed), 1)
	is.Equal(dump(t, cut), dump(t, whole))
}

// TestImportDuringIngestion runs an import while another handle commits
// stream-like writes, as `chwatch run` does beside it: both finish and
// nothing is lost.
func TestImportDuringIngestion(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "i.db")
	d := openDB(t, path)
	file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 30000)

	other, err := db.Open(context.Background(), path)
	is.NoErr(err)
	defer other.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var committed, slowest atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		a := company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
		for i := 1; ctx.Err() == nil || committed.Load() < 20; i++ {
			start := time.Now()
			err := other.WriteTx(context.Background(), func(tx db.Tx) error {
				seq, err := db.BeginSeq(context.Background(), tx)
				if err != nil {
					return err
				}
				// A new company and an update of one the file lists,
				// newer than the file.
				for _, v := range []company.Version{
					{Number: fmt.Sprintf("ST%06d", i), Name: "STREAMED LIMITED", Status: "active", DateOfCreation: "2026-11-20"},
					{Number: fmt.Sprintf("%08d", i), Name: "STREAMED UPDATE LIMITED", Status: "active", DateOfCreation: "2026-11-20"},
				} {
					v.Source, v.SourceTime, v.Timepoint = company.Stream, asOf.Add(time.Duration(i)*time.Minute+24*time.Hour), int64(i)
					if _, err := a.Apply(context.Background(), tx, seq, v, time.Now()); err != nil {
						return err
					}
				}
				return seq.Save(context.Background(), tx)
			})
			if err != nil {
				t.Errorf("stream commit %d: %v", i, err)
				return
			}
			if w := time.Since(start).Milliseconds(); w > slowest.Load() {
				slowest.Store(w)
			}
			committed.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()

	o := opts()
	o.Now = time.Now
	s, err := importer.Run(context.Background(), d, []string{file}, o)
	cancel()
	wg.Wait()
	is.NoErr(err)
	n := committed.Load()
	t.Logf("%d stream commits beside the import (slowest %d ms); %s", n, slowest.Load(), s)
	is.True(n >= 20)
	is.Equal(scalar[int64](t, d, "SELECT count(*) FROM companies WHERE company_number LIKE 'ST%'"), n)
	is.Equal(scalar[int64](t, d, "SELECT count(*) FROM companies WHERE company_name = 'STREAMED UPDATE LIMITED'"), n)
	is.Equal(scalar[int64](t, d, "SELECT count(*) FROM companies WHERE bulk_as_of = '2026-11-01'"), int64(30000))
	is.Equal(scalar[int64](t, d, "SELECT value FROM counters WHERE name = 'companies'"), scalar[int64](t, d, "SELECT count(*) FROM companies"))
	is.Equal(s.Missing, int64(0))
	is.Equal(scalar[int64](t, d, "SELECT count(DISTINCT change_seq) FROM companies"), scalar[int64](t, d, "SELECT count(*) FROM companies"))
}

// The parts of one as-of count together, once all are in: a complete set
// of parts much smaller than the last complete import is refused.
func TestShrunkParts(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	d := openDB(t, filepath.Join(dir, "s.db"))
	o := opts()
	o.AsOf = asOf.AddDate(0, -1, 0)
	run(t, d, []string{sample(t, dir, "BasicCompanyDataAsOneFile-2026-10-01.csv", 200)}, o)

	all, _ := os.ReadFile(sample(t, dir, "whole.csv", 90))
	lines := bytes.SplitAfter(all, []byte("\r\n"))
	p1 := filepath.Join(dir, "BasicCompanyData-2026-11-01-part1_2.csv")
	p2 := filepath.Join(dir, "BasicCompanyData-2026-11-01-part2_2.csv")
	os.WriteFile(p1, bytes.Join(lines[:46], nil), 0o644)
	os.WriteFile(p2, append(append([]byte{}, lines[0]...), bytes.Join(lines[46:], nil)...), 0o644)
	s := run(t, d, []string{p1}, opts()) // one part: nothing to judge yet
	is.True(!s.Complete)
	_, err := importer.Run(context.Background(), d, []string{p2}, opts())
	is.True(errors.Is(err, importer.ErrShrunk))
	is.True(strings.Contains(err.Error(), "holds 90 rows, fewer than half the 200 rows of the complete import as of 2026-10-01"))
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM companies WHERE missing_from_bulk IS NOT NULL"), 0)

	o = opts()
	o.Force = true
	s = run(t, d, []string{p1, p2}, o)
	is.True(s.Missing > 100)
}
