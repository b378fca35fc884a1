package housekeep_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/export"
	"github.com/chwatch/chwatch/housekeep"
	"github.com/matryer/is"
)

// writeCompanies inserts n companies (a third in strike-off) in one
// transaction, each with a change_seq from the sequence, as chwatch's
// writers do.
func writeCompanies(tb testing.TB, d *db.DB, n int) {
	tb.Helper()
	err := d.WriteTx(context.Background(), func(tx db.Tx) error {
		seq, err := db.BeginSeq(context.Background(), tx)
		if err != nil {
			return err
		}
		for i := range n {
			var detail any
			if i%3 == 0 {
				detail = "active-proposal-to-strike-off"
			}
			_, err := tx.Exec(`INSERT INTO companies (company_number, company_name, company_status, company_status_detail,
				source, source_time, strike_off_since, first_seen_at, updated_at, change_seq)
				VALUES (?, 'X', 'active', ?, 'stream', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', ?)`,
				fmt.Sprintf("%08d", i), detail, seq.Next())
			if err == nil {
				_, err = tx.Exec(company.LogInserted, fmt.Sprintf("%08d", i))
			}
			if err != nil {
				return err
			}
		}
		seq.Count(company.CounterCompanies, int64(n))
		return seq.Save(context.Background(), tx)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// rewrite writes company number i again (a new name, a new change_seq), in
// a transaction of its own.
func rewrite(ctx context.Context, d *db.DB, i, round int) error {
	return d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.Exec("UPDATE companies SET company_name = ?, change_seq = ? WHERE company_number = ?",
			fmt.Sprintf("ROUND %d", round), seq.Next(), fmt.Sprintf("%08d", i))
		if err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	})
}

func count(tb testing.TB, d *db.DB, q string) (n int64) {
	tb.Helper()
	if err := d.R.QueryRow(q).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// lost counts the companies whose current change_seq has no log entry:
// export --state would never show them. It must always be 0.
const lost = `SELECT count(*) FROM companies c WHERE NOT EXISTS (SELECT 1 FROM company_changes l
	WHERE l.change_seq = c.change_seq AND l.company_number = c.company_number)`

// states exports companies and strike-off with --state from a few marks.
func states(tb testing.TB, d *db.DB, marks []int64) string {
	tb.Helper()
	var all bytes.Buffer
	for _, k := range []export.Kind{export.Companies, export.StrikeOff} {
		for _, m := range marks {
			fmt.Fprintf(&all, "== %s after %d\n", k, m)
			if _, err := export.Write(context.Background(), d.R, &all, k, export.Options{Incremental: true, After: m}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return all.String()
}

func openDB(tb testing.TB, path string) *db.DB {
	tb.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// Companies written several times leave superseded entries in the change
// log; passes of the housekeeper walk the log in batches, resuming where
// the last stopped, and leave one entry per company, with --state exports
// from every mark as they were.
func TestPruneChanges(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "chwatch.db"))
	_, err := d.MigrateUp(ctx, time.Now())
	is.NoErr(err)
	const n = 300
	writeCompanies(t, d, n)
	for round := 1; round <= 3; round++ {
		for i := 0; i < n; i += round {
			is.NoErr(rewrite(ctx, d, i, round))
		}
	}
	log := count(t, d, "SELECT count(*) FROM company_changes")
	is.Equal(log, int64(n+300+150+100))
	marks := []int64{0, 1, n, n + 200, n + 420, count(t, d, "SELECT value FROM counters WHERE name = 'change_seq'")}
	before := states(t, d, marks)

	// 2000 passes a day (Every 43.2 s) over 300 companies: the floor is
	// one batch of 40 entries a pass (nothing is appended between passes).
	// The last superseded entry is round 2's of company 294, the 749th
	// entry: 19 passes, each going on where the last stopped.
	h := housekeep.New(d, housekeep.Config{BatchRows: 40, Every: 43200 * time.Millisecond})
	var deleted int64
	passes := 0
	for ; count(t, d, "SELECT count(*) FROM company_changes") > n; passes++ {
		is.True(passes < 30)
		got, err := h.Retain(ctx)
		is.NoErr(err)
		deleted += got
		is.Equal(count(t, d, lost), int64(0))
		is.Equal(states(t, d, marks), before)
	}
	is.Equal(passes, 19)
	is.Equal(deleted, log-n)
	is.Equal(count(t, d, "SELECT count(DISTINCT company_number) FROM company_changes"), int64(n))
	// The walk went on from the log's end to its start.
	pos := count(t, d, "SELECT value FROM counters WHERE name = 'company_changes.pruned_to'")
	is.True(pos > 0 && pos < marks[len(marks)-1])
}

// The walk runs beside a writer in another connection that rewrites
// companies, a transaction every millisecond: no company ever loses its
// current entry, and once the writer stops, the next walk leaves one entry
// per company.
func TestPruneChangesBesideAWriter(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chwatch.db")
	d := openDB(t, path)
	_, err := d.MigrateUp(ctx, time.Now())
	is.NoErr(err)
	const n = 200
	writeCompanies(t, d, n)
	other := openDB(t, path) // as an import in another process would

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	var werr error
	wg.Go(func() {
		for round := 1; ; round++ {
			select {
			case <-stop:
				return
			default:
			}
			if werr = rewrite(ctx, other, (round*7)%n, round); werr != nil {
				return
			}
			writes++
			time.Sleep(time.Millisecond) // a batch window: back to back, SQLite's busy wait would starve the walk
		}
	})
	h := housekeep.New(d, housekeep.Config{BatchRows: 25})
	var deleted int64
	for deleted < 500 {
		got, err := h.PruneChanges(ctx)
		is.NoErr(err)
		deleted += got
		is.Equal(count(t, d, lost), int64(0))
	}
	close(stop)
	wg.Wait()
	is.NoErr(werr)
	t.Logf("%d writes beside the walk, %d entries deleted meanwhile", writes, deleted)
	for count(t, d, "SELECT count(*) FROM company_changes") > n {
		_, err := h.PruneChanges(ctx)
		is.NoErr(err)
	}
	is.Equal(count(t, d, lost), int64(0))
	is.Equal(count(t, d, "SELECT count(*) FROM company_changes"), int64(n))
}
