package importer_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/chwatch/chwatch/bulk"
)

// TestWriteSampleFile writes a sample bulk file for scripts/bench-import:
// CHWATCHTEST_SAMPLE_OUT=FILE CHWATCHTEST_SAMPLE_ROWS=N go test ./importer -run TestWriteSampleFile
func TestWriteSampleFile(t *testing.T) {
	out := os.Getenv("CHWATCHTEST_SAMPLE_OUT")
	if out == "" {
		t.Skip("set CHWATCHTEST_SAMPLE_OUT (and CHWATCHTEST_SAMPLE_ROWS) to write a sample bulk file")
	}
	rows, err := strconv.Atoi(os.Getenv("CHWATCHTEST_SAMPLE_ROWS"))
	if err != nil || rows < 1 {
		rows = 1_000_000
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := bulk.WriteSample(f, rows, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
