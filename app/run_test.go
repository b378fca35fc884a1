package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/sim"
	"github.com/chwatch/chwatch/status"
	"github.com/matryer/is"
)

// A 416 on resume is confirmed, recorded as a gap from the cursor to the
// first live timepoint, sweep checks are queued for the strike-off
// companies, status warns, and `gaps resolve` clears it.
func TestGapAfter416(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 5, Companies: 300, Events: 3000, Backlog: 2000, Retention: 500, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	d := openWriter(t, cfg.Database.Path)
	ctx := context.Background()
	_, err = d.MigrateUp(ctx, time.Now())
	is.NoErr(err)
	first := int64(sim.DefaultFirstTimepoint)
	_, err = d.W.Exec(`INSERT INTO stream_cursor (stream, timepoint, url, published_at, updated_at) VALUES ('companies', ?, ?, '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z')`, first+10, srv.URL)
	is.NoErr(err)
	_, err = d.W.Exec(`INSERT INTO companies (company_number, company_name, company_status, company_status_detail, source, source_time, strike_off_since, first_seen_at, updated_at, change_seq)
		VALUES ('ZZ000001', 'OLD STRIKE OFF LTD', 'active', 'active-proposal-to-strike-off', 'stream', '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z', 1)`)
	is.NoErr(err)
	// The row took change_seq 1, as a writer through db.Seq would: the next
	// write takes 2 (the change log is keyed by change_seq).
	_, err = d.W.Exec("INSERT INTO counters (name, value) VALUES ('change_seq', 1)")
	is.NoErr(err)
	d.Close()

	stop := startRun(t, cfg, runOptions{})
	waitCursor(t, cfg.Database.Path, first+2999, 60*time.Second)
	is.NoErr(stop())

	r, err := db.OpenReader(ctx, cfg.Database.Path)
	is.NoErr(err)
	defer r.Close()
	var from, to int64
	var fromTime, toTime string
	is.NoErr(r.R.QueryRow("SELECT from_timepoint, to_timepoint, from_time, to_time FROM stream_gaps").Scan(&from, &to, &fromTime, &toTime))
	is.Equal(from, first+11)
	is.Equal(to, first+2000) // the first event generated after the live connect
	is.Equal(fromTime, "2026-11-20T10:00:00Z")
	is.True(toTime != "")
	var sweeps int64
	is.NoErr(r.R.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'sweep_check' AND company_number = 'ZZ000001'").Scan(&sweeps))
	is.Equal(sweeps, int64(1))
	var events int64
	is.NoErr(r.R.QueryRow("SELECT count(*) FROM stream_events").Scan(&events))
	is.Equal(events, int64(1000)) // from the gap's end to the last

	rep, err := status.Gather(ctx, r, status.Thresholds{StaleAfter: time.Hour, DownWarn: time.Hour, DownCrit: 2 * time.Hour}, time.Now())
	is.NoErr(err)
	is.Equal(rep.Verdict, status.Critical) // stopped, and the gap
	is.True(strings.Contains(strings.Join(rep.Reasons, "\n"), "unresolved stream gap"))

	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut}
	code := e.run(ctx, []string{"chwatch", "--db", cfg.Database.Path, "gaps", "resolve", "1", "--note", "checked by hand"})
	is.Equal(code, 0)
	rep, err = status.Gather(ctx, r, status.Thresholds{StaleAfter: time.Hour, DownWarn: time.Hour, DownCrit: 2 * time.Hour}, time.Now())
	is.NoErr(err)
	is.True(!strings.Contains(strings.Join(rep.Reasons, "\n"), "unresolved stream gap"))
}

// With confirm_exit = api, a strike-off company whose event drops the detail
// keeps its status, is marked pending and gets a status check.
func TestHybridStatusQueuesCheck(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 11, Companies: 300, Events: 4000, Backlog: 4000, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	cfg.StrikeOff.ConfirmExit = "api"
	truth := s.Truth()
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint})
	waitCursor(t, cfg.Database.Path, truth.LastTimepoint, 60*time.Second)
	is.NoErr(stop())
	r, err := db.OpenReader(context.Background(), cfg.Database.Path)
	is.NoErr(err)
	defer r.Close()
	var pending, checks, wrong int64
	is.NoErr(r.R.QueryRow("SELECT count(*) FROM companies WHERE status_check_pending = 1").Scan(&pending))
	is.NoErr(r.R.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'status_check'").Scan(&checks))
	is.NoErr(r.R.QueryRow("SELECT count(*) FROM companies WHERE status_check_pending = 1 AND NOT (company_status = 'active' AND company_status_detail = 'active-proposal-to-strike-off')").Scan(&wrong))
	t.Logf("%d companies pending a status check, %d checks queued", pending, checks)
	is.True(pending > 0)       // the simulator sends detail-less exits
	is.True(checks >= pending) // each has its check
	is.Equal(wrong, int64(0))  // and keeps its strike-off status meanwhile
}

// A second run on the same database exits 1 naming the holder's pid; a
// cursor from another stream is refused unless --reset-cursor.
func TestRunRefusals(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 3, Companies: 100, Events: 100, Backlog: 100, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint})
	waitCursor(t, cfg.Database.Path, sim.DefaultFirstTimepoint+99, 30*time.Second)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err = runService(context.Background(), cfg, log, runOptions{lockWait: shortLockWait})
	is.True(errors.Is(err, db.ErrLocked))
	is.True(strings.Contains(err.Error(), "pid "))
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut, lockWait: shortLockWait}
	code := e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "--set", "http.listen=", "run"})
	is.Equal(code, ExitFailure)
	is.True(strings.Contains(errOut.String(), "held by pid"))
	is.NoErr(stop())

	// Another stream whose timepoints overlap the first one's.
	s2, err := sim.New(sim.Config{Seed: 4, Companies: 100, Events: 50, Backlog: 50, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv2 := httptest.NewServer(s2.Handler())
	defer srv2.Close()
	other := *cfg
	other.Stream.URL = srv2.URL
	err = runService(context.Background(), &other, log, runOptions{startFrom: sim.DefaultFirstTimepoint})
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "--reset-cursor"))

	// With --reset-cursor its events are applied, not passed off as
	// duplicates of the old stream's timepoints.
	stop = startRun(t, &other, runOptions{resetCursor: true, startFrom: sim.DefaultFirstTimepoint})
	d := openWriter(t, cfg.Database.Path)
	defer d.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var url string
		var tp int64
		d.R.QueryRow("SELECT url, timepoint FROM stream_cursor").Scan(&url, &tp)
		if url == srv2.URL && tp == sim.DefaultFirstTimepoint+49 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor at %s %d, want %s %d", url, tp, srv2.URL, sim.DefaultFirstTimepoint+49)
		}
		time.Sleep(20 * time.Millisecond)
	}
	is.NoErr(stop())
	var events int
	is.NoErr(d.R.QueryRow("SELECT count(*) FROM stream_events").Scan(&events))
	is.Equal(events, 50)
}
