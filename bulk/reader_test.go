package bulk_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/matryer/is"

	"github.com/chwatch/chwatch/bulk"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// result is what one Next call gave, for golden files and comparisons.
type result struct {
	Record *bulk.Record   `json:",omitempty"`
	Error  *bulk.RowError `json:",omitempty"`
}

// readAll reads r to io.EOF and returns every record and row error, failing
// on anything else.
func readAll(tb testing.TB, r *bulk.Reader) []result {
	tb.Helper()
	var out []result
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		var re *bulk.RowError
		switch {
		case errors.As(err, &re):
			out = append(out, result{Error: re})
		case err != nil:
			tb.Fatalf("Next: %v", err)
		default:
			out = append(out, result{Record: &rec})
		}
	}
}

func readQuirks(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/quirks.csv")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestReaderQuirksGolden(t *testing.T) {
	is := is.New(t)
	data := readQuirks(t)
	r, err := bulk.NewReader(bytes.NewReader(data))
	is.NoErr(err)
	got := readAll(t, r)
	is.Equal(r.Offset(), int64(len(data))) // Offset reaches the end of the stream

	js, err := json.MarshalIndent(got, "", "  ")
	is.NoErr(err)
	js = append(js, '\n')
	golden := "testdata/quirks.golden.json"
	if *update {
		is.NoErr(os.WriteFile(golden, js, 0o644))
	}
	want, err := os.ReadFile(golden)
	is.NoErr(err)
	if !bytes.Equal(js, want) {
		t.Errorf("records differ from %s (run go test ./bulk -run Golden -update to rewrite):\n%s", golden, js)
	}

	t.Run("RowErrorLines", func(t *testing.T) {
		is := is.New(t)
		var lines []int64
		for _, res := range got {
			if res.Error != nil {
				lines = append(lines, res.Error.Line)
			}
		}
		// 11: 54 fields; 12: 31/02/2020; 18: empty CompanyNumber.
		is.Equal(lines, []int64{11, 12, 18})
	})

	t.Run("PhysicalLines", func(t *testing.T) {
		is := is.New(t)
		byNumber := map[string]int64{}
		for _, res := range got {
			if res.Record != nil {
				byNumber[res.Record.CompanyNumber] = res.Record.Line
			}
		}
		is.Equal(byNumber["NI012345"], int64(5))  // its address spans lines 5 and 6
		is.Equal(byNumber["04567890"], int64(7))  // so the next row starts on line 7
		is.Equal(byNumber["07777777"], int64(20)) // the last line
	})

	t.Run("StrikeOff", func(t *testing.T) {
		is := is.New(t)
		n := 0
		for _, res := range got {
			if rec := res.Record; rec != nil && rec.CompanyStatus == "active" && rec.CompanyStatusDetail == "active-proposal-to-strike-off" {
				n++
			}
		}
		is.Equal(n, 2) // upper case and extra spaces both map
	})

	t.Run("RowErrorText", func(t *testing.T) {
		is := is.New(t)
		for _, res := range got {
			if res.Error != nil && res.Error.Line == 12 {
				is.Equal(res.Error.Error(), `line 12: bad IncorporationDate "31/02/2020"`)
				is.True(strings.HasPrefix(res.Error.Raw, `"BAD DATE LIMITED","13579246"`))
				is.True(len(res.Error.Raw) <= 200)
			}
		}
	})
}

func TestOpenZip(t *testing.T) {
	is := is.New(t)
	data := readQuirks(t)
	dir := t.TempDir()
	zpath := filepath.Join(dir, "BasicCompanyDataAsOneFile-2026-11-01.zip")
	writeZip(t, zpath, map[string][]byte{"BasicCompanyDataAsOneFile-2026-11-01.csv": data})

	want := readAll(t, mustReader(t, bytes.NewReader(data)))

	rc, size, err := bulk.Open(zpath)
	is.NoErr(err)
	defer rc.Close()
	is.Equal(size, int64(len(data)))
	got := readAll(t, mustReader(t, rc))
	is.Equal(mustJSON(t, got), mustJSON(t, want))
	is.NoErr(rc.Close())

	t.Run("CSV", func(t *testing.T) {
		is := is.New(t)
		rc, size, err := bulk.Open("testdata/quirks.csv")
		is.NoErr(err)
		defer rc.Close()
		is.Equal(size, int64(len(data)))
		is.Equal(mustJSON(t, readAll(t, mustReader(t, rc))), mustJSON(t, want))
	})

	t.Run("TwoCSVs", func(t *testing.T) {
		is := is.New(t)
		p := filepath.Join(dir, "two.zip")
		writeZip(t, p, map[string][]byte{"a.csv": data, "b.csv": data})
		_, _, err := bulk.Open(p)
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "a.csv") && strings.Contains(err.Error(), "b.csv"))
	})

	t.Run("NoCSV", func(t *testing.T) {
		is := is.New(t)
		p := filepath.Join(dir, "none.zip")
		writeZip(t, p, map[string][]byte{"readme.txt": []byte("hi")})
		_, _, err := bulk.Open(p)
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "readme.txt"))
	})

	t.Run("Missing", func(t *testing.T) {
		_, _, err := bulk.Open(filepath.Join(dir, "nope.zip"))
		is.New(t).True(errors.Is(err, os.ErrNotExist))
	})
}

func writeZip(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustReader(tb testing.TB, r io.Reader) *bulk.Reader {
	tb.Helper()
	br, err := bulk.NewReader(r)
	if err != nil {
		tb.Fatalf("NewReader: %v", err)
	}
	return br
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(js)
}

func TestNewReaderNotBulkFile(t *testing.T) {
	tests := []struct {
		name, input, mention string
	}{
		{"Empty", "", "empty"},
		{"OtherCSV", "a,b,c\r\n\"1\",\"2\",\"3\"\r\n", "CompanyNumber"},
		{"MissingStatus", strings.Replace(bulk.HeaderLine, "CompanyStatus,", "Status,", 1) + "\r\n", "CompanyStatus"},
		{"BadQuote", "\"Company\"Name,x\r\n", "not a Free Company Data Product"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			r, err := bulk.NewReader(strings.NewReader(tt.input))
			is.True(r == nil)
			is.True(errors.Is(err, bulk.ErrNotBulkFile))
			is.True(strings.Contains(err.Error(), tt.mention))
		})
	}

	t.Run("TrimmedAndReordered", func(t *testing.T) {
		is := is.New(t)
		// A byte order mark, spaces everywhere and the columns reversed still
		// read by name.
		names := strings.Split(bulk.HeaderLine, ",")
		for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
			names[i], names[j] = names[j], names[i]
		}
		row := make([]string, len(names))
		for i, n := range names {
			switch strings.TrimSpace(n) {
			case "CompanyNumber":
				row[i] = `"SC000001"`
			case "CompanyStatus":
				row[i] = `"Active"`
			default:
				row[i] = `""`
			}
			names[i] = "  " + n + " "
		}
		in := "\ufeff" + strings.Join(names, ",") + "\n" + strings.Join(row, ",") + "\n"
		r, err := bulk.NewReader(strings.NewReader(in))
		is.NoErr(err)
		is.True(!r.HasStandardLayout())
		rec, err := r.Next()
		is.NoErr(err)
		is.Equal(rec.CompanyNumber, "SC000001")
		is.Equal(rec.Jurisdiction, "scotland")
		is.Equal(rec.Line, int64(2))
	})
}

func TestResume(t *testing.T) {
	data := readQuirks(t)
	r := mustReader(t, bytes.NewReader(data))
	is.New(t).True(r.HasStandardLayout())
	// Positions after the header and after every row.
	type pos struct{ offset, line int64 }
	positions := []pos{{r.Offset(), r.Line()}}
	var all []result
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *bulk.RowError
		if errors.As(err, &re) {
			all = append(all, result{Error: re})
		} else if err != nil {
			t.Fatal(err)
		} else {
			all = append(all, result{Record: &rec})
		}
		positions = append(positions, pos{r.Offset(), r.Line()})
	}
	for k, p := range positions {
		rr := bytes.NewReader(data)
		if _, err := rr.Seek(p.offset, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, bulk.NewReaderAt(rr, p.offset, p.line))
		if len(got) != len(all[k:]) || len(got) > 0 && mustJSON(t, got) != mustJSON(t, all[k:]) {
			t.Errorf("resume after row %d (offset %d, line %d):\ngot  %s\nwant %s", k, p.offset, p.line, mustJSON(t, got), mustJSON(t, all[k:]))
		}
	}
}

func TestReaderKeepsGoing(t *testing.T) {
	is := is.New(t)
	// A bare quote is a parse error on its row only; too many fields too.
	good := sampleRows(t, 3)
	lines := strings.SplitAfter(good, "\r\n") // header, 3 rows, ""
	in := lines[0] + lines[1] + "\"x\"y\",\"z\"\r\n" + lines[2] + strings.TrimSuffix(lines[3], "\r\n") + ",\"extra\"\r\n"
	r := mustReader(t, strings.NewReader(in))
	got := readAll(t, r)
	is.Equal(len(got), 4)
	is.True(got[0].Record != nil)
	is.Equal(got[1].Error.Line, int64(3))
	is.True(strings.Contains(got[1].Error.Reason, "at line 3, column"))
	is.Equal(got[1].Error.Raw, `"x"y","z"`)
	is.True(got[2].Record != nil && got[2].Record.Line == 4)
	is.Equal(got[3].Error.Line, int64(5))
	is.Equal(got[3].Error.Reason, "got 56 fields, want 55")
}

func TestWriteSample(t *testing.T) {
	is := is.New(t)
	text := sampleRows(t, 2000)
	is.Equal(text, sampleRows(t, 2000)) // deterministic
	r := mustReader(t, strings.NewReader(text))
	got := readAll(t, r)
	is.Equal(len(got), 2000)
	strike := 0
	for i, res := range got {
		is.True(res.Error == nil)
		is.Equal(res.Record.Unknown, []string(nil))
		is.Equal(res.Record.Line, int64(i+2))
		if res.Record.CompanyStatusDetail == "active-proposal-to-strike-off" {
			strike++
		}
	}
	is.True(strike > 100 && strike < 180) // about 7%

	// In CompanyName order, as the real file, so the numbers are in no
	// order; each is distinct.
	numbers := map[string]bool{}
	descents := 0
	for i, res := range got {
		numbers[res.Record.CompanyNumber] = true
		if i == 0 {
			continue
		}
		is.True(got[i-1].Record.CompanyName <= res.Record.CompanyName)
		if got[i-1].Record.CompanyNumber > res.Record.CompanyNumber {
			descents++
		}
	}
	is.Equal(len(numbers), 2000)
	is.True(descents > 800 && descents < 1200) // about half, as in a random order

	// Resuming deep in the file, past the reader's buffer compactions.
	// Sample rows are one line each, so Line is also the lines consumed.
	rec := got[1499].Record
	rest := readAll(t, bulk.NewReaderAt(strings.NewReader(text[rec.Offset:]), rec.Offset, rec.Line))
	is.Equal(mustJSON(t, rest), mustJSON(t, got[1500:]))
	is.Equal(got[1999].Record.Offset, int64(len(text)))
	perRow := len(text) / 2000
	is.True(perRow > 350 && perRow < 600) // about the real file's 470 bytes a row
}

func sampleRows(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	if err := bulk.WriteSample(&b, n, 1); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

func FuzzReader(f *testing.F) {
	data, err := os.ReadFile("testdata/quirks.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(sampleRows(f, 5)))
	f.Add([]byte(bulk.HeaderLine + "\n\"a\"b\"\n"))
	f.Add([]byte(bulk.HeaderLine + "\r\n\"unterminated"))
	f.Add([]byte(""))
	f.Add([]byte(bulk.HeaderLine + "\n\"CAF\xc9\",\"x\"\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, enc := range []bulk.Encoding{bulk.UTF8, bulk.Latin1} {
			fuzzRead(t, in, enc)
		}
	})
}

// fuzzRead reads in to its end, checking offsets, lines and that every
// string read is valid UTF-8.
func fuzzRead(t *testing.T, in []byte, enc bulk.Encoding) {
	r, err := bulk.NewReader(bytes.NewReader(in))
	if err != nil {
		return
	}
	r.SetEncoding(enc)
	last, lastLine := r.Offset(), r.Line()
	for {
		rec, err := r.Next()
		if err == io.EOF || errors.Is(err, bulk.ErrEncoding) {
			break
		}
		var re *bulk.RowError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("Next: %v", err)
		}
		if re != nil && !utf8.ValidString(re.Raw+re.Reason) {
			t.Fatalf("%s: row error text is not UTF-8: %q", enc, re.Raw)
		}
		if js := mustJSON(t, rec); strings.Contains(js, `\ufffd`) || !utf8.ValidString(rec.CompanyName+rec.AddressLine1+rec.AddressLine2+rec.Locality+rec.Region+rec.PostalCode+rec.Country+rec.CompanyStatus+rec.CompanyType) {
			t.Fatalf("%s: record is not valid UTF-8: %s", enc, js)
		}
		if r.Offset() <= last || r.Offset() > int64(len(in)) {
			t.Fatalf("offset went from %d to %d of %d", last, r.Offset(), len(in))
		}
		line := rec.Line
		if re != nil {
			line = re.Line
		}
		if line <= lastLine {
			t.Fatalf("row starts on line %d, after line %d", line, lastLine)
		}
		if err == nil && len(rec.CompanyNumber) != 8 {
			t.Fatalf("company number %q", rec.CompanyNumber)
		}
		last, lastLine = r.Offset(), r.Line()
	}
}

func BenchmarkReader(b *testing.B) {
	const rows = 100_000
	var buf bytes.Buffer
	if err := bulk.WriteSample(&buf, rows, 42); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		r, err := bulk.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	b.ReportMetric(float64(rows*n)/time.Since(start).Seconds(), "rows/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows*n), "ns/row")
}
