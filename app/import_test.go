package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

	t.Run("MaxErrorsExit1", func(t *testing.T) {
		is := is.New(t)
		code, stdout, stderr := runImport(t, t.TempDir(), "import", "--as-of", "2026-11-01", "--max-errors", "1", quirks)
		is.Equal(code, ExitFailure)
		is.True(strings.Contains(stdout, "bad"))
		is.True(strings.Contains(stderr, "too many bad rows"))
	})
}
