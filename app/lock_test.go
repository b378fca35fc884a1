package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// shortLockWait stands for the 10 s a real command waits for the lock.
const shortLockWait = 100 * time.Millisecond

// Every schema change takes the instance lock `run` holds: `migrate down`
// on a live database is refused naming run's pid and changes nothing, and
// when nothing runs it backs up first, like `migrate up`.
func TestSchemaChangesTakeTheRunLock(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 7, Companies: 100, Events: 200, Backlog: 200, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint, lockWait: shortLockWait})
	waitCursor(t, cfg.Database.Path, sim.DefaultFirstTimepoint+199, 30*time.Second)
	before, _ := schemaVersion(t, cfg.Database.Path)

	pid := "held by pid " + strconv.Itoa(os.Getpid()) // run is in this process
	code, stdout, stderr := runLocked(t, cfg.Database.Path, "migrate", "down")
	is.Equal(code, ExitFailure)
	is.True(strings.Contains(stderr, pid))
	is.True(!strings.Contains(stdout, "undid"))
	after, v := schemaVersion(t, cfg.Database.Path)
	is.Equal(v, db.Latest()) // nothing was undone
	is.Equal(after, before)
	baks, _ := filepath.Glob(cfg.Database.Path + ".v*.bak")
	is.Equal(len(baks), 0) // and nothing backed up for a refused change

	// Nothing to apply is no schema change: it answers beside run.
	code, stdout, _ = runLocked(t, cfg.Database.Path, "migrate", "up")
	is.Equal(code, ExitOK)
	is.True(strings.Contains(stdout, "nothing to do"))
	is.NoErr(stop())

	code, stdout, stderr = runLocked(t, cfg.Database.Path, "migrate", "down")
	is.Equal(code, ExitOK)
	is.True(strings.Contains(stdout, "backed up "))
	is.True(strings.Contains(stdout, fmt.Sprintf("undid migration %04d", db.Latest())))
	_ = stderr
}

// A migration that import or migrate up would apply waits for the lock and
// then refuses naming the holder, before the schema changes.
func TestMigrationWaitsForTheLock(t *testing.T) {
	ctx := context.Background()
	quirks, err := filepath.Abs("../bulk/testdata/quirks.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"migrate", "up"}, {"import", "--as-of", "2026-11-01", "--no-progress", quirks}} {
		t.Run(args[0], func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "chwatch.db")
			l, err := db.Lock(ctx, path, 0, nil)
			is.NoErr(err)
			start := time.Now()
			code, _, stderr := runLocked(t, path, args...)
			is.Equal(code, ExitFailure)
			is.True(time.Since(start) >= shortLockWait) // it waited
			is.True(strings.Contains(stderr, "waiting up to "))
			is.True(strings.Contains(stderr, "held by pid "+strconv.Itoa(os.Getpid())))
			_, v := schemaVersion(t, path)
			is.Equal(v, 0) // nothing migrated
			is.NoErr(l.Unlock())

			code, _, stderr = runLocked(t, path, args...)
			is.Equal(code, ExitOK)
			_, v = schemaVersion(t, path)
			is.Equal(v, db.Latest())
		})
	}
}

// The lock belongs to the database file: a second run through a symbolic
// link is refused, and a hard-linked database is refused outright.
func TestSecondRunThroughAnotherName(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 8, Companies: 100, Events: 100, Backlog: 100, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint})
	waitCursor(t, cfg.Database.Path, sim.DefaultFirstTimepoint+99, 30*time.Second)
	defer stop()

	link := filepath.Join(t.TempDir(), "link.db")
	is.NoErr(os.Symlink(cfg.Database.Path, link))
	viaLink := *cfg
	viaLink.Database.Path = link
	// Before the lock followed the file this second run ran beside the
	// first: bound it, so the test fails rather than hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err = runService(ctx, &viaLink, log, runOptions{lockWait: shortLockWait})
	is.True(errors.Is(err, db.ErrLocked))
	is.True(strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())))

	hard := filepath.Join(filepath.Dir(cfg.Database.Path), "hard.db")
	is.NoErr(os.Link(cfg.Database.Path, hard))
	defer os.Remove(hard)
	viaHard := *cfg
	viaHard.Database.Path = hard
	err = runService(ctx, &viaHard, log, runOptions{lockWait: shortLockWait})
	is.True(errors.Is(err, db.ErrHardLinked))
	is.True(strings.Contains(err.Error(), "2 hard links"))
}

// runLocked runs chwatch --db path args with the short lock wait.
func runLocked(t *testing.T, path string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	e := &env{stdout: &out, stderr: &errb, environ: []string{"CHWATCH_LOG_LEVEL=warn"}, lockWait: shortLockWait}
	code := e.run(context.Background(), append([]string{"chwatch", "--db", path}, args...))
	return code, out.String(), errb.String()
}

// schemaVersion returns the schema and version of the database at path.
func schemaVersion(t *testing.T, path string) (string, int) {
	t.Helper()
	ctx := context.Background()
	d, err := db.OpenReader(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := db.Schema(ctx, d.R)
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.Version(ctx, d.R)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}
