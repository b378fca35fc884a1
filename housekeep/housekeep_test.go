package housekeep_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/housekeep"
	"github.com/matryer/is"
)

func TestRetention(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "chwatch.db"))
	is.NoErr(err)
	defer d.Close()
	_, err = d.MigrateUp(ctx, now)
	is.NoErr(err)
	// 3000 events, one a minute for the last 50 hours, each with a 2 KB payload.
	payload := strings.Repeat("x", 2048)
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		for i := range 3000 {
			at := db.FormatTime(now.Add(-time.Duration(3000-i) * time.Minute))
			if _, err := tx.Exec("INSERT INTO stream_events (stream, timepoint, received_at, outcome) VALUES ('companies', ?, ?, 'applied')", i+1, at); err != nil {
				return err
			}
			if _, err := tx.Exec("INSERT INTO event_payloads (stream, timepoint, payload) VALUES ('companies', ?, ?)", i+1, payload); err != nil {
				return err
			}
			state := []string{"done", "queued", "dead"}[i%3]
			if _, err := tx.Exec("INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at) VALUES ('officers', 20, ?, ?, ?, ?, ?)",
				fmt.Sprintf("%08d", i), state, at, at, at); err != nil {
				return err
			}
		}
		// Day counters for the last five days, and a running total.
		for i := range 5 {
			day := db.Day(now.Add(-time.Duration(i) * 24 * time.Hour))
			if err := db.AddCounter(ctx, tx, db.DayCounter(day, "events_applied"), int64(i+1)); err != nil {
				return err
			}
		}
		return db.AddCounter(ctx, tx, "events_applied", 3000)
	}))
	h := housekeep.New(d, housekeep.Config{EventPayload: 24 * time.Hour, Events: 48 * time.Hour, JobsDone: 10 * time.Hour,
		BatchRows: 100, Now: func() time.Time { return now }})
	n, err := h.Retain(ctx)
	is.NoErr(err)
	is.True(n > 0)
	count := func(q string) (c int) {
		is.NoErr(d.R.QueryRow(q).Scan(&c))
		return c
	}
	is.Equal(count("SELECT count(*) FROM stream_events"), 48*60)  // older than 48h gone
	is.Equal(count("SELECT count(*) FROM event_payloads"), 24*60) // payloads older than 24h gone, rows kept
	is.Equal(count("SELECT count(*) FROM event_payloads p LEFT JOIN stream_events e USING (stream, timepoint) WHERE e.timepoint IS NULL"), 0)
	is.Equal(count("SELECT count(*) FROM jobs WHERE state = 'done'"), 10*60/3) // finished jobs past 10h gone
	is.Equal(count("SELECT count(*) FROM jobs WHERE state != 'done'"), 2000)   // queued and dead jobs are never retained away
	is.Equal(count("SELECT count(*) FROM stream_events WHERE received_at >= '2026-11-27T00:00:00Z'"), 48*60)
	c, err := db.Counters(ctx, d.R)
	is.NoErr(err)
	is.Equal(c, map[string]int64{ // day counters as old as the events kept: the 27th, 28th and 29th
		"day.2026-11-29.events_applied": 1, "day.2026-11-28.events_applied": 2, "day.2026-11-27.events_applied": 3,
		"events_applied": 3000, "jobs.officers.queued": 1000, "jobs.officers.dead": 1000, "jobs.officers.done": 10 * 60 / 3,
		"jobs_pending": 1000,
	})
	var free int
	is.NoErr(d.W.QueryRow("PRAGMA freelist_count").Scan(&free))
	t.Logf("freelist after incremental vacuum: %d pages", free)
	n, err = h.Retain(ctx)
	is.NoErr(err)
	is.Equal(n, int64(0)) // idempotent
	is.NoErr(h.Checkpoint(ctx))
}

// With database.checkpoints = "external" the housekeeper leaves the WAL to
// Litestream: pages committed stay in the WAL, the database file does not
// grow; by default a checkpoint copies them into the file.
func TestCheckpointOwner(t *testing.T) {
	for _, tt := range []struct {
		name     string
		external bool
	}{{"Auto", false}, {"External", true}} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "chwatch.db")
			d, err := db.Open(ctx, path, db.NoAutoCheckpoint())
			is.NoErr(err)
			defer d.Close()
			_, err = d.W.Exec("CREATE TABLE t (x TEXT)")
			is.NoErr(err)
			_, err = d.W.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO t SELECT hex(randomblob(1000)) FROM n")
			is.NoErr(err)
			size := func() int64 {
				st, err := os.Stat(path)
				is.NoErr(err)
				return st.Size()
			}
			before := size()
			h := housekeep.New(d, housekeep.Config{ExternalCheckpoints: tt.external})
			is.NoErr(h.Checkpoint(ctx))
			if tt.external {
				is.Equal(size(), before)
			} else {
				is.True(size() > before+500_000)
			}
		})
	}
}
