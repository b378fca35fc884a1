package importer_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chwatch/chwatch/bulk"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/importer"
)

// BenchmarkImport imports a sample file (in CompanyName order, as the real
// file) into a fresh database: 20,000 rows, or CHWATCHTEST_BENCH_ROWS (the
// page cache misses that the sort avoids show from a few hundred thousand).
func BenchmarkImport(b *testing.B) {
	rows := 20000
	if n, err := strconv.Atoi(os.Getenv("CHWATCHTEST_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	dir := b.TempDir()
	name := filepath.Join(dir, "BasicCompanyDataAsOneFile-2026-11-01.csv")
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := bulk.WriteSample(f, rows, 1); err != nil {
		b.Fatal(err)
	}
	f.Close()
	asOf := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		d := openDB(b, filepath.Join(dir, "b"+string(rune('a'+i%26))+time.Now().Format("150405.000000")+".db"))
		b.StartTimer()
		if _, err := importer.Run(context.Background(), d, []string{name}, importer.Options{AsOf: asOf, MaxErrors: 1000}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

func openDB(tb testing.TB, path string) *db.DB {
	tb.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	if _, err := d.MigrateUp(context.Background(), time.Now()); err != nil {
		tb.Fatal(err)
	}
	return d
}
