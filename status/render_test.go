package status_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/status"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// counters sets running totals and day counters.
func counters(tb testing.TB, d *db.DB, c map[string]int64) {
	tb.Helper()
	err := d.WriteTx(context.Background(), func(tx db.Tx) error {
		for k, v := range c {
			if err := db.AddCounter(context.Background(), tx, k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// aDay is a database a day into its life: counters, a cursor, today's
// entries and exits, a few transitions.
func aDay(tb testing.TB, d *db.DB) {
	tb.Helper()
	counters(tb, d, map[string]int64{
		"companies": 5_012_345, "strike_off": 361_204, "events_applied": 9_500_000, "events_unchanged": 400_000,
		"events_stale": 12_000, "events_deleted": 3_000, "events_invalid": 7, "rejects": 2,
		"day.2026-11-28.events_applied": 81_234, "day.2026-11-28.events_unchanged": 3_456, "day.2026-11-28.events_stale": 12,
		"day.2026-11-28.events_deleted": 3, "day.2026-11-28.rejects": 1,
		"day.2026-11-28.entered_strike_off": 1_234, "day.2026-11-28.left_strike_off": 987,
		"day.2026-11-27.events_applied": 90_000, "day.2026-11-27.entered_strike_off": 1_500,
	})
	exec(tb, d, `INSERT INTO stream_cursor (stream, timepoint, url, published_at, updated_at)
		VALUES ('companies', 47695462, 'https://stream.companieshouse.gov.uk', '2026-11-28T23:41:33Z', '2026-11-28T23:41:34Z')`)
	for i, c := range []struct{ number, name, change, source string }{
		{"SC571653", "ACME SCOTLAND LTD", "entered_strike_off", "stream"},
		{"00000006", "MARINE AND GENERAL MUTUAL LIFE ASSURANCE SOCIETY", "status_changed", "stream"},
		{"12345678", "WIDGETS LIMITED", "left_strike_off", "stream"},
		{"09876543", "GADGETS LTD", "entered_strike_off", "api"},
	} {
		exec(tb, d, `INSERT INTO companies (company_number, company_name, company_status, source, source_time, first_seen_at, updated_at, change_seq)
			VALUES (?, ?, 'active', 'stream', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', ?)`, c.number, c.name, i+1)
		at := db.FormatTime(now.Add(-time.Duration(4-i) * 7 * time.Minute))
		exec(tb, d, `INSERT INTO status_changes (company_number, change, first_seen, source, source_time, detected_at, change_seq)
			VALUES (?, ?, 0, ?, ?, ?, ?)`, c.number, c.change, c.source, at, at, 100+i)
	}
}

func TestRender(t *testing.T) {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name    string
		noSvc   bool
		bare    bool // no schema yet
		svc     func(*status.Service)
		setup   func(testing.TB, *db.DB)
		free    int64
		verdict status.Verdict
	}{
		{name: "not-migrated", bare: true, verdict: status.Warning},
		{name: "never-run", noSvc: true, verdict: status.Warning},
		{
			// Today's main: no REST worker runs yet.
			name: "all-well", svc: func(s *status.Service) { s.APIBudget = -1 }, setup: aDay, verdict: status.OK,
		},
		{
			// After a first import --officers: the backlog and its drain.
			name: "backlog",
			svc: func(s *status.Service) {
				s.RESTWorkers, s.APIState, s.BreakerSince = 2, "ok", ago(20*time.Hour)
			},
			setup: func(tb testing.TB, d *db.DB) {
				aDay(tb, d)
				counters(tb, d, map[string]int64{"day.2026-11-28.entered_strike_off_first_seen": 398_765, "jobs_refused": 12, "pscs": 5_432})
				// enrich.pscs was turned on with the import: its fetches queue beside the officers.
				exec(tb, d, `INSERT INTO service_state (key, value, updated_at) VALUES ('pscs_since', ?, ?)`, db.FormatTime(ago(20*time.Hour)), db.FormatTime(ago(20*time.Hour)))
				addJobs(tb, d, queue.PSCs, queue.StateQueued, 40, ago(20*time.Hour))
				addJobs(tb, d, queue.Officers, queue.StateQueued, 400, ago(20*time.Hour))
				addJobs(tb, d, queue.Officers, queue.StateRunning, 2, ago(time.Minute))
				addJobs(tb, d, queue.StatusCheck, queue.StateQueued, 25, ago(3*time.Minute))
				addJobs(tb, d, queue.Officers, queue.StateDead, 3, ago(10*time.Hour))
				// As if the 400 were 400,000: the drain reads the counter.
				counters(tb, d, map[string]int64{queue.CounterName(queue.Officers, queue.StateQueued): 400_000 - 400})
				// The upgrade to filing checks queued a backfill, partly run.
				addJobs(tb, d, queue.FilingCheck, queue.StateQueued, 300, ago(20*time.Hour))
				counters(tb, d, map[string]int64{
					"filing.backfill": 360_000, "filing.kind.voluntary": 21_000, "filing.kind.compulsory": 38_000, "filing.kind.unknown": 700,
					"filing.suspended": 1_100, "filing.due.2026-10": 40, "filing.due.2026-11": 12_345, "filing.due.2026-12": 20_001,
					"filing.due.2027-01": 25_000, "filing.unknown_items": 2,
				})
				exec(tb, d, `INSERT INTO filing_unknowns (company_number, transaction_id, description, raw, seen_at)
					VALUES ('SC571653', 'T1', 'gazette-objection-to-strike-off-received', '{}', '2026-11-28T00:00:00Z'),
					('09876543', 'T2', 'gazette-notice-strike-off-pending-review', '{}', '2026-11-28T00:00:00Z')`)
				exec(tb, d, `INSERT INTO api_budget (id, key_id, rate_limit, window_seconds, remain, window_end, requests, rate_limited, last_status, last_response_at, writer, updated_at)
					VALUES (1, 'k', 600, 300, 412, ?, 123456, 3, 200, ?, 'w', ?)`, db.FormatTime(now.Add(2*time.Minute)), db.FormatTime(ago(time.Second)), db.FormatTime(ago(time.Second)))
			},
			verdict: status.Warning,
		},
		{
			name: "trouble",
			svc: func(s *status.Service) {
				s.StreamState, s.StreamSince = "backoff", ago(31*time.Minute)
				s.StreamError = "connect to https://stream.companieshouse.gov.uk/companies?timepoint=47695463: HTTP 503"
				s.Reconnects, s.LagSeconds, s.LastEventAt = 17, 1520, ago(31*time.Minute)
				s.BreakerState, s.LastError = "open", "apply batch: disk I/O error"
				s.RESTWorkers, s.APIState, s.APIPauseReason, s.APIPausedUntil = 2, "paused", "rate_limited", now.Add(91*time.Second)
				s.BreakerSince, s.APILastErrorAt = ago(3*time.Minute), ago(10*time.Second)
				s.APILastError = "get officers of SC571653: transient failure (HTTP 503): 503 Service Temporarily Unavailable"
				s.Sweep = "1,200 of 361,204 strike-off companies checked"
			},
			setup: func(tb testing.TB, d *db.DB) {
				aDay(tb, d)
				exec(tb, d, `INSERT INTO stream_gaps (id, stream, from_timepoint, to_timepoint, from_time, to_time, detected_at, reason)
					VALUES (3, 'companies', 47000000, 47001012, '2026-11-20T10:00:00Z', '2026-11-25T08:00:00Z', '2026-11-25T08:00:05Z', '416 timepoint too old')`)
				exec(tb, d, `INSERT INTO api_budget (id, key_id, rate_limit, window_seconds, remain, window_end, paused_until, pause_reason, requests, rate_limited, last_status, last_response_at, writer, updated_at)
					VALUES (1, 'k', 600, 300, 0, ?, ?, 'rate_limited', 5000, 41, 429, ?, 'w', ?)`,
					db.FormatTime(now.Add(90*time.Second)), db.FormatTime(now.Add(91*time.Second)), db.FormatTime(ago(5*time.Second)), db.FormatTime(ago(5*time.Second)))
			},
			free:    300 << 20,
			verdict: status.Critical,
		},
		{
			name: "stopped",
			svc: func(s *status.Service) {
				s.HeartbeatAt, s.StoppedAt, s.StreamState, s.StreamSince = ago(7*time.Minute), ago(7*time.Minute), "stopped", ago(7*time.Minute)
				s.LastEventAt = ago(7 * time.Minute)
			},
			setup:   aDay,
			verdict: status.Critical,
		},
		{
			name: "disk-full", free: -1,
			svc: func(s *status.Service) {
				s.HeartbeatAt, s.DiskFull, s.LastError = ago(10*time.Minute), true, "apply batch: database or disk is full (13)"
			},
			setup:   aDay,
			verdict: status.Critical,
		},
		{
			name: "api-forbidden",
			svc:  func(s *status.Service) { s.APIBudget = 0 },
			setup: func(tb testing.TB, d *db.DB) {
				aDay(tb, d)
				exec(tb, d, `INSERT INTO api_budget (id, key_id, rate_limit, window_seconds, remain, paused_until, pause_reason, refused, requests, rate_limited, last_status, last_response_at, writer, updated_at)
					VALUES (1, 'k', 600, 300, 598, ?, 'forbidden', 'forbidden', 2, 0, 403, ?, 'w', ?)`, db.FormatTime(now.Add(14*time.Minute)), db.FormatTime(ago(time.Minute)), db.FormatTime(ago(time.Minute)))
			},
			verdict: status.Critical,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d *db.DB
			if tt.bare {
				var err error
				d, err = db.Open(context.Background(), filepath.Join(t.TempDir(), "chwatch.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
			} else {
				d = dbtest.Open(t)
			}
			if !tt.noSvc && !tt.bare {
				s := running()
				if tt.svc != nil {
					tt.svc(&s)
				}
				setService(t, d, s)
			}
			if tt.setup != nil {
				tt.setup(t, d)
			}
			th := th
			switch {
			case tt.free < 0:
				th.DiskFree = free(0)
			case tt.free > 0:
				th.DiskFree = free(tt.free)
			}
			r, err := status.Gather(context.Background(), d, th, now)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != tt.verdict {
				t.Errorf("verdict %s, want %s: %q", r.Verdict, tt.verdict, r.Reasons)
			}
			// The file's place and size are the test's, not the screen's.
			r.Database.Path, r.Database.Bytes, r.Database.WALBytes = "/var/lib/chwatch/chwatch.db", 3_012_345_678, 4_321_000
			var out strings.Builder
			status.Render(&out, r, "v1.4.0")
			screen := strings.ReplaceAll(out.String(), filepath.Dir(d.Path), "/var/lib/chwatch")
			golden(t, filepath.Join("testdata", "screen", tt.name+".txt"), screen)
		})
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./status -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./status -run %s -update rewrites it)\n--- got\n%s--- want\n%s", path, t.Name(), got, want)
	}
}
