package app

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/logging/logtest"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

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

// A full faulty run: the stream answers 401 every other connect, cuts
// lines, answers 5xx and 429, sends bad and oversized lines and duplicates,
// refuses the cursor's timepoint (a 416 gap), the disk fills up and empties,
// and the webhook fails its first post; the REST API answers 5xx bursts,
// slow answers and 403s, so the breaker opens. /metrics carries SPEC.md's
// metrics, /healthz answers, alerts arrive, officers are stored; and no key,
// nor the webhook URL or its token, appears anywhere: logs (through run's
// own logger), metrics, health, status, config show, alert test,
// service_state, api_budget, jobs, exports, the webhook's bodies.
func TestMetricsHealthAndSecrets(t *testing.T) {
	is := is.New(t)
	const streamKey, apiKey = "STREAMKEY-d3adb33f", "APIKEY-c0ffee42"
	s, err := sim.New(sim.Config{Seed: 9, Companies: 200, Backlog: 2000, Rate: 300, Retention: 500, Heartbeat: 50 * time.Millisecond,
		StreamKey: streamKey, Faults: sim.Faults{Status401Every: 2, CutEvery: 150, Status5xxEvery: 5, Status429Every: 7,
			NotJSONEvery: 97, OversizeEvery: 211, OversizeBytes: 100 << 10, ReplayEvery: 50},
		APIKey: apiKey, APIRateLimit: 1000, APIRateWindow: time.Second,
		API: sim.APIFaults{Status5xxEvery: 23, Status5xxBurst: 2, SlowEvery: 31, SlowFor: time.Second, Status403Every: 11}})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	hook := newWebhook(t, 1)
	consumer := newFeedConsumer(t)
	feedURL := consumer.URL + "/feed/" + feedToken
	cfg := testConfig(t, srv.URL)
	cfg.Stream.Key, cfg.API.Key = streamKey, apiKey
	cfg.Alert.WebhookURL = hook.url()
	cfg.Feed.WebhookURL = feedURL
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Log.Level, cfg.Log.Format = "debug", "json"
	cfg.API.RateLimit, cfg.API.RateWindow = 1000, config.Duration{Duration: time.Second}
	cfg.API.Timeout, cfg.API.ForbiddenWait = config.Duration{Duration: 200 * time.Millisecond}, config.Duration{Duration: 100 * time.Millisecond}
	cfg.Breaker.Failures, cfg.Breaker.OpenFor = 2, config.Duration{Duration: 100 * time.Millisecond}
	first := int64(sim.DefaultFirstTimepoint)
	d := openWriter(t, cfg.Database.Path)
	_, err = d.MigrateUp(context.Background(), time.Now())
	is.NoErr(err)
	// A cursor older than the simulator keeps: the resume is a 416.
	_, err = d.W.Exec(`INSERT INTO stream_cursor (stream, timepoint, url, updated_at) VALUES ('companies', ?, ?, '2026-11-20T10:00:00Z')`, first+10, srv.URL)
	is.NoErr(err)

	logs := &logtest.Buffer{}
	e := &env{stdout: logs, stderr: logs}
	log := e.logger(cfg)
	addr := make(chan string, 1)
	runDB := make(chan *db.DB, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runService(ctx, cfg, log, runOptions{beatEvery: 20 * time.Millisecond, restBackoff: 20 * time.Millisecond, feedBackoff: 20 * time.Millisecond,
			onListen: func(a string) { addr <- a }, onOpen: func(d *db.DB) { runDB <- d }})
	}()
	defer func() { // before the simulator closes, which waits for the stream connection
		cancel()
		if t.Failed() {
			ls := strings.Split(logs.String(), "\n")
			t.Logf("the run's last log lines:\n%s", strings.Join(ls[max(0, len(ls)-60):], "\n"))
		}
	}()
	base := "http://" + <-addr
	gapAlert := hook.wait(t, "gap", 0, func(m alert.Message) bool { return m.Kind == alert.Gap })
	waitCursor(t, cfg.Database.Path, first+2100, 30*time.Second) // live

	// The disk fills: commits fail until it empties.
	release := dbtest.Fill(t, <-runDB)
	hook.wait(t, "disk full", 0, func(m alert.Message) bool { return m.Kind == alert.DiskFull && m.Severity == alert.Critical })
	eventually(t, "3 failed commits", 30*time.Second, func() bool {
		_, m := get(t, base+"/metrics")
		return metricValue(m, "chwatch_apply_commit_failures_total") >= 3
	})
	code, fullHealth := get(t, base+"/healthz")
	is.Equal(code, 503)
	is.True(strings.Contains(fullHealth, "disk full"))
	release()
	d.Close()
	waitCursor(t, cfg.Database.Path, cursorOf(t, cfg.Database.Path)+300, 60*time.Second) // flowing again

	// The REST API goes down until the breaker opens; the REST side meets
	// its other faults and stores officers.
	s.Outage(time.Hour)
	hook.wait(t, "breaker open", 0, func(m alert.Message) bool { return m.Kind == alert.BreakerOpen })
	s.Outage(0)
	eventually(t, "officers stored after a 403", 30*time.Second, func() bool {
		_, m := get(t, base+"/metrics")
		return metricValue(m, `chwatch_api_requests_total{code="403"}`) > 0 && metricValue(m, `chwatch_jobs_total{kind="officers",result="done"}`) > 5
	})

	// The stream's faults include 401s, which are 503 too: healthy again
	// means 200 at some moment, not at this one.
	var health string
	eventually(t, "/healthz 200 after the disk emptied", 30*time.Second, func() bool {
		code, h := get(t, base+"/healthz")
		health = h
		return code == 200
	})
	is.True(strings.Contains(health, `"ok":true`))
	_, metrics := get(t, base+"/metrics")
	for _, name := range []string{"chwatch_stream_events_total{outcome=\"applied\"}", "chwatch_stream_connected",
		"chwatch_stream_reconnects_total{reason=\"401\"}", "chwatch_stream_timepoint", "chwatch_stream_lag_seconds",
		"chwatch_apply_batch_seconds", "chwatch_strike_off_transitions_total{change=\"entered_strike_off\"}",
		"chwatch_queue_depth{kind=\"officers\",state=\"queued\"}", "process_resident_memory_bytes", "go_goroutines",
		`chwatch_alerts_sent_total{kind="gap"}`, `chwatch_alert_active{kind="api_unauthorized"} 0`,
		`chwatch_api_requests_total{code="200"}`, "chwatch_api_budget_remaining", "chwatch_breaker_state",
		`chwatch_feed_delivered_total{sink="webhook"}`, `chwatch_feed_backlog{sink="webhook"}`, `chwatch_feed_failures_total{sink="webhook"}`, `chwatch_job_seconds_bucket{kind="officers"`, `chwatch_alerts_dropped_total{kind="api_forbidden"} 0`} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	is.True(metricValue(metrics, `chwatch_feed_failures_total{sink="webhook"}`) >= 3) // the consumer's first three answers
	environ := []string{"CHWATCH_STREAM_KEY=" + streamKey, "CHWATCH_API_KEY=" + apiKey, "CHWATCH_ALERT_WEBHOOK_URL=" + hook.url(), "CHWATCH_FEED_WEBHOOK_URL=" + feedURL}
	var out, errOut strings.Builder
	cmd := &env{stdout: &out, stderr: &errOut, environ: environ}
	cmd.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status", "--json"})
	cmd.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status"})
	cmd.run(context.Background(), []string{"chwatch", "config", "show"})
	cmd.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "export", "officers"})
	cmd.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "queue", "status"})
	is.Equal(cmd.run(context.Background(), []string{"chwatch", "alert", "test"}), 0)
	cancel()
	is.NoErr(<-done)
	flushLog(log)
	r := openWriter(t, cfg.Database.Path)
	defer r.Close()
	var state strings.Builder
	rows, err := r.R.Query(`SELECT key || '=' || value FROM service_state
		UNION ALL SELECT key_id || ' ' || coalesce(pause_reason, '') || ' ' || coalesce(refused, '') || ' ' || writer FROM api_budget
		UNION ALL SELECT coalesce(last_error, '') FROM jobs
		UNION ALL SELECT name || ' ' || coalesce(last_error, '') FROM feed_sinks`)
	is.NoErr(err)
	for rows.Next() {
		var kv string
		rows.Scan(&kv)
		state.WriteString(kv + "\n")
	}
	rows.Close()

	// The faults happened and were logged, once per change.
	l := logs.String()
	for _, want := range []string{"stream key refused (401)", "HTTP 50", "HTTP 429", "rejected stream line", "stream gap 1:",
		"disk full: chwatch cannot commit", "resolved after", `"repeated":`} {
		if !strings.Contains(l, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if n := strings.Count(l, "commit batch failed"); n >= 3 {
		t.Errorf("%d lines of commit batch failed for the same full disk: want the first and a count", n)
	}
	is.True(strings.Contains(gapAlert.Text, "timepoints 47000011 to"))
	hook.wait(t, "disk space back", 0, func(m alert.Message) bool { return m.Kind == alert.DiskFull && m.Resolved })
	hook.mu.Lock()
	bodies := hook.raw.String()
	hook.mu.Unlock()

	all := l + health + fullHealth + metrics + out.String() + errOut.String() + state.String() + bodies
	is.True(strings.Contains(state.String(), "rest_workers="))           // the REST side reported
	is.True(strings.Contains(state.String(), "webhook deliver change-")) // the feed's failures were recorded
	t.Logf("feed consumer: %d posts, %d accepted", consumer.posts, consumer.accepted())
	is.True(consumer.accepted() > 0) // and it delivered after them
	is.True(strings.Contains(out.String(), "company_number,company_name,officer_id"))
	for _, secret := range []string{streamKey, apiKey, base64.StdEncoding.EncodeToString([]byte(streamKey + ":")),
		base64.StdEncoding.EncodeToString([]byte(apiKey + ":")), hookToken, hook.url(), hook.srv.URL + "/services/",
		feedToken, feedURL, consumer.URL + "/feed/"} {
		if strings.Contains(all, secret) {
			t.Errorf("secret %q leaked", secret)
		}
	}
}

// feedToken is the secret in the feed webhook's URL.
const feedToken = "F33D-t0ken-5ecret"

// feedConsumer is a change feed webhook that drops the first connection
// (the client's error then quotes the URL) and answers 500 twice, then
// takes every message.
type feedConsumer struct {
	*httptest.Server
	mu    sync.Mutex
	posts int
	ok    int
}

func newFeedConsumer(t *testing.T) *feedConsumer {
	c := &feedConsumer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		c.mu.Lock()
		c.posts++
		n := c.posts
		if n > 3 {
			c.ok++
		}
		c.mu.Unlock()
		switch {
		case n == 1:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case n <= 3:
			http.Error(w, "try later", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *feedConsumer) accepted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok
}

// metricValue reads an unlabelled metric from Prometheus text (-1 if absent).
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
