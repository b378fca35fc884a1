package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chwatch/chwatch/bulk"
	"github.com/chwatch/chwatch/db"
	"github.com/matryer/is"
)

// runImport runs chwatch with args against a database in dir and returns
// the exit code, stdout and stderr.
func runImport(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, environ: []string{"CHWATCH_LOG_LEVEL=warn"}}
	code := e.run(context.Background(), append([]string{"chwatch", "--db", filepath.Join(dir, "c.db")}, args...))
	return code, out.String(), errb.String()
}

func TestImportCommand(t *testing.T) {
	quirks, err := filepath.Abs("../bulk/testdata/quirks.csv")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("NoDateIsUsage", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		code, _, stderr := runImport(t, dir, "import", quirks)
		is.Equal(code, ExitUsage)
		is.True(strings.Contains(stderr, "--as-of"))
		_, err := os.Stat(filepath.Join(dir, "c.db"))
		is.True(os.IsNotExist(err)) // nothing written
	})

	t.Run("PartsOfDifferentDates", func(t *testing.T) {
		is := is.New(t)
		code, _, _ := runImport(t, t.TempDir(), "import", "BasicCompanyData-2026-11-01-part1_2.csv", "BasicCompanyData-2026-10-01-part2_2.csv")
		is.Equal(code, ExitUsage)
	})

	t.Run("BadAsOf", func(t *testing.T) {
		is := is.New(t)
		code, _, _ := runImport(t, t.TempDir(), "import", "--as-of", "01/11/2026", quirks)
		is.Equal(code, ExitUsage)
	})

	t.Run("NotABulkFileWritesNothing", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		name := filepath.Join(dir, "BasicCompanyDataAsOneFile-2026-11-01.csv")
		os.WriteFile(name, []byte("name,number\nx,1\n"), 0o644)
		code, _, stderr := runImport(t, dir, "import", name)
		is.Equal(code, ExitFailure)
		is.True(strings.Contains(stderr, "not a Free Company Data Product file"))
		_, err := os.Stat(filepath.Join(dir, "c.db"))
		is.True(os.IsNotExist(err))
	})

	t.Run("ImportThenReimport", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		errs := filepath.Join(dir, "errors.csv")
		code, stdout, stderr := runImport(t, dir, "import", "--as-of", "2026-11-01", "--errors", errs, "--no-progress", quirks)
		is.Equal(code, ExitOK)
		is.True(strings.HasPrefix(stdout, "imported "+quirks+" (as of 2026-11-01): 15 rows read, 15 applied, 0 unchanged, 0 stale (newer data kept), 3 bad, 2 entered strike-off (2 first seen), 0 left, 0 marked missing; unknown texts: "))
		is.True(strings.Contains(stdout, "; bad rows: line "))
		b, err := os.ReadFile(errs)
		is.NoErr(err)
		is.Equal(strings.Count(string(b), "\n"), 4) // header + 3 bad rows
		_ = stderr

		code, stdout, _ = runImport(t, dir, "import", "--as-of", "2026-11-01", quirks)
		is.Equal(code, ExitOK)
		is.True(strings.Contains(stdout, "already imported completely"))
	})

	// An import stopped by its bad rows says so, and never claims to have
	// imported the file.
	t.Run("MaxErrorsExit1", func(t *testing.T) {
		is := is.New(t)
		code, stdout, stderr := runImport(t, t.TempDir(), "import", "--as-of", "2026-11-01", "--max-errors", "1", quirks)
		is.Equal(code, ExitFailure)
		is.True(!strings.Contains(stdout+stderr, "imported "))
		is.True(strings.Contains(stderr, "too many bad rows"))
		is.True(strings.Contains(stderr, "2 bad rows, more than --max-errors 1"))
		is.True(strings.Contains(stderr, "bad rows: line ")) // which ones
	})
}

// writeSample writes a bulk file of rows sample rows (the same first rows
// whatever rows is), with edit applied to its lines, and returns its path.
func writeSample(t *testing.T, dir, name string, rows int, edit func(lines []string)) string {
	t.Helper()
	var b strings.Builder
	if err := bulk.WriteSample(&b, rows, 3); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(b.String(), "\r\n")
	if edit != nil {
		edit(lines)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// companyNames returns every company name in the database in dir.
func companyNames(t *testing.T, dir string) []string {
	t.Helper()
	d, err := db.OpenReader(context.Background(), filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.R.Query("SELECT company_name FROM companies ORDER BY company_number")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// A bulk file that is not UTF-8 stops at the first line that is not, found
// while the file is read, before any row is applied: nothing invalid is
// stored, nor anything else; --encoding latin1 converts it, and the import
// then applies every row.
func TestImportEncoding(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	file := writeSample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", 5, func(lines []string) {
		lines[3] = "\"CAF\xc9 " + lines[3][1:] // physical line 4
	})
	code, stdout, stderr := runImport(t, dir, "import", "--no-progress", file)
	if code != ExitFailure {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, ExitFailure, stdout, stderr)
	}
	is.True(!strings.Contains(stdout, "imported "))
	is.True(strings.Contains(stderr, "line 4, column 5: invalid UTF-8"))
	is.True(strings.Contains(stderr, "--encoding latin1"))
	is.True(strings.Contains(stderr, "no row of the file was applied"))
	is.Equal(len(companyNames(t, dir)), 0)

	code, _, stderr = runImport(t, dir, "import", "--no-progress", "--encoding", "ebcdic", file)
	is.Equal(code, ExitUsage)
	is.True(strings.Contains(stderr, "latin1"))

	code, stdout, stderr = runImport(t, dir, "import", "--no-progress", "--encoding", "latin1", file)
	is.Equal(code, ExitOK)
	is.True(strings.Contains(stdout, "imported "))
	is.True(!strings.Contains(stdout, "resumed ")) // nothing was applied before
	names := companyNames(t, dir)
	is.Equal(len(names), 5)
	cafe := 0
	for _, n := range names {
		is.True(utf8.ValidString(n))
		if strings.HasPrefix(n, "CAFÉ ") {
			cafe++
		}
	}
	is.Equal(cafe, 1)
	_ = stderr
}

// A complete import with no rows, or fewer than half the rows of the last
// complete one, would mark most of the register missing: it is refused
// before anything is marked, unless --force.
func TestImportShrunk(t *testing.T) {
	headerOnly := func(lines []string) {
		for i := 1; i < len(lines); i++ {
			lines[i] = ""
		}
	}
	tests := []struct {
		name     string
		previous int // rows of an earlier complete import, as of 2026-10-01 (0: none)
		rows     int // rows of the new one, as of 2026-11-01
		edit     func([]string)
		refused  string // what the refusal says ("": accepted)
	}{
		{name: "HeaderOnlyFirstImport", rows: 1, edit: headerOnly, refused: "holds no rows"},
		{name: "HeaderOnly", previous: 40, rows: 1, edit: headerOnly, refused: "holds no rows"},
		{name: "LessThanHalf", previous: 40, rows: 19, refused: "19 rows, fewer than half the 40 rows of the complete import as of 2026-10-01"},
		{name: "Half", previous: 40, rows: 20},
		{name: "Grown", previous: 40, rows: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			if tt.previous > 0 {
				prev := writeSample(t, dir, "BasicCompanyDataAsOneFile-2026-10-01.csv", tt.previous, nil)
				code, _, stderr := runImport(t, dir, "import", "--no-progress", prev)
				is.Equal(code, ExitOK)
				_ = stderr
			}
			file := writeSample(t, dir, "BasicCompanyDataAsOneFile-2026-11-01.csv", tt.rows, tt.edit)
			code, stdout, stderr := runImport(t, dir, "import", "--no-progress", file)
			missing := func() int {
				d, err := db.OpenReader(context.Background(), filepath.Join(dir, "c.db"))
				is.NoErr(err)
				defer d.Close()
				var n int
				is.NoErr(d.R.QueryRow("SELECT count(*) FROM companies WHERE missing_from_bulk IS NOT NULL").Scan(&n))
				var jobs int
				is.NoErr(d.R.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'status_check'").Scan(&jobs))
				if n == 0 {
					is.Equal(jobs, 0) // no status checks without marks
				}
				return n
			}
			if tt.refused == "" {
				is.Equal(code, ExitOK)
				is.True(strings.Contains(stdout, "imported "))
				return
			}
			if code != ExitFailure {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, ExitFailure, stdout, stderr)
			}
			is.True(strings.Contains(stderr, tt.refused))
			is.True(strings.Contains(stderr, "--force"))
			is.True(!strings.Contains(stdout, "imported "))
			is.Equal(missing(), 0) // nothing marked missing

			// Refused again while there is something to mark: the file
			// is in, the marking is not.
			if tt.previous > 0 {
				code, _, _ = runImport(t, dir, "import", "--no-progress", file)
				is.Equal(code, ExitFailure)
				is.Equal(missing(), 0)
			}

			code, stdout, _ = runImport(t, dir, "import", "--no-progress", "--force", file)
			is.Equal(code, ExitOK)
			if tt.previous > 0 {
				n := missing()
				is.True(n > 0) // now marked
				is.True(strings.Contains(stdout, fmt.Sprintf("%d marked missing", n)))
			}
		})
	}
}
