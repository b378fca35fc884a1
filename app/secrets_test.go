package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /metrics carries SPEC.md's metrics and /healthz answers 200 while
// streaming; keys appear nowhere: not in logs, metrics, health, status,
// config show or service_state, even while the stream answers 401.
func TestMetricsHealthAndSecrets(t *testing.T) {
	is := is.New(t)
	const streamKey, apiKey = "STREAMKEY-d3adb33f", "APIKEY-c0ffee42"
	s, err := sim.New(sim.Config{Seed: 9, Companies: 200, Events: 500, Backlog: 500, Heartbeat: 50 * time.Millisecond,
		StreamKey: streamKey, Faults: sim.Faults{Status401Every: 2, CutEvery: 150}})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	cfg.Stream.Key, cfg.API.Key = streamKey, apiKey
	cfg.HTTP.Listen = "127.0.0.1:0"
	logs := &lockedBuffer{}
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- runService(ctx, cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			runOptions{startFrom: sim.DefaultFirstTimepoint, onListen: func(a string) { addr <- a }})
	}()
	base := "http://" + <-addr
	waitCursor(t, cfg.Database.Path, sim.DefaultFirstTimepoint+499, 30*time.Second)

	code, health := get(t, base+"/healthz")
	is.Equal(code, 200)
	is.True(strings.Contains(health, `"ok":true`))
	_, metrics := get(t, base+"/metrics")
	for _, name := range []string{"chwatch_stream_events_total{outcome=\"applied\"}", "chwatch_stream_connected",
		"chwatch_stream_reconnects_total{reason=\"401\"}", "chwatch_stream_timepoint", "chwatch_stream_lag_seconds",
		"chwatch_apply_batch_seconds", "chwatch_strike_off_transitions_total{change=\"entered_strike_off\"}",
		"chwatch_queue_depth{kind=\"officers\",state=\"queued\"}", "process_resident_memory_bytes", "go_goroutines"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut, environ: []string{"CHWATCH_STREAM_KEY=" + streamKey, "CHWATCH_API_KEY=" + apiKey}}
	e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status", "--json"})
	e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status"})
	e.run(context.Background(), []string{"chwatch", "config", "show"})
	cancel()
	is.NoErr(<-done)
	d := openWriter(t, cfg.Database.Path)
	defer d.Close()
	var state strings.Builder
	rows, err := d.R.Query("SELECT key || '=' || value FROM service_state")
	is.NoErr(err)
	for rows.Next() {
		var kv string
		rows.Scan(&kv)
		state.WriteString(kv + "\n")
	}
	rows.Close()

	all := logs.String() + health + metrics + out.String() + errOut.String() + state.String()
	is.True(strings.Contains(logs.String(), "401")) // the 401s happened and were logged
	for _, secret := range []string{streamKey, apiKey, base64.StdEncoding.EncodeToString([]byte(streamKey + ":"))} {
		if strings.Contains(all, secret) {
			t.Errorf("secret %q leaked", secret)
		}
	}
}
