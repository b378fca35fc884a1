package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/feed"
	"github.com/chwatch/chwatch/feed/feedtest"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSFeedSurvivesSIGKILL runs the real `chwatch run` against the
// simulator with feed.nats_url pointing at a real nats-server, SIGKILLs it
// while messages wait in the outbox, and restarts it: the JetStream stream
// ends holding every status change exactly once, in status_changes order,
// and every officer replacement once. scripts/test-nats installs
// nats-server and runs it.
func TestNATSFeedSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("a real nats-server and two chwatch runs: several seconds")
	}
	url := feedtest.NATSServer(t)
	is := is.New(t)
	bin := buildBinary(t)
	first := int64(sim.DefaultFirstTimepoint)
	s, err := sim.New(sim.Config{Seed: 91, Companies: 20000, Events: 30000, Backlog: 24000, Rate: 2000, Heartbeat: 100 * time.Millisecond,
		APIKey: e2eAPIKey, APIRateLimit: 1000, APIRateWindow: time.Second})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "chwatch.db")
	const subject = "chwatch.changes"
	env := append(os.Environ(), "CHWATCH_CONFIG=", "CHWATCH_STREAM_URL="+srv.URL, "CHWATCH_API_URL="+srv.URL,
		"CHWATCH_STREAM_KEY=nats-test", "CHWATCH_API_KEY="+e2eAPIKey, "CHWATCH_API_RATE_LIMIT=1000", "CHWATCH_API_RATE_WINDOW=1s",
		"CHWATCH_STRIKE_OFF_CONFIRM_EXIT=stream", "CHWATCH_HTTP_LISTEN=", "CHWATCH_LOG_FORMAT=json",
		"CHWATCH_FEED_NATS_URL="+url, "CHWATCH_FEED_NATS_SUBJECT="+subject)
	start := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		f, err := os.Create(filepath.Join(dir, name+".log"))
		is.NoErr(err)
		cmd.Stdout, cmd.Stderr = f, f
		is.NoErr(cmd.Start())
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); f.Close() })
		return cmd
	}
	nc, err := nats.Connect(url)
	is.NoErr(err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	is.NoErr(err)
	stored := func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, feed.StreamName)
		if err != nil {
			return 0
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}

	run := start("run-1", "--db", dbPath, "run", "--start-timepoint", fmt.Sprint(first))
	// Kill while delivering: some messages are in the stream, more wait
	// in the outbox.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := stored()
		if n >= 200 && int64(n)+50 < changesIn(t, dbPath) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never caught the feed mid-delivery: %d messages stored, %d changes written", n, changesIn(t, dbPath))
		}
		time.Sleep(2 * time.Millisecond)
	}
	is.NoErr(run.Process.Signal(syscall.SIGKILL))
	run.Wait()
	atKill := stored()
	t.Logf("SIGKILL with %d messages in the stream, %d status changes written; %d beyond the saved position will be sent again",
		atKill, changesIn(t, dbPath), int64(atKill)-deliveredID(t, dbPath))

	run = start("run-2", "--db", dbPath, "run")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	is.NoErr(s.WaitPublished(ctx, s.Truth().LastTimepoint))
	waitCursor(t, dbPath, s.Truth().LastTimepoint, 60*time.Second)
	// REST answers write changes too (a company the API no longer has
	// leaves strike-off): wait for them, so that the end is still.
	waitDrained(t, dbPath, 60*time.Second)
	deadline = time.Now().Add(60 * time.Second)
	for subjectCount(t, js, subject) < changesIn(t, dbPath) {
		if time.Now().After(deadline) {
			t.Fatalf("the stream holds %d changes, the database %d", subjectCount(t, js, subject), changesIn(t, dbPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	is.NoErr(run.Process.Signal(syscall.SIGTERM))
	is.NoErr(run.Wait())

	got := subjectIDs(t, js, subject)
	want := changeIDs(t, dbPath)
	if len(got) != len(want) {
		t.Logf("stream: %d, first %v last %v; database: %d, first %v last %v; NATS position %d", len(got), got[:3], got[len(got)-3:], len(want), want[:3], want[len(want)-3:], deliveredID(t, dbPath))
	}
	is.Equal(len(got), len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stream message %d is %s, want %s (every change once, in order)", i, got[i], want[i])
		}
	}
	officers := subjectIDs(t, js, subject+".officers")
	seen := map[string]bool{}
	for _, id := range officers {
		if seen[id] {
			t.Errorf("officer replacement %s stored twice", id)
		}
		seen[id] = true
	}
	t.Logf("%d status changes and %d officer replacements in the stream, each once", len(got), len(officers))
	is.True(len(officers) > 0)
}

// deliveredID is the NATS sink's saved position (messages up to it are
// never sent again).
func deliveredID(t *testing.T, path string) int64 {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var id int64
	d.R.QueryRow("SELECT delivered_id FROM feed_sinks WHERE name = 'nats'").Scan(&id)
	return id
}

func changesIn(t *testing.T, path string) int64 {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		return 0
	}
	defer d.Close()
	var n int64
	d.R.QueryRow("SELECT count(*) FROM status_changes").Scan(&n)
	return n
}

func changeIDs(t *testing.T, path string) []string {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.R.Query("SELECT id FROM status_changes ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("change-%d", id))
	}
	return out
}

// subjectCount is how many messages the CHWATCH stream holds on subject.
func subjectCount(t *testing.T, js jetstream.JetStream, subject string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, feed.StreamName)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0
	}
	return int64(info.State.Subjects[subject])
}

// subjectIDs reads the message_id of every message of the CHWATCH stream
// on subject, in stream order, checking each against its Nats-Msg-Id.
func subjectIDs(t *testing.T, js jetstream.JetStream, subject string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, feed.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get stream message %d: %v", seq, err)
		}
		if m.Subject != subject {
			continue
		}
		var body struct {
			ID string `json:"message_id"`
		}
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatal(err)
		}
		if h := m.Header.Get(jetstream.MsgIDHeader); h != body.ID {
			t.Errorf("stream message %d: Nats-Msg-Id %q, body %q", seq, h, body.ID)
		}
		out = append(out, body.ID)
	}
	return out
}
