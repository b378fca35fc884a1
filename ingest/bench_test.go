package ingest_test

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/sim"
	"github.com/chwatch/chwatch/stream"
)

// collect reads n items from a simulator over loopback, as the client does.
func collect(b *testing.B, n, companies int) []stream.Item {
	b.Helper()
	s, err := sim.New(sim.Config{Seed: 7, Companies: companies, Events: n, Backlog: n, Heartbeat: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c, err := stream.New(stream.Config{URL: srv.URL, Key: "k"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan stream.Item, 1024)
	go c.Run(ctx, stream.Start{From: sim.DefaultFirstTimepoint}, out)
	items := make([]stream.Item, 0, n)
	for len(items) < n {
		it := <-out
		if it.Event != nil {
			items = append(items, it)
		}
	}
	return items
}

// BenchmarkApply measures the processor's apply rate (events/s) against a
// raw SQLite baseline that inserts the same rows (event row, payload,
// company upsert) with prepared statements and no rule, in the same run.
func BenchmarkApply(b *testing.B) {
	n, companies := envInt("CHWATCHTEST_BENCH_EVENTS", 50000), envInt("CHWATCHTEST_BENCH_COMPANIES", 20000)
	items := collect(b, n, companies)
	var ours, raw time.Duration
	for range b.N {
		d := dbtest.Open(b)
		p := ingest.New(d, ingest.Config{BatchMaxEvents: 5000, BatchMaxWait: 20 * time.Millisecond,
			Applier: &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}, StreamURL: "bench"})
		in := make(chan stream.Item, len(items))
		for _, it := range items {
			in <- it
		}
		close(in)
		start := time.Now()
		if err := p.Run(context.Background(), in); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

		d2 := dbtest.Open(b)
		rows := rawRows(items)
		start = time.Now()
		rawInsert(b, d2, items, rows)
		raw += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/ours.Seconds(), "events/s")
	b.ReportMetric(float64(n*b.N)/raw.Seconds(), "raw-events/s")
	b.ReportMetric(raw.Seconds()/ours.Seconds(), "ratio-vs-raw")
}

// rawRows are the company rows of the baseline, prepared outside its timer.
func rawRows(items []stream.Item) [][]any {
	out := make([][]any, len(items))
	for i, it := range items {
		e := it.Event
		v, err := company.ParseProfile(e.Data, company.Stream, e.PublishedAt)
		if err != nil { // deleted events carry no profile
			v = company.Version{Number: e.ResourceID, Status: "active"}
		}
		pub := db.FormatTime(e.PublishedAt)
		out[i] = []any{v.Number, v.Name, v.Status, v.Detail, v.Type, v.Jurisdiction, v.DateOfCreation, v.DateOfCessation,
			strings.Join(v.SICCodes, ","), v.AddressLine1, v.AddressLine2, v.Locality, v.Region, v.PostalCode, v.Country,
			v.Etag, "stream", pub, e.Timepoint, nil, 0, nil, nil, nil, pub, pub, i}
	}
	return out
}

// rawInsert is the baseline: the same rows (event, payload, the company
// with every column), one prepared single-row INSERT each, no rule.
func rawInsert(b testing.TB, d *db.DB, items []stream.Item, rows [][]any) {
	ctx := context.Background()
	for i := 0; i < len(items); i += 5000 {
		tx, err := d.W.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		ev, _ := tx.Prepare("INSERT OR IGNORE INTO stream_events (stream, timepoint, resource_id, event_type, published_at, received_at, outcome) VALUES ('companies', ?, ?, ?, ?, ?, 'applied')")
		pl, _ := tx.Prepare("INSERT OR IGNORE INTO event_payloads (stream, timepoint, payload) VALUES ('companies', ?, ?)")
		co, _ := tx.Prepare(`INSERT OR REPLACE INTO companies (company_number, company_name, company_status, company_status_detail, company_type,
			jurisdiction, date_of_creation, date_of_cessation, sic_codes, address_line_1, address_line_2, locality, region, postal_code, country,
			etag, source, source_time, source_timepoint, strike_off_since, status_check_pending, missing_from_bulk, bulk_as_of, deleted_at,
			first_seen_at, updated_at, change_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		for j := i; j < min(i+5000, len(items)); j++ {
			e := items[j].Event
			pub := db.FormatTime(e.PublishedAt)
			mustExec(b, ev, e.Timepoint, e.ResourceID, e.Type, pub, pub)
			mustExec(b, pl, e.Timepoint, string(e.Raw))
			mustExec(b, co, rows[j]...)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func mustExec(b testing.TB, s *sql.Stmt, args ...any) {
	if _, err := s.Exec(args...); err != nil {
		b.Fatal(err)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
