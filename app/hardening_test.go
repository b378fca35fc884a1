package app

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/sim"
	"github.com/chwatch/chwatch/status"
	"github.com/matryer/is"
)

// eventually waits for cond, failing after deadline.
func eventually(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", deadline, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gapCount(t *testing.T, path string) int64 {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int64
	if err := d.R.QueryRow("SELECT count(*) FROM stream_gaps").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A database whose cursor an absurd timepoint set before such lines were
// rejected (2^63-1: no timepoint follows it) is never silently resumed
// live: run records a gap, says so, and status warns; the cursor then
// follows the live stream, so the next start resumes from it exactly.
func TestPoisonedCursorRecordsGap(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 21, Companies: 300, Events: 3000, Backlog: 2000, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the runs' cleanups stop them
	cfg := testConfig(t, srv.URL)
	d := openWriter(t, cfg.Database.Path)
	ctx := context.Background()
	_, err = d.MigrateUp(ctx, time.Now())
	is.NoErr(err)
	_, err = d.W.Exec(`INSERT INTO stream_cursor (stream, timepoint, url, published_at, updated_at) VALUES ('companies', ?, ?, '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z')`, int64(math.MaxInt64), srv.URL)
	is.NoErr(err)
	_, err = d.W.Exec(`INSERT INTO stream_events (stream, timepoint, resource_id, event_type, received_at, outcome, reason) VALUES ('companies', ?, '00000001', 'bogus', '2026-11-20T10:00:00Z', 'invalid', 'unknown event type "bogus"')`, int64(math.MaxInt64))
	is.NoErr(err)
	d.Close()

	first := int64(sim.DefaultFirstTimepoint)
	stop, logs := startRunLogged(t, cfg, runOptions{})
	eventually(t, "the cursor to follow the live stream", 60*time.Second, func() bool { return cursorOf(t, cfg.Database.Path) == first+2999 })
	is.NoErr(stop())
	is.True(strings.Contains(logs.String(), "cannot be resumed"))

	r, err := db.OpenReader(ctx, cfg.Database.Path)
	is.NoErr(err)
	defer r.Close()
	var from, to int64
	var reason string
	is.NoErr(r.R.QueryRow("SELECT from_timepoint, to_timepoint, reason FROM stream_gaps").Scan(&from, &to, &reason))
	is.Equal(from, int64(math.MaxInt64))
	is.Equal(to, first+2000) // the first live event
	is.True(strings.Contains(reason, "cannot be resumed"))
	rep, err := status.Gather(ctx, r, status.Thresholds{StaleAfter: time.Hour, DownWarn: time.Hour, DownCrit: 2 * time.Hour}, time.Now())
	is.NoErr(err)
	is.True(strings.Contains(strings.Join(rep.Reasons, "\n"), "unresolved stream gap"))

	// The next start resumes after the cursor: no second gap.
	stop, logs = startRunLogged(t, cfg, runOptions{})
	eventually(t, "a resumed connection", 30*time.Second, func() bool {
		return strings.Contains(logs.String(), "timepoint="+strconv.FormatInt(first+3000, 10))
	})
	is.NoErr(stop())
	is.Equal(gapCount(t, cfg.Database.Path), int64(1))
}

// A connection trickling a byte at a time feeds the idle watchdog but
// delivers nothing: the line timeout cuts it, and the stalled stream shows
// in /healthz (503) and in status.
func TestStalledStreamShows(t *testing.T) {
	is := is.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		line := []byte(`{"resource_kind":"company-profile","resource_id":"00000001","data":{"company_name":"` + strings.Repeat("X", 1000))
		for i := 0; ; i++ {
			if _, err := w.Write(line[i%len(line) : i%len(line)+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(t, srv.URL)
	cfg.Stream.LineTimeout = config.Duration{Duration: 200 * time.Millisecond}
	cfg.HTTP.Listen = "127.0.0.1:0"
	addr := make(chan string, 1)
	stop, _ := startRunLogged(t, cfg, runOptions{onListen: func(a string) { addr <- a }, beatEvery: 20 * time.Millisecond})
	health := "http://" + <-addr + "/healthz"
	eventually(t, "/healthz to report the stall", 30*time.Second, func() bool {
		code, body := get(t, health)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "stalled")
	})
	r, err := db.OpenReader(context.Background(), cfg.Database.Path)
	is.NoErr(err)
	defer r.Close()
	th := status.Thresholds{StaleAfter: time.Hour, DownWarn: time.Millisecond, DownCrit: time.Hour}
	var rep *status.Report
	eventually(t, "status to report the stall", 30*time.Second, func() bool {
		rep, err = status.Gather(context.Background(), r, th, time.Now())
		is.NoErr(err)
		return rep.Service.StreamState == "stalled" && rep.Verdict == status.Warning
	})
	is.True(strings.Contains(strings.Join(rep.Reasons, "\n"), "stream stalled for"))
	is.True(strings.Contains(rep.Service.StreamError, "line_timeout"))
	is.NoErr(stop())
}

// A stop while batches cannot commit (a full disk, from the start: the
// run's writer may not grow the file) stops within the stop timeout,
// returns an error (exit 1) saying the batch was left uncommitted, and
// leaves it for the next start: the cursor did not move, nothing is lost.
func TestStopWhileCommitsFail(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 31, Companies: 300, Events: 1500, Backlog: 1500, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	cfg := testConfig(t, srv.URL)
	d := openWriter(t, cfg.Database.Path)
	ctx := context.Background()
	_, err = d.MigrateUp(ctx, time.Now())
	is.NoErr(err)
	d.Close()
	full := func(d *db.DB) { dbtest.Fill(t, d) } // until the run's writer closes

	stop, logs := startRunLogged(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint, stopTimeout: 300 * time.Millisecond, beatEvery: 20 * time.Millisecond, onOpen: full})
	r, err := db.OpenReader(ctx, cfg.Database.Path)
	is.NoErr(err)
	defer r.Close()
	th := status.Thresholds{StaleAfter: time.Hour, DownWarn: time.Hour, DownCrit: 2 * time.Hour}
	eventually(t, "the service to report a full disk", 30*time.Second, func() bool {
		rep, err := status.Gather(ctx, r, th, time.Now())
		return err == nil && rep.Service.DiskFull
	})
	began := time.Now()
	err = stop()
	took := time.Since(began)
	t.Logf("stopped in %s: %v", took, err)
	is.True(errors.Is(err, ingest.ErrUncommitted))
	var ee *exitError
	is.True(!errors.As(err, &ee)) // exit 1, a failure at run time
	is.True(strings.Contains(err.Error(), "next start"))
	is.True(took < 5*time.Second) // the stop timeout, not the disk, decides
	is.True(strings.Contains(logs.String(), "disk_full=true"))
	is.Equal(cursorOf(t, cfg.Database.Path), int64(0)) // the cursor did not move

	truth := s.Truth() // a start with room again
	stop, _ = startRunLogged(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint})
	waitCursor(t, cfg.Database.Path, truth.LastTimepoint, 60*time.Second)
	is.NoErr(stop())
	checkTruth(t, cfg.Database.Path, truth) // nothing lost
}
