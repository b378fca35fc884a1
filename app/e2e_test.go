package app

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/logging/logtest"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// testConfig is a configuration for a run against a simulator at url, with
// waits shrunk so faults resolve in milliseconds.
func testConfig(t *testing.T, url string) *config.Config {
	t.Helper()
	c := config.Default()
	c.Database.Path = filepath.Join(t.TempDir(), "chwatch.db")
	c.Stream.URL, c.API.URL = url, url
	// No API key: these tests check the stream against the simulator's
	// truth, and REST answers (dated now) would overtake the replayed
	// backlog's events. Tests of the REST side set one.
	c.Stream.Key = "e2e-stream-key"
	c.Stream.IdleTimeout = config.Duration{Duration: 300 * time.Millisecond}
	c.Stream.LineTimeout = config.Duration{Duration: 500 * time.Millisecond}
	c.Stream.BackoffMin = config.Duration{Duration: 5 * time.Millisecond}
	c.Stream.BackoffMax = config.Duration{Duration: 50 * time.Millisecond}
	c.Stream.RateLimitedWait = config.Duration{Duration: 20 * time.Millisecond}
	c.Stream.UnauthorizedWait = config.Duration{Duration: 20 * time.Millisecond}
	c.Stream.MaxLineBytes = 64 << 10
	c.Stream.BatchMaxEvents = 500
	c.StrikeOff.ConfirmExit = "stream" // the simulator's truth: a detail-less event is a real exit
	c.HTTP.Listen = ""
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

// startRun runs the service in the background and returns a stop function
// that cancels it and returns its error. CHWATCHTEST_LOG=1 shows its log.
func startRun(t *testing.T, cfg *config.Config, opt runOptions) func() error {
	t.Helper()
	var w io.Writer = io.Discard
	if os.Getenv("CHWATCHTEST_LOG") != "" {
		w = os.Stderr
	}
	return runLogging(t, cfg, opt, w)
}

// startRunLogged is startRun with the service's log kept.
func startRunLogged(t *testing.T, cfg *config.Config, opt runOptions) (stop func() error, logs *logtest.Buffer) {
	t.Helper()
	logs = &logtest.Buffer{}
	return runLogging(t, cfg, opt, logs), logs
}

// runLogging runs the service in the background, logging to w, until the
// stop function it returns (or the test's end).
func runLogging(t *testing.T, cfg *config.Config, opt runOptions, w io.Writer) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(w, nil))
	go func() { done <- runService(ctx, cfg, log, opt) }()
	var once bool
	var err error
	stop := func() error {
		if !once {
			once = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitCursor waits until the cursor reaches tp, or fails after a deadline.
func waitCursor(t *testing.T, path string, tp int64, deadline time.Duration) {
	t.Helper()
	end := time.Now().Add(deadline)
	var got int64
	for time.Now().Before(end) {
		got = cursorOf(t, path)
		if got >= tp {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cursor reached %d, want %d within %s", got, tp, deadline)
}

// waitServing waits until the process pid has written its service_state:
// past the start, with its signal handler installed. A signal sent to a
// process still starting ends it as the default action does, which a test
// of a graceful stop must not mistake for chwatch's exit.
func waitServing(t *testing.T, path string, pid int, deadline time.Duration) {
	t.Helper()
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		if d, err := db.OpenReader(context.Background(), path); err == nil {
			var got int
			d.R.QueryRow("SELECT value FROM service_state WHERE key = 'pid'").Scan(&got)
			d.Close()
			if got == pid {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d wrote no service_state within %s", pid, deadline)
}

func cursorOf(t *testing.T, path string) int64 {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		return 0
	}
	defer d.Close()
	var tp int64
	d.R.QueryRow("SELECT timepoint FROM stream_cursor WHERE stream = 'companies'").Scan(&tp)
	return tp
}

// checkTruth compares the database with the simulator's own truth: one row
// per distinct timepoint, the cursor, every company's name and status, and
// the strike-off transitions.
func checkTruth(t *testing.T, path string, truth sim.Truth) {
	t.Helper()
	is := is.NewRelaxed(t)
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n, minTP, maxTP int64
	is.NoErr(d.R.QueryRow("SELECT count(*), min(timepoint), max(timepoint) FROM stream_events").Scan(&n, &minTP, &maxTP))
	is.Equal(n, int64(len(truth.Timepoints))) // one row per distinct timepoint
	is.Equal(minTP, truth.Timepoints[0])
	is.Equal(maxTP, truth.LastTimepoint)
	is.Equal(cursorOf(t, path), truth.LastTimepoint)

	rows, err := d.R.Query("SELECT company_number, company_name, company_status, coalesce(company_status_detail, ''), deleted_at IS NOT NULL FROM companies")
	is.NoErr(err)
	seen := 0
	for rows.Next() {
		var num, name, st, detail string
		var deleted bool
		is.NoErr(rows.Scan(&num, &name, &st, &detail, &deleted))
		want, ok := truth.Companies[num]
		if !ok {
			t.Errorf("company %s is in the database but the simulator never published it", num)
			continue
		}
		seen++
		if name != want.Name || st != want.Status || detail != want.Detail || deleted != want.Deleted {
			t.Errorf("company %s: got (%q, %q, %q, deleted=%v), truth (%q, %q, %q, deleted=%v)", num, name, st, detail, deleted, want.Name, want.Status, want.Detail, want.Deleted)
		}
	}
	is.NoErr(rows.Err())
	rows.Close()
	is.Equal(seen, len(truth.Companies))

	var got []string
	rows, err = d.R.Query("SELECT timepoint, company_number, change FROM status_changes WHERE change != 'status_changed' ORDER BY id")
	is.NoErr(err)
	for rows.Next() {
		var tp sql.NullInt64
		var num, change string
		is.NoErr(rows.Scan(&tp, &num, &change))
		got = append(got, fmt.Sprintf("%d %s %v", tp.Int64, num, change == "entered_strike_off"))
	}
	rows.Close()
	var want []string
	for _, tr := range truth.Transitions {
		want = append(want, fmt.Sprintf("%d %s %v", tr.Timepoint, tr.CompanyNumber, tr.Entered))
	}
	is.Equal(len(got), len(want))
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("transition %d: got %s, truth %s", i, got[i], want[i])
			break
		}
	}
	var strikeOff, counted int64
	is.NoErr(d.R.QueryRow("SELECT count(*) FROM strike_off_companies").Scan(&strikeOff))
	is.NoErr(d.R.QueryRow("SELECT value FROM counters WHERE name = 'strike_off'").Scan(&counted))
	is.Equal(strikeOff, counted) // the counter status shows agrees with the view
}

// TestEndToEnd runs chwatch against the simulator with each fault on demand
// and checks that the database ends equal to the simulator's truth: nothing
// lost, nothing applied twice.
func TestEndToEnd(t *testing.T) {
	events := 3000
	if testing.Short() {
		events = 1200
	}
	cases := []struct {
		name   string
		faults sim.Faults
	}{
		{"Clean", sim.Faults{}},
		{"CutMidLine", sim.Faults{CutEvery: 211}},
		{"Stall", sim.Faults{StallEvery: 700, StallFor: time.Second}},
		{"ServerErrors", sim.Faults{Status5xxEvery: 2, CutEvery: 500}},
		{"RateLimited", sim.Faults{Status429Every: 2, CutEvery: 500}},
		{"Unauthorized", sim.Faults{Status401Every: 2, CutEvery: 500}},
		{"NotJSON", sim.Faults{NotJSONEvery: 97}},
		{"Oversized", sim.Faults{OversizeEvery: 301, OversizeBytes: 100 << 10}},
		{"Replayed", sim.Faults{ReplayEvery: 13}},
		{"AbsurdTimepoint", sim.Faults{AbsurdEvery: 101, CutEvery: 500}},
		{"Trickle", sim.Faults{TrickleEvery: 700, TrickleDelay: 100 * time.Millisecond}},
		{"Everything", sim.Faults{CutEvery: 401, Status5xxEvery: 3, Status429Every: 5, Status401Every: 7, NotJSONEvery: 89, OversizeEvery: 307, OversizeBytes: 100 << 10, ReplayEvery: 17, AbsurdEvery: 211}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := sim.New(sim.Config{Seed: int64(100 + i), Companies: 400, Events: events, Backlog: events,
				Heartbeat: 50 * time.Millisecond, StreamKey: "e2e-stream-key", Faults: tc.faults})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			cfg := testConfig(t, srv.URL)
			truth := s.Truth()
			stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint})
			waitCursor(t, cfg.Database.Path, truth.LastTimepoint, 60*time.Second)
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			checkTruth(t, cfg.Database.Path, truth)
			d, err := db.OpenReader(context.Background(), cfg.Database.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var rejects int64
			d.R.QueryRow("SELECT count(*) FROM stream_rejects").Scan(&rejects)
			if (tc.faults.NotJSONEvery > 0 || tc.faults.OversizeEvery > 0 || tc.faults.AbsurdEvery > 0) != (rejects > 0) {
				t.Errorf("stream_rejects holds %d rows for faults %+v", rejects, tc.faults)
			}
		})
	}
}

func openWriter(t *testing.T, path string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
