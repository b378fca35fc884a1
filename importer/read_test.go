package importer_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/chwatch/chwatch/bulk"
	"github.com/chwatch/chwatch/importer"
)

// TestReadInTwoGoroutines: the file is parsed in one goroutine and its rows
// mapped in another, through chunks of rows that are reused. Over many
// chunks, with bad rows of both kinds (refused by the CSV parser, and by
// the mapping) in several, every company stored is the row the file holds
// (as a plain sequential read maps it), and every bad row is reported
// once, with its own line and text.
func TestReadInTwoGoroutines(t *testing.T) {
	is := is.New(t)
	var sample bytes.Buffer
	is.NoErr(bulk.WriteSample(&sample, 3000, 7))
	lines := strings.SplitAfter(sample.String(), "\r\n")
	badAt := map[int]bool{1: true, 255: true, 256: true, 257: true, 1500: true, 2999: true} // rows, counted from 1
	for i := range badAt {
		f, err := csv.NewReader(strings.NewReader(lines[i])).Read()
		is.NoErr(err)
		f[14] = "31/02/2020" // IncorporationDate: no such day
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.UseCRLF = true
		is.NoErr(w.Write(f))
		w.Flush()
		lines[i] = b.String()
	}
	for _, i := range []int{600, 1001} { // rows the CSV parser refuses: a bare quote
		lines[i] = `Bad"Quote` + lines[i]
	}
	path := filepath.Join(t.TempDir(), "BasicCompanyDataAsOneFile-2026-11-01.csv")
	is.NoErr(os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600))

	// What a sequential read gives.
	f, err := os.Open(path)
	is.NoErr(err)
	defer f.Close()
	r, err := bulk.NewReader(f)
	is.NoErr(err)
	want := map[string]bulk.Record{}
	wantBad := map[int64]string{}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *bulk.RowError
		if errors.As(err, &re) {
			wantBad[re.Line] = re.Raw
			continue
		}
		is.NoErr(err)
		want[rec.CompanyNumber] = rec
	}
	is.Equal(len(wantBad), len(badAt)+2)

	d := openDB(t, filepath.Join(t.TempDir(), "r.db"))
	var errs bytes.Buffer
	o := opts()
	o.Errors = &errs
	s, err := importer.Run(context.Background(), d, []string{path}, o)
	is.NoErr(err)
	is.Equal(s.Bad, int64(len(badAt)+2))

	reported, err := csv.NewReader(&errs).ReadAll()
	is.NoErr(err)
	is.Equal(len(reported), len(badAt)+2)
	for _, e := range reported { // file, line, reason, raw
		line, err := strconv.ParseInt(e[1], 10, 64)
		is.NoErr(err)
		raw, ok := wantBad[line]
		is.True(ok)         // a line a sequential read found bad
		is.Equal(e[3], raw) // with its own text
		delete(wantBad, line)
	}

	rows, err := d.W.Query("SELECT company_number, company_name, coalesce(postal_code, ''), coalesce(date_of_creation, '') FROM companies")
	is.NoErr(err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var number, name, postcode, created string
		is.NoErr(rows.Scan(&number, &name, &postcode, &created))
		w, ok := want[number]
		is.True(ok)
		is.Equal(name, w.CompanyName)
		is.Equal(postcode, w.PostalCode)
		is.Equal(created, w.DateOfCreation)
		n++
	}
	is.NoErr(rows.Err())
	is.Equal(n, len(want))
}

// TestStopWhileReading: a stop during the sort's reading returns at once,
// with both reading goroutines gone and nothing applied, and the same
// command then imports the whole file.
func TestStopWhileReading(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	file := sample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 3000)
	d := openDB(t, filepath.Join(dir, "s.db"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := opts()
	o.Progress = func(p importer.Progress) {
		if p.Phase == importer.Sorting && p.Rows > 0 && p.Done < p.Total {
			cancel()
		}
	}
	_, err := importer.Run(ctx, d, []string{file}, o)
	is.True(errors.Is(err, context.Canceled))
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM companies"), 0)
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	is.True(!strings.Contains(stacks, "importer.readFile")) // Run waited for its readers
	is.True(!strings.Contains(stacks, "importer.mapRows"))

	s := run(t, d, []string{file}, opts())
	is.Equal(s.RowsRead, int64(3000))
	is.Equal(scalar[int](t, d, "SELECT count(*) FROM companies"), 3000)
}
