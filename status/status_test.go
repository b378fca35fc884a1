package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/status"
	"github.com/chwatch/chwatch/stream"
	"github.com/matryer/is"
)

var now = time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)

// th is the default status.* configuration, on a disk with plenty of room.
var th = status.Thresholds{StaleAfter: time.Minute, DownWarn: 5 * time.Minute, DownCrit: 30 * time.Minute, DiskFree: free(50 << 30)}

// free is a DiskFree reporting n bytes free.
func free(n int64) func(string) (int64, error) {
	return func(string) (int64, error) { return n, nil }
}

// exec runs statements on the writer.
func exec(tb testing.TB, d *db.DB, query string, args ...any) {
	tb.Helper()
	if _, err := d.W.ExecContext(context.Background(), query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

func setService(tb testing.TB, d *db.DB, s status.Service) {
	tb.Helper()
	err := d.WriteTx(context.Background(), func(tx db.Tx) error {
		return db.SetState(context.Background(), tx, db.FormatTime(now), s.KV())
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// running is a healthy service that beat 5 seconds ago.
func running() status.Service {
	return status.Service{
		PID: 4242, Version: "v1.2.3", StartedAt: now.Add(-time.Hour), HeartbeatAt: now.Add(-5 * time.Second),
		StreamState: "connected", StreamSince: now.Add(-time.Hour), StreamURL: "https://stream.example",
		BreakerState: "closed", APIBudget: 600, LastEventAt: now.Add(-2 * time.Second), LagSeconds: 1.5,
	}
}

func TestVerdicts(t *testing.T) {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name    string
		noSvc   bool // write no service_state at all
		svc     func(*status.Service)
		setup   func(testing.TB, *db.DB)
		free    int64 // bytes free beside the database; 0: plenty
		verdict status.Verdict
		running bool
		reasons []string // substrings of the reasons: what is wrong and what to do
	}{
		{name: "NeverRun", noSvc: true, verdict: status.Warning, reasons: []string{"never run", "chwatch run"}},
		{
			name: "HeartbeatStale", svc: func(s *status.Service) { s.HeartbeatAt = ago(2 * time.Minute) },
			verdict: status.Critical, reasons: []string{"service not running", "last heartbeat 2m ago", "start"},
		},
		{
			name: "HeartbeatJustFresh", svc: func(s *status.Service) { s.HeartbeatAt = ago(time.Minute) },
			verdict: status.OK, running: true,
		},
		{
			name: "StoppedCleanly", svc: func(s *status.Service) {
				s.HeartbeatAt = ago(10 * time.Second)
				s.StoppedAt = s.HeartbeatAt
				s.StreamState = "stopped"
			},
			verdict: status.Critical, reasons: []string{"service not running", "stopped cleanly", "start"},
		},
		{
			name: "StoppedThenRestarted", svc: func(s *status.Service) { s.StoppedAt = ago(time.Hour) },
			verdict: status.OK, running: true,
		},
		{
			name: "StaleIgnoresStreamState", svc: func(s *status.Service) {
				s.HeartbeatAt = ago(time.Hour)
				s.StreamState, s.StreamSince = "backoff", ago(2*time.Hour)
			},
			verdict: status.Critical, reasons: []string{"service not running"},
		},
		{
			name: "StreamUnauthorized", svc: func(s *status.Service) { s.StreamState, s.StreamSince = "unauthorized", ago(10*time.Second) },
			verdict: status.Critical, running: true, reasons: []string{"401", "CHWATCH_STREAM_KEY"},
		},
		{
			name: "APIUnauthorized", svc: func(s *status.Service) { s.APIUnauthorized = true },
			verdict: status.Critical, running: true, reasons: []string{"401", "CHWATCH_API_KEY"},
		},
		{
			name: "StreamDownPastCrit", svc: func(s *status.Service) {
				s.StreamState, s.StreamSince, s.StreamError = "backoff", ago(31*time.Minute), "dial tcp: connection refused"
			},
			verdict: status.Critical, running: true, reasons: []string{"stream down for 31m", "connection refused", "check"},
		},
		{
			name: "StreamDownPastWarn", svc: func(s *status.Service) { s.StreamState, s.StreamSince = "connecting", ago(6*time.Minute) },
			verdict: status.Warning, running: true, reasons: []string{"stream down for 6m ", "check"},
		},
		{
			name: "StreamDownBriefly", svc: func(s *status.Service) { s.StreamState, s.StreamSince = "backoff", ago(time.Minute) },
			verdict: status.OK, running: true,
		},
		{
			name: "StreamConnectedLongAgo", svc: func(s *status.Service) { s.StreamSince = ago(72 * time.Hour) },
			verdict: status.OK, running: true,
		},
		{
			name: "UnresolvedGap",
			setup: func(tb testing.TB, d *db.DB) {
				exec(tb, d, `INSERT INTO stream_gaps (id, stream, from_timepoint, to_timepoint, from_time, to_time, detected_at, reason)
					VALUES (7, 'companies', 1001, 5000, '2026-11-20T00:00:00Z', '2026-11-25T00:00:00Z', '2026-11-25T00:00:05Z', '416 timepoint too old')`)
			},
			verdict: status.Warning, running: true, reasons: []string{"gap 7", "1001", "5000", "chwatch gaps resolve 7"},
		},
		{
			name: "ResolvedGap",
			setup: func(tb testing.TB, d *db.DB) {
				exec(tb, d, `INSERT INTO stream_gaps (stream, from_timepoint, to_timepoint, detected_at, reason, resolved_at, resolution)
					VALUES ('companies', 1, 2, '2026-11-25T00:00:05Z', '416', '2026-11-26T00:00:00Z', 'import')`)
			},
			verdict: status.OK, running: true,
		},
		{
			name: "GapWhileStopped", svc: func(s *status.Service) { s.HeartbeatAt = ago(time.Hour) },
			setup: func(tb testing.TB, d *db.DB) {
				exec(tb, d, `INSERT INTO stream_gaps (stream, from_timepoint, detected_at, reason) VALUES ('companies', 1, '2026-11-25T00:00:05Z', '416')`)
			},
			verdict: status.Critical, reasons: []string{"service not running", "gaps resolve"},
		},
		{
			name: "BreakerOpen", svc: func(s *status.Service) { s.BreakerState = "open" },
			verdict: status.Warning, running: true, reasons: []string{"breaker open", "check"},
		},
		{
			name: "BreakerHalfOpen", svc: func(s *status.Service) { s.BreakerState = "half-open" },
			verdict: status.OK, running: true,
		},
		{
			name: "DeadJobs",
			setup: func(tb testing.TB, d *db.DB) {
				for i, st := range []string{"dead", "dead", "done", "queued"} {
					exec(tb, d, `INSERT INTO jobs (kind, priority, company_number, state, attempts, run_after, created_at, updated_at)
						VALUES ('officers', 20, ?, ?, 8, '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z')`, "0000000"+string(rune('1'+i)), st)
				}
			},
			verdict: status.Warning, running: true, reasons: []string{"2 dead jobs", "chwatch queue retry"},
		},
		{
			name: "DiskFull", svc: func(s *status.Service) { s.DiskFull = true },
			verdict: status.Critical, running: true, reasons: []string{"disk full: the cursor holds until space returns", "free space"},
		},
		{
			// The service has not noticed yet (nothing to commit), but
			// nothing can be written.
			name: "NoBytesFree", free: -1,
			verdict: status.Critical, running: true, reasons: []string{"disk full: the cursor holds until space returns", "0 B free", "free space"},
		},
		{
			// The heartbeat cannot be written on a full disk: its age is
			// read as that, not as a dead service.
			name: "DiskFullHeartbeatStale", free: -1, svc: func(s *status.Service) { s.HeartbeatAt, s.DiskFull = ago(10*time.Minute), true },
			verdict: status.Critical, reasons: []string{"disk full: the cursor holds until space returns", "cannot write its heartbeat", "last one 10m ago", "free space"},
		},
		{
			name: "SpaceBackHeartbeatStale", svc: func(s *status.Service) { s.HeartbeatAt, s.DiskFull = ago(10*time.Minute), true },
			verdict: status.Critical, reasons: []string{"service not running", "reported a full disk"},
		},
		{
			name: "DiskNearlyFull", free: 100 << 20,
			verdict: status.Warning, running: true, reasons: []string{"disk nearly full", "100 MB free"},
		},
		{
			name: "StreamStalledPastWarn", svc: func(s *status.Service) {
				s.StreamState, s.StreamSince, s.StreamError = "stalled", ago(6*time.Minute), "a line took longer than stream.line_timeout (1m0s) to arrive"
			},
			verdict: status.Warning, running: true, reasons: []string{"stream stalled for 6m:", "too slowly", "line_timeout"},
		},
		{
			name: "APIRefused401", setup: budgetRow("unauthorized", now.Add(-time.Minute)),
			verdict: status.Critical, running: true, reasons: []string{"REST API answers 401", "CHWATCH_API_KEY"},
		},
		{
			name: "APIRefused403", setup: budgetRow("forbidden", now.Add(-time.Minute)),
			verdict: status.Critical, running: true, reasons: []string{"REST API answers 403", "api.forbidden_wait", "do not restart in a loop"},
		},
		{
			// A 403 left by an earlier run: this run's workers have not
			// written the row yet, so it says nothing about them.
			name: "APIRefusedBeforeThisRun", setup: budgetRow("forbidden", now.Add(-2*time.Hour)),
			svc:     func(s *status.Service) { s.APIBudget = -1 },
			verdict: status.OK, running: true,
		},
		{
			name: "APIRefusedWhileStopped", setup: budgetRow("forbidden", now.Add(-time.Minute)),
			svc:     func(s *status.Service) { s.HeartbeatAt = ago(time.Hour) },
			verdict: status.Critical, reasons: []string{"service not running"},
		},
		{
			name: "WorstWins", svc: func(s *status.Service) { s.BreakerState, s.APIUnauthorized = "open", true },
			verdict: status.Critical, running: true, reasons: []string{"breaker open", "CHWATCH_API_KEY"},
		},
		{
			name: "StatusChecksWithoutWorkers", svc: func(s *status.Service) { s.APIBudget = -1 },
			setup: func(tb testing.TB, d *db.DB) {
				exec(tb, d, `INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at)
					VALUES ('status_check', 0, 'SC571653', 'queued', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z')`)
			},
			verdict: status.Warning, running: true, reasons: []string{"1 status checks wait", "no REST workers", "CHWATCH_API_KEY"},
		},
		{
			name: "StatusChecksWithWorkers",
			setup: func(tb testing.TB, d *db.DB) {
				exec(tb, d, `INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at)
					VALUES ('status_check', 0, 'SC571653', 'queued', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z')`)
			},
			verdict: status.OK, running: true,
		},
		{
			name: "OfficersWithoutWorkers", svc: func(s *status.Service) { s.APIBudget = -1 }, // a stream-only setup is a choice, not a fault
			setup: func(tb testing.TB, d *db.DB) {
				exec(tb, d, `INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at)
					VALUES ('officers', 20, 'SC571653', 'queued', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z')`)
			},
			verdict: status.OK, running: true,
		},
		{name: "AllGood", verdict: status.OK, running: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			d := dbtest.Open(t)
			if !tt.noSvc {
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
			is.NoErr(err)
			is.Equal(r.Verdict, tt.verdict)
			is.Equal(r.Running, tt.running)
			all := strings.Join(r.Reasons, "; ")
			if tt.verdict == status.OK {
				is.Equal(len(r.Reasons), 0) // OK has no reasons
			} else {
				is.True(len(r.Reasons) > 0) // a non-OK verdict says why
			}
			for _, want := range tt.reasons {
				if !strings.Contains(all, want) {
					t.Errorf("reasons %q lack %q", all, want)
				}
			}
		})
	}
}

// budgetRow is a setup writing the api_budget row, refused ("" for none)
// and last written at updated.
func budgetRow(refused string, updated time.Time) func(testing.TB, *db.DB) {
	return func(tb testing.TB, d *db.DB) {
		var r any
		if refused != "" {
			r = refused
		}
		exec(tb, d, `INSERT INTO api_budget (id, key_id, rate_limit, window_seconds, remain, refused, requests, rate_limited, last_status, last_response_at, writer, updated_at)
			VALUES (1, 'k', 600, 300, 400, ?, 1234, 2, 403, ?, 'w', ?)`, r, db.FormatTime(updated), db.FormatTime(updated))
	}
}

func TestNotMigrated(t *testing.T) {
	is := is.New(t)
	d, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "chwatch.db"))
	is.NoErr(err)
	defer d.Close()
	r, err := status.Gather(context.Background(), d, th, now)
	is.NoErr(err)
	is.Equal(r.Verdict, status.Warning)
	is.Equal(r.Database.SchemaVersion, 0)
	is.True(strings.Contains(strings.Join(r.Reasons, ";"), "never run"))
	is.True(strings.Contains(strings.Join(r.Reasons, ";"), "chwatch migrate up"))
}

func TestSchemaTooNew(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	exec(t, d, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '2030-01-01T00:00:00Z')")
	_, err := status.Gather(context.Background(), d, th, now)
	is.True(errors.Is(err, db.ErrSchemaTooNew))
	is.True(strings.Contains(err.Error(), d.Path))
}

func TestGatherReadsTheDatabase(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	counters := map[string]int64{
		"companies": 1234, "strike_off": 56, "events_applied": 1000, "events_unchanged": 5,
		"events_invalid": 2, "rejects": 3, "jobs_pending": 7, "jobs_refused": 2, "change_seq": 99,
		// Today's (the 28th) and yesterday's day counters.
		"day.2026-11-28.events_applied": 40, "day.2026-11-28.events_invalid": 1, "day.2026-11-28.rejects": 1,
		"day.2026-11-28.entered_strike_off": 3, "day.2026-11-28.entered_strike_off_first_seen": 1, "day.2026-11-28.left_strike_off": 2,
		"day.2026-11-27.events_applied": 900, "day.2026-11-27.entered_strike_off": 50,
	}
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		for k, v := range counters {
			if err := db.AddCounter(ctx, tx, k, v); err != nil {
				return err
			}
		}
		return nil
	}))
	setService(t, d, running())
	exec(t, d, `INSERT INTO stream_cursor (stream, timepoint, url, published_at, updated_at)
		VALUES ('companies', 987654, 'https://stream.example', '2026-11-28T23:41:30Z', '2026-11-28T23:41:34Z')`)
	for i, n := range []string{"00000001", "00000002", "00000003", "00000004", "00000005", "00000006", "00000007"} {
		exec(t, d, `INSERT INTO companies (company_number, company_name, company_status, source, source_time, first_seen_at, updated_at, change_seq)
			VALUES (?, ?, 'active', 'stream', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', ?)`, n, "COMPANY "+n[7:]+" LTD", i+1)
	}
	// id, company, change, first_seen, detected_at
	changes := []struct {
		company, change string
		firstSeen       int
		detected        string
	}{
		{"00000001", "entered_strike_off", 0, "2026-11-27T23:59:59Z"}, // yesterday
		{"00000002", "entered_strike_off", 0, "2026-11-28T00:00:00Z"}, // today from midnight
		{"00000003", "entered_strike_off", 1, "2026-11-28T01:00:00Z"}, // first sight: not an entry today
		{"00000004", "left_strike_off", 0, "2026-11-28T02:00:00Z"},
		{"00000005", "status_changed", 0, "2026-11-28T03:00:00Z"}, // not a transition
		{"00000006", "entered_strike_off", 0, "2026-11-28T04:00:00Z"},
		{"00000007", "left_strike_off", 1, "2026-11-28T05:00:00Z"},
		{"00000099", "entered_strike_off", 0, "2026-11-28T06:00:00Z"}, // no companies row
	}
	for i, c := range changes {
		exec(t, d, `INSERT INTO status_changes (company_number, change, first_seen, source, source_time, detected_at, change_seq)
			VALUES (?, ?, ?, 'stream', ?, ?, ?)`, c.company, c.change, c.firstSeen, c.detected, c.detected, 100+i)
	}

	// status runs as another process: read-only.
	r0, err := db.OpenReader(ctx, d.Path)
	is.NoErr(err)
	defer r0.Close()
	r, err := status.Gather(ctx, r0, th, now)
	is.NoErr(err)
	is.Equal(r.Verdict, status.OK)
	is.Equal(r.Now, "2026-11-28T23:41:36Z")
	is.Equal(r.Database.Path, d.Path)
	is.Equal(r.Database.SchemaVersion, db.Latest())
	is.True(r.Database.Bytes > 0)
	is.True(r.Database.FreeBytes > 0)
	is.Equal(r.Companies, int64(1234))
	is.Equal(r.StrikeOff, int64(56))
	is.Equal(r.Events, map[string]int64{"applied": 1000, "unchanged": 5, "invalid": 2})
	is.Equal(r.Rejects, int64(3))
	is.Equal(r.Queue.Pending, int64(7))
	is.Equal(r.Queue.Refused, int64(2))
	is.Equal(r.Queue.Dead, int64(0))
	is.Equal(r.Cursor.Timepoint, int64(987654))
	is.Equal(r.Cursor.URL, "https://stream.example")
	is.Equal(r.Cursor.PublishedAt, "2026-11-28T23:41:30Z")
	is.Equal(r.Cursor.UpdatedAt, "2026-11-28T23:41:34Z")
	is.Equal(r.LastEventAgeSeconds, 2.0)
	is.Equal(r.Service.PID, 4242)
	is.Equal(r.Service.LagSeconds, 1.5)
	is.Equal(r.Today, status.Today{Date: "2026-11-28", Events: map[string]int64{"applied": 40, "invalid": 1}, Rejects: 1, Entered: 3, FirstSeen: 1, Left: 2})
	is.Equal(r.EnteredToday, int64(3)) // today's, first sightings apart
	is.Equal(r.LeftToday, int64(2))
	is.Equal(r.UptimeSeconds, 3600.0)
	is.Equal(r.HeartbeatAgeSeconds, 5.0)
	is.Equal(len(r.Recent), 5)
	var got []string
	for _, tr := range r.Recent {
		got = append(got, tr.Company+" "+tr.Change)
	}
	is.Equal(got, []string{ // newest first, status_changed left out
		"00000099 entered_strike_off", "00000007 left_strike_off", "00000006 entered_strike_off",
		"00000004 left_strike_off", "00000003 entered_strike_off",
	})
	is.Equal(r.Recent[0].Name, "")
	is.Equal(r.Recent[1].Name, "COMPANY 7 LTD")
	is.True(r.Recent[1].FirstSeen)
	is.True(!r.Recent[2].FirstSeen)
	is.Equal(r.Recent[2].Source, "stream")
	is.Equal(r.Recent[2].SourceTime, "2026-11-28T04:00:00Z")
	is.Equal(len(r.Gaps), 0)

	// The JSON form carries the verdict by name and the counters.
	b, err := json.Marshal(r)
	is.NoErr(err)
	var m map[string]any
	is.NoErr(json.Unmarshal(b, &m))
	is.Equal(m["verdict"], "OK")
	is.Equal(m["companies"], 1234.0)
	is.Equal(m["service"].(map[string]any)["stream_state"], "connected")
}

func TestServiceKVRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		svc  status.Service
	}{
		{"Running", running()},
		{"Everything", status.Service{
			PID: 1, Version: "dev", StartedAt: now.Add(-time.Hour), HeartbeatAt: now.Add(-1500 * time.Millisecond),
			StoppedAt: now, StreamState: "unauthorized", StreamSince: now.Add(-time.Minute), StreamError: "401 Unauthorized",
			StreamURL: "https://s", Reconnects: 17, LagSeconds: 0.25, LastEventAt: now.Add(-time.Second), BreakerState: "open",
			APIUnauthorized: true, APIBudget: 0, DiskFull: true, LastError: "disk I/O error", Sweep: "12/40 checked",
		}},
		{"NoWorkers", status.Service{APIBudget: -1}},
		{"REST", status.Service{APIBudget: 12, BreakerState: "open", RESTService: status.RESTService{
			RESTWorkers: 2, APIState: "paused", APIPausedUntil: now.Add(time.Minute), APIPauseReason: "rate_limited",
			APIBudgetLimit: 600, APIBudgetReset: now.Add(2 * time.Minute), APIRateLimited: 3,
			APILastError: "get profile SC571653: rate limited (429)", APILastErrorAt: now, BreakerSince: now.Add(-time.Second),
		}}},
		{"LocalTimes", status.Service{HeartbeatAt: now.In(time.FixedZone("BST", 3600)), APIBudget: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			got := status.ParseService(tt.svc.KV())
			for _, p := range [][2]time.Time{
				{got.StartedAt, tt.svc.StartedAt}, {got.HeartbeatAt, tt.svc.HeartbeatAt}, {got.StoppedAt, tt.svc.StoppedAt},
				{got.StreamSince, tt.svc.StreamSince}, {got.LastEventAt, tt.svc.LastEventAt},
			} {
				is.True(p[0].Equal(p[1])) // times survive, to the nanosecond
			}
			want := tt.svc
			want.StartedAt, want.HeartbeatAt, want.StoppedAt, want.StreamSince, want.LastEventAt = got.StartedAt, got.HeartbeatAt, got.StoppedAt, got.StreamSince, got.LastEventAt
			for _, p := range [][2]*time.Time{{&got.APIPausedUntil, &want.APIPausedUntil}, {&got.APIBudgetReset, &want.APIBudgetReset},
				{&got.APILastErrorAt, &want.APILastErrorAt}, {&got.BreakerSince, &want.BreakerSince}} {
				is.True(p[0].Equal(*p[1])) // times survive, to the nanosecond
				*p[1] = *p[0]
			}
			is.Equal(got, want)
		})
	}
	is := is.New(t)
	empty := status.ParseService(map[string]string{})
	is.Equal(empty.APIBudget, int64(-1)) // no REST worker ever reported
	is.True(empty.HeartbeatAt.IsZero())
}

func TestVerdictText(t *testing.T) {
	is := is.New(t)
	for v, s := range map[status.Verdict]string{status.OK: "OK", status.Warning: "WARNING", status.Critical: "CRITICAL", status.Unknown: "UNKNOWN"} {
		is.Equal(v.String(), s)
		b, err := v.MarshalText()
		is.NoErr(err)
		is.Equal(string(b), s)
	}
	is.Equal(int(status.Unknown), 3) // monitoring-plugin exit codes
}

// The free-space source is asked about the database's directory; when it
// cannot tell, status says nothing about the disk rather than guess.
func TestDiskFreeSource(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	setService(t, d, running())
	var asked string
	th := th
	th.DiskFree = func(dir string) (int64, error) { asked = dir; return 0, errors.New("statfs: not supported") }
	r, err := status.Gather(context.Background(), d, th, now)
	is.NoErr(err)
	is.Equal(asked, filepath.Dir(d.Path))
	is.Equal(r.Database.FreeBytes, int64(-1))
	is.Equal(r.Verdict, status.OK)
	th.DiskFree = nil // statfs, the default
	r, err = status.Gather(context.Background(), d, th, now)
	is.NoErr(err)
	is.True(r.Database.FreeBytes > 0)
}

// streamEvent is a changed event for company n at timepoint tp, published
// at pub and received a second later, as the stream client decodes it.
func streamEvent(tb testing.TB, tp int64, n, status, detail string, pub time.Time) stream.Item {
	tb.Helper()
	data := map[string]any{"company_number": n, "company_name": "COMPANY " + n + " LTD", "company_status": status,
		"etag": fmt.Sprintf("etag-%s-%d", n, tp), "type": "ltd"}
	if detail != "" {
		data["company_status_detail"] = detail
	}
	raw, err := json.Marshal(map[string]any{"resource_kind": "company-profile", "resource_id": n, "data": data,
		"event": map[string]any{"timepoint": tp, "published_at": pub.UTC().Format("2006-01-02T15:04:05"), "type": "changed"}})
	if err != nil {
		tb.Fatal(err)
	}
	it, err := stream.Decode(raw, pub.Add(time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	return it
}

// Today's events, entries and exits as run writes them, through the
// processor: status shows what the rows say, first sightings apart.
func TestGatherToday(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	detected := now
	p := ingest.New(d, ingest.Config{BatchMaxEvents: 100, BatchMaxWait: time.Millisecond,
		Applier: &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}, StreamURL: "https://stream.example",
		Now: func() time.Time { return detected }})
	yesterday := time.Date(2026, 11, 27, 22, 0, 0, 0, time.UTC)
	detected = yesterday
	is.NoErr(p.Commit(ctx, []stream.Item{ // yesterday: two companies, one entering at first sight
		streamEvent(t, 1, "00000001", "active", "", yesterday),
		streamEvent(t, 2, "00000002", "active", company.StrikeOffDetail, yesterday),
	}))
	today := now.Add(-time.Hour)
	detected = now
	is.NoErr(p.Commit(ctx, []stream.Item{
		streamEvent(t, 3, "00000001", "active", company.StrikeOffDetail, today),                 // entered
		streamEvent(t, 4, "00000002", "dissolved", "", today),                                   // left
		streamEvent(t, 5, "00000003", "active", company.StrikeOffDetail, today),                 // first sight
		streamEvent(t, 6, "00000003", "active", company.StrikeOffDetail, today.Add(-time.Hour)), // stale
		{Reject: &stream.Reject{Reason: "not_json", Bytes: 3, ReceivedAt: today, Excerpt: []byte("{{{")}},
	}))
	setService(t, d, running())
	r, err := status.Gather(ctx, d, th, now)
	is.NoErr(err)
	is.Equal(r.Today, status.Today{Date: "2026-11-28", Events: map[string]int64{"applied": 3, "stale": 1}, Rejects: 1, Entered: 1, FirstSeen: 1, Left: 1})
	is.Equal(r.Events, map[string]int64{"applied": 5, "stale": 1})
	is.Equal(r.StrikeOff, int64(2)) // 00000001 and 00000003
	is.Equal(r.Companies, int64(3))
	// The same from the rows.
	var entered, left, events int64
	is.NoErr(d.R.QueryRow(`SELECT coalesce(sum(change = 'entered_strike_off' AND first_seen = 0), 0), coalesce(sum(change = 'left_strike_off'), 0)
		FROM status_changes WHERE detected_at >= '2026-11-28'`).Scan(&entered, &left))
	is.NoErr(d.R.QueryRow(`SELECT count(*) FROM stream_events WHERE received_at >= '2026-11-28'`).Scan(&events))
	is.Equal(entered, r.Today.Entered)
	is.Equal(left, r.Today.Left)
	is.Equal(events, int64(4))
	is.Equal(r.Cursor.Timepoint, int64(6))
}
