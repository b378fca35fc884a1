package status_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/status"
)

const benchRows = 200_000

// bigDB is a migrated database with benchRows companies (a tenth in
// strike-off), benchRows stream_events and a status_changes row per
// strike-off company, filled in one transaction.
func bigDB(b *testing.B) *db.DB {
	b.Helper()
	ctx := context.Background()
	d := dbtest.Open(b)
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		co, err := tx.PrepareContext(ctx, `INSERT INTO companies (company_number, company_name, company_status, company_status_detail,
			source, source_time, source_timepoint, strike_off_since, first_seen_at, updated_at, change_seq)
			VALUES (?, ?, 'active', ?, 'stream', ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer co.Close()
		ev, err := tx.PrepareContext(ctx, `INSERT INTO stream_events (stream, timepoint, resource_id, event_type, published_at, received_at, outcome)
			VALUES ('companies', ?, ?, 'changed', ?, ?, 'applied')`)
		if err != nil {
			return err
		}
		defer ev.Close()
		sc, err := tx.PrepareContext(ctx, `INSERT INTO status_changes (company_number, change, new_status, new_detail, source, first_seen, timepoint, source_time, detected_at, change_seq)
			VALUES (?, 'entered_strike_off', 'active', 'active-proposal-to-strike-off', 'stream', 0, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer sc.Close()
		start := now.Add(-benchRows * time.Second)
		for i := range benchRows {
			num := fmt.Sprintf("%08d", i)
			at := db.FormatTime(start.Add(time.Duration(i) * time.Second))
			var detail, since any
			if i%10 == 0 {
				detail, since = "active-proposal-to-strike-off", at
			}
			if _, err := co.ExecContext(ctx, num, "COMPANY "+num+" LIMITED", detail, at, i+1, since, at, at, i+1); err != nil {
				return err
			}
			if _, err := ev.ExecContext(ctx, i+1, num, at, at); err != nil {
				return err
			}
			if i%10 == 0 {
				if _, err := sc.ExecContext(ctx, num, i+1, at, at, benchRows+i); err != nil {
					return err
				}
			}
		}
		for k, v := range map[string]int64{"companies": benchRows, "strike_off": benchRows / 10, "events_applied": benchRows} {
			if err := db.AddCounter(ctx, tx, k, v); err != nil {
				return err
			}
		}
		return db.SetState(ctx, tx, db.FormatTime(now), running().KV())
	})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkGather measures status on a large database against the cheapest
// whole-table query there is, SELECT count(*) FROM companies, on the same
// database in the same run: gather/count well below 1 means status reads
// what it needs and never scans a big table.
func BenchmarkGather(b *testing.B) {
	ctx := context.Background()
	d := bigDB(b)

	// The baseline: timed by hand, so both numbers come from one run.
	var n int64
	runs := 0
	begin := time.Now()
	for runs < 5 || (time.Since(begin) < 300*time.Millisecond && runs < 1000) {
		if err := d.R.QueryRowContext(ctx, "SELECT count(*) FROM companies").Scan(&n); err != nil {
			b.Fatal(err)
		}
		runs++
	}
	countNs := float64(time.Since(begin).Nanoseconds()) / float64(runs)
	if n != benchRows {
		b.Fatalf("count(*) = %d, want %d", n, benchRows)
	}

	var r *status.Report
	for b.Loop() {
		var err error
		r, err = status.Gather(ctx, d, th, now)
		if err != nil {
			b.Fatal(err)
		}
	}
	if r.Companies != benchRows || r.Verdict != status.OK {
		b.Fatalf("report: %d companies, verdict %s", r.Companies, r.Verdict)
	}
	gatherNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(countNs, "count-ns/op")
	b.ReportMetric(gatherNs/countNs, "gather/count")
}
