package export_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"io"
	"os"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/export"
)

// fill loads testdata/fill.sql (the same rows scripts/bench-export uses)
// with n companies.
func fill(tb testing.TB, d *db.DB, n int) {
	tb.Helper()
	text, err := os.ReadFile("testdata/fill.sql")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := d.W.Exec(string(text), sql.Named("n", n)); err != nil {
		tb.Fatalf("fill: %v", err)
	}
}

// baseline is the least any export could do: the same query read through
// database/sql and written with encoding/csv, nothing else.
func baseline(ctx context.Context, r *sql.DB, w io.Writer, cols []string) error {
	rows, err := r.QueryContext(ctx, companiesSQL)
	if err != nil {
		return err
	}
	defer rows.Close()
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	cw.Write(cols)
	vals := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	rec := make([]string, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		for i := range vals {
			rec[i] = vals[i].String
		}
		cw.Write(rec)
	}
	cw.Flush()
	if err := rows.Err(); err != nil {
		return err
	}
	return bw.Flush()
}

const companiesSQL = `SELECT company_number, company_name, company_status, company_status_detail,
	company_type, jurisdiction, date_of_creation, date_of_cessation, sic_codes, address_line_1,
	address_line_2, locality, region, postal_code, country, strike_off_since, missing_from_bulk,
	deleted_at, source, source_time, updated_at, change_seq FROM companies ORDER BY company_number`

// BenchmarkExportCompanies exports 100,000 companies and reports the time
// against a plain database/sql + encoding/csv loop over the same query
// measured in the same run ("x-baseline": the overhead of our code).
func BenchmarkExportCompanies(b *testing.B) {
	d := dbtest.Open(b)
	fill(b, d, 100_000)
	ctx := context.Background()
	cols := export.Columns(export.Companies)
	// Warm both up once, so neither pays for a cold page cache.
	if _, err := export.Write(ctx, d.R, io.Discard, export.Companies, export.Options{}); err != nil {
		b.Fatal(err)
	}
	if err := baseline(ctx, d.R, io.Discard, cols); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		res, err := export.Write(ctx, d.R, io.Discard, export.Companies, export.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows != 100_000 {
			b.Fatalf("exported %d rows, want 100000", res.Rows)
		}
	}
	ours := time.Since(start)
	b.StopTimer()
	start = time.Now()
	for i := 0; i < b.N; i++ {
		if err := baseline(ctx, d.R, io.Discard, cols); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Since(start)
	b.ReportMetric(float64(ours)/float64(base), "x-baseline")
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N)/100_000, "ns/row")
}
