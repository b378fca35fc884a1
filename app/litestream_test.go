package app

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// TestLitestreamRestore proves chwatch and Litestream get along: `chwatch
// run` with database.checkpoints = external is replicated by `litestream
// replicate` to a file replica and SIGKILLed mid-stream; Litestream stops
// after its final sync; `litestream restore` writes a new file, which holds
// exactly what had committed (integrity ok, the cursor and rows of the
// killed database, counters that match their rows); and chwatch resumes on
// it with nothing lost and nothing applied twice (the database ends equal to
// the simulator's truth). It needs the litestream binary:
// scripts/test-litestream installs it and sets CHWATCHTEST_LITESTREAM.
func TestLitestreamRestore(t *testing.T) {
	lt := os.Getenv("CHWATCHTEST_LITESTREAM")
	if lt == "" {
		t.Skip("CHWATCHTEST_LITESTREAM is not set: scripts/test-litestream installs Litestream and runs this test")
	}
	is := is.New(t)
	bin := buildBinary(t)
	first := int64(sim.DefaultFirstTimepoint)
	s, err := sim.New(sim.Config{Seed: 77, Companies: 2000, Events: 8000, Backlog: 3000, Rate: 500, Heartbeat: 100 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	dir := t.TempDir()
	dbPath, replica, restored := filepath.Join(dir, "chwatch.db"), filepath.Join(dir, "replica"), filepath.Join(dir, "restored", "chwatch.db")
	is.NoErr(os.Mkdir(filepath.Dir(restored), 0o750))
	ltConfig := filepath.Join(dir, "litestream.yml")
	// Checkpoints every 100 pages (the default is 1000): several happen
	// while chwatch writes.
	is.NoErr(os.WriteFile(ltConfig, []byte(fmt.Sprintf(`dbs:
  - path: %s
    monitor-interval: 100ms
    min-checkpoint-page-count: 100
    replica:
      type: file
      path: %s
      sync-interval: 200ms
`, dbPath, replica)), 0o600))
	env := append(os.Environ(), "CHWATCH_CONFIG=", "CHWATCH_STREAM_URL="+srv.URL, "CHWATCH_API_URL="+srv.URL,
		"CHWATCH_STREAM_KEY=litestream-test", "CHWATCH_STRIKE_OFF_CONFIRM_EXIT=stream", "CHWATCH_HTTP_LISTEN=",
		"CHWATCH_DATABASE_CHECKPOINTS=external", "CHWATCH_LOG_FORMAT=json", "CHWATCH_STREAM_BATCH_MAX_EVENTS=200")
	start := func(name string, cmd *exec.Cmd) (*exec.Cmd, string) {
		logPath := filepath.Join(dir, name+".log")
		f, err := os.Create(logPath)
		is.NoErr(err)
		cmd.Stdout, cmd.Stderr = f, f
		is.NoErr(cmd.Start())
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); f.Close() })
		return cmd, logPath
	}
	runCmd := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Env = env
		return c
	}

	run, _ := start("run-1", runCmd("--db", dbPath, "run", "--start-timepoint", fmt.Sprint(first)))
	waitCursor(t, dbPath, first+100, 30*time.Second)
	rep, ltLog := start("litestream", exec.Command(lt, "replicate", "-config", ltConfig))
	defer func() { b, _ := os.ReadFile(ltLog); t.Logf("litestream log:\n%s", b) }()
	// Well into the live part (500 events a second), with Litestream
	// replicating all along.
	waitCursor(t, dbPath, first+5500, 60*time.Second)
	is.NoErr(run.Process.Signal(syscall.SIGKILL))
	run.Wait()
	// chwatch never checkpointed: what reached the database file from the
	// WAL, Litestream put there.
	st, err := os.Stat(dbPath)
	is.NoErr(err)
	t.Logf("database file %d bytes after Litestream's checkpoints", st.Size())
	is.True(st.Size() > 1<<20)
	source := snapshotOf(t, dbPath)
	t.Logf("killed run at cursor %d (%d events)", source.cursor, source.events)
	is.NoErr(rep.Process.Signal(syscall.SIGTERM)) // it syncs once more, then exits
	if err := rep.Wait(); err != nil {
		b, _ := os.ReadFile(ltLog)
		t.Fatalf("litestream replicate: %v\n%s", err, b)
	}

	out, err := exec.Command(lt, "restore", "-config", ltConfig, "-o", restored, dbPath).CombinedOutput()
	is.NoErr(err)
	t.Logf("litestream restore: %s", out)
	st, err = os.Stat(restored)
	is.NoErr(err)
	restoredMode := st.Mode().Perm()
	got := snapshotOf(t, restored)
	is.Equal(got.integrity, "ok")
	is.Equal(got, source) // everything that had committed before the last sync
	checkConsistent(t, restored)

	// chwatch resumes on the restored file: nothing lost, nothing twice.
	resumed, resumedLog := start("run-2", runCmd("--db", restored, "run"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	is.NoErr(s.WaitPublished(ctx, first+7999))
	truth := s.Truth()
	waitCursor(t, restored, truth.LastTimepoint, 60*time.Second)
	is.NoErr(resumed.Process.Signal(os.Interrupt))
	if err := resumed.Wait(); err != nil {
		b, _ := os.ReadFile(resumedLog)
		t.Fatalf("the resumed run did not stop cleanly: %v\n%s", err, b)
	}
	checkTruth(t, restored, truth)
	checkConsistent(t, restored)
	b, err := os.ReadFile(resumedLog)
	is.NoErr(err)
	for _, bad := range []string{"UNIQUE", "constraint failed", `"level":"ERROR"`} {
		if strings.Contains(string(b), bad) {
			t.Errorf("the resumed run logged %q:\n%s", bad, b)
		}
	}
	st, err = os.Stat(restored)
	is.NoErr(err)
	is.Equal(st.Mode().Perm()&^db.FileMode, os.FileMode(0)) // never world-readable
	if restoredMode&^db.FileMode != 0 {
		t.Logf("litestream restore created mode %04o; run set %04o", restoredMode, st.Mode().Perm())
		is.True(strings.Contains(string(b), "mode set to 0660"))
	}

	// The litestream.yml the docs hand out is one Litestream reads, for the
	// database deploy/ sets up.
	out, err = exec.Command(lt, "databases", "-config", "../deploy/litestream.yml").CombinedOutput()
	is.NoErr(err)
	is.True(strings.Contains(string(out), "/var/lib/chwatch/chwatch.db"))
}

// dbSnapshot is what a restore must reproduce of a database.
type dbSnapshot struct {
	integrity                            string
	cursor, events, minTP, maxTP         int64
	companies, changes, jobs, maxSeq     int64
	companiesCounter, strikeOffCounter   int64
	strikeOff, pendingCounter, pending   int64
	appliedCounter, applied, unappliedTP int64
}

func snapshotOf(t *testing.T, path string) dbSnapshot {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var s dbSnapshot
	q := func(dst *int64, query string) {
		if err := d.R.QueryRow(query).Scan(dst); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	if err := d.R.QueryRow("PRAGMA integrity_check").Scan(&s.integrity); err != nil {
		t.Fatal(err)
	}
	q(&s.cursor, "SELECT timepoint FROM stream_cursor WHERE stream = 'companies'")
	q(&s.events, "SELECT count(*) FROM stream_events")
	q(&s.minTP, "SELECT min(timepoint) FROM stream_events")
	q(&s.maxTP, "SELECT max(timepoint) FROM stream_events")
	q(&s.companies, "SELECT count(*) FROM companies")
	q(&s.changes, "SELECT count(*) FROM status_changes")
	q(&s.jobs, "SELECT count(*) FROM jobs")
	q(&s.maxSeq, "SELECT max(change_seq) FROM companies")
	q(&s.companiesCounter, "SELECT value FROM counters WHERE name = 'companies'")
	q(&s.strikeOffCounter, "SELECT value FROM counters WHERE name = 'strike_off'")
	q(&s.strikeOff, "SELECT count(*) FROM strike_off_companies")
	q(&s.pendingCounter, "SELECT coalesce((SELECT value FROM counters WHERE name = 'jobs_pending'), 0)")
	q(&s.pending, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
	q(&s.appliedCounter, "SELECT coalesce((SELECT value FROM counters WHERE name = 'events_applied'), 0)")
	q(&s.applied, "SELECT count(*) FROM stream_events WHERE outcome = 'applied'")
	// An applied event whose company does not hold its version or a later
	// one: the event row committed without its change.
	q(&s.unappliedTP, `SELECT count(*) FROM stream_events e WHERE e.outcome = 'applied' AND e.event_type = 'changed'
		AND NOT EXISTS (SELECT 1 FROM companies c WHERE c.company_number = e.resource_id AND c.source_timepoint >= e.timepoint)`)
	return s
}

// checkConsistent checks that a database is whole: every timepoint from the
// first to the cursor recorded once, counters equal to the rows they count,
// every applied event's change in its company.
func checkConsistent(t *testing.T, path string) {
	t.Helper()
	s := snapshotOf(t, path)
	is := is.NewRelaxed(t)
	is.Equal(s.integrity, "ok")
	is.Equal(s.maxTP, s.cursor)
	is.Equal(s.events, s.maxTP-s.minTP+1) // no hole, nothing twice
	is.Equal(s.companiesCounter, s.companies)
	is.Equal(s.strikeOffCounter, s.strikeOff)
	is.Equal(s.pendingCounter, s.pending)
	is.Equal(s.appliedCounter, s.applied)
	is.Equal(s.unappliedTP, int64(0))
}
