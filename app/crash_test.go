package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chwatch/chwatch/sim"
)

// buildBinary builds chwatch once for the tests that run it as a process.
func buildBinary(t *testing.T) string {
	t.Helper()
	if os.Getenv("CHWATCHTEST_NO_EXEC") != "" {
		t.Skip("CHWATCHTEST_NO_EXEC: this platform cannot start child processes (qemu without binfmt_misc)")
	}
	bin := filepath.Join(t.TempDir(), "chwatch")
	cmd := exec.Command("go", "build", "-o", bin, "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build chwatch: %v\n%s", err, out)
	}
	return bin
}

// TestCrashRecovery SIGKILLs the real `chwatch run` at random moments and
// restarts it; the database must end equal to the simulator's truth: nothing
// lost, nothing applied twice. CHWATCHTEST_CRASH_SEED replays a failure;
// CHWATCHTEST_CRASH_KILLS sets the number of kills (make soak: 100).
func TestCrashRecovery(t *testing.T) {
	bin := buildBinary(t)
	kills := 20
	if testing.Short() {
		kills = 5
	}
	if n, err := strconv.Atoi(os.Getenv("CHWATCHTEST_CRASH_KILLS")); err == nil {
		kills = n
	}
	seed := time.Now().UnixNano()
	if s, err := strconv.ParseInt(os.Getenv("CHWATCHTEST_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("crash test seed %d (rerun with CHWATCHTEST_CRASH_SEED=%d), %d kills", seed, seed, kills)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	events := 4000 * kills
	s, err := sim.New(sim.Config{Seed: seed, Companies: 2000, Events: events, Backlog: events, Heartbeat: 100 * time.Millisecond,
		Faults: sim.Faults{CutEvery: 5003, ReplayEvery: 997, NotJSONEvery: 1999}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	truth := s.Truth()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "chwatch.db")
	env := append(os.Environ(),
		"CHWATCH_CONFIG=", "CHWATCH_STREAM_URL="+srv.URL, "CHWATCH_API_URL="+srv.URL,
		"CHWATCH_STREAM_KEY=crash", "CHWATCH_STRIKE_OFF_CONFIRM_EXIT=stream", "CHWATCH_HTTP_LISTEN=",
		"CHWATCH_STREAM_BACKOFF_MIN=5ms", "CHWATCH_STREAM_BACKOFF_MAX=50ms", "CHWATCH_STREAM_BATCH_MAX_EVENTS=300",
		"CHWATCH_LOG_LEVEL=warn")
	// The first run starts at the simulator's first timepoint; later ones
	// resume from the cursor. A cursor may be at most that old.
	for i := range kills {
		cmd := exec.Command(bin, "--db", dbPath, "run")
		cmd.Env = env
		log, _ := os.Create(filepath.Join(dir, fmt.Sprintf("run-%02d.log", i)))
		cmd.Stdout, cmd.Stderr = log, log
		if i == 0 {
			seedCursor(t, bin, dbPath, srv.URL, env)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wait := time.Duration(50+rng.IntN(400)) * time.Millisecond
		time.Sleep(wait) // the kill moment is the random input here, not a wait for a condition
		cmd.Process.Signal(os.Kill)
		cmd.Wait()
		log.Close()
		t.Logf("kill %d after %s: cursor %d of %d", i+1, wait, cursorOf(t, dbPath), truth.LastTimepoint)
	}
	// A last run that is allowed to finish.
	cmd := exec.Command(bin, "--db", dbPath, "run")
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The kills may have left the cursor at the end already: wait for this
	// process too, or the interrupt may reach it before its handler is set.
	waitServing(t, dbPath, cmd.Process.Pid, 60*time.Second)
	waitCursor(t, dbPath, truth.LastTimepoint, 120*time.Second)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v (want exit 0)", err)
	}
	checkTruth(t, dbPath, truth)
}

// seedCursor migrates the database and places the cursor just before the
// simulator's first timepoint, so the first run replays the whole log.
func seedCursor(t *testing.T, bin, dbPath, url string, env []string) {
	t.Helper()
	cmd := exec.Command(bin, "--db", dbPath, "migrate", "up")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	d := openWriter(t, dbPath)
	defer d.Close()
	_, err := d.W.ExecContext(context.Background(), "INSERT INTO stream_cursor (stream, timepoint, url, updated_at) VALUES ('companies', ?, ?, '2026-01-01T00:00:00Z')",
		sim.DefaultFirstTimepoint-1, url)
	if err != nil {
		t.Fatal(err)
	}
}
