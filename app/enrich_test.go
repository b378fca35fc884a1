package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

const e2eAPIKey = "e2e-api-key-5ca1ab1e"

// restConfig is testConfig with the REST workers on, time constants
// scaled down: windowed at limit per window like the simulator.
func restConfig(t *testing.T, url string, limit int, window time.Duration) *config.Config {
	t.Helper()
	cfg := testConfig(t, url)
	cfg.API.Key = e2eAPIKey
	cfg.API.RateLimit, cfg.API.RateWindow = limit, config.Duration{Duration: window}
	cfg.API.Timeout = config.Duration{Duration: 250 * time.Millisecond}
	cfg.Breaker.Failures, cfg.Breaker.OpenFor = 3, config.Duration{Duration: 200 * time.Millisecond}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// restPending is how many jobs the REST workers run are queued or running.
func restPending(t *testing.T, path string) int64 {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	depth, err := queue.Depths(context.Background(), d.R)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []queue.Kind{queue.StatusCheck, queue.SweepCheck, queue.Officers}
	return depth.Sum(queue.StateQueued, kinds...) + depth.Sum(queue.StateRunning, kinds...)
}

// dumpJobsOnFailure logs the pending jobs when the test fails.
func dumpJobsOnFailure(t *testing.T, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		d, err := db.OpenReader(context.Background(), path)
		if err != nil {
			return
		}
		defer d.Close()
		rows, err := d.R.Query("SELECT id, kind, company_number, state, attempts, run_after, coalesce(last_error, '') FROM jobs WHERE state IN ('queued', 'running', 'dead') ORDER BY id LIMIT 30")
		if err != nil {
			return
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var kind, num, state, runAfter, last string
			var attempts int
			rows.Scan(&id, &kind, &num, &state, &attempts, &runAfter, &last)
			t.Logf("job %d %s %s %s attempts %d run_after %s: %s", id, kind, num, state, attempts, runAfter, last)
		}
	})
}

// waitDrained waits until no REST job is pending, or fails after within.
func waitDrained(t *testing.T, path string, within time.Duration) {
	t.Helper()
	end := time.Now().Add(within)
	for n := restPending(t, path); n > 0; n = restPending(t, path) {
		if time.Now().After(end) {
			t.Fatalf("%d REST jobs still pending after %s", n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOfficers compares the officers of every strike-off company with the
// simulator's truth, and finds none elsewhere; it returns how many
// companies and officers it compared.
func checkOfficers(t *testing.T, path string, s *sim.Sim) (companies, officers int) {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stored := map[string][]string{}
	rows, err := d.R.Query("SELECT company_number, officer_id FROM officers ORDER BY company_number, officer_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n, id string
		rows.Scan(&n, &id)
		stored[n] = append(stored[n], id)
	}
	rows.Close()
	rows, err = d.R.Query("SELECT company_number FROM strike_off_companies")
	if err != nil {
		t.Fatal(err)
	}
	var numbers []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		numbers = append(numbers, n)
	}
	rows.Close()
	for _, n := range numbers {
		var want []string
		for _, o := range s.Officers(n).Officers {
			want = append(want, o.AppointmentID)
		}
		sort.Strings(want)
		if got := stored[n]; !slices.Equal(got, want) {
			t.Errorf("company %s: %d officers stored, the simulator has %d", n, len(got), len(want))
		}
		officers += len(want)
		delete(stored, n)
	}
	for n, ids := range stored {
		t.Errorf("company %s is not in strike-off but has %d officers", n, len(ids))
	}
	var dead int
	d.R.QueryRow("SELECT count(*) FROM jobs WHERE state = 'dead'").Scan(&dead)
	if dead != 0 {
		t.Errorf("%d dead jobs", dead)
	}
	return len(numbers), officers
}

// `chwatch run` with an API key fetches the officers of every company in
// strike-off and confirms hybrid exits through the API, against a
// simulator whose REST side answers 5xx bursts, slow answers (timeouts),
// paged lists repeating items, and goes down for a while: the breaker
// opens, alerts, probes and closes; status tells the REST side; afterwards
// every strike-off company has exactly its officers and no job is dead or
// pending.
func TestEnrichEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("several seconds against the simulator")
	}
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 31, Companies: 500, Events: 2500, Backlog: 2500, Heartbeat: 50 * time.Millisecond,
		StreamKey: "e2e-stream-key", APIKey: e2eAPIKey, APIRateLimit: 100, APIRateWindow: time.Second,
		API: sim.APIFaults{Status5xxEvery: 70, Status5xxBurst: 2, SlowEvery: 113, SlowFor: time.Second, PageCap: 35, OverlapPages: true}})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the run stops: it holds a stream connection
	hook := newWebhook(t, 0)
	cfg := restConfig(t, srv.URL, 100, time.Second)
	cfg.StrikeOff.ConfirmExit = "api"
	cfg.Alert.WebhookURL = hook.url()
	cfg.HTTP.Listen = "127.0.0.1:0"
	truth := s.Truth()
	dumpJobsOnFailure(t, cfg.Database.Path)
	addr := make(chan string, 1)
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint, alertEvery: 10 * time.Millisecond,
		restBackoff: 20 * time.Millisecond, beatEvery: 20 * time.Millisecond, onListen: func(a string) { addr <- a }})
	base := "http://" + <-addr
	eventually(t, "officers arriving", 30*time.Second, func() bool {
		_, m := get(t, base+"/metrics")
		return strings.Contains(m, `chwatch_jobs_total{kind="officers",result="done"}`) &&
			!strings.Contains(m, `chwatch_jobs_total{kind="officers",result="done"} 0`)
	})
	t.Logf("%d REST jobs pending at the outage", restPending(t, cfg.Database.Path))
	// The API is dead until the breaker has opened (each call tries twice,
	// a second apart), then back.
	s.Outage(time.Hour)
	hook.wait(t, "breaker open", 0, func(m alert.Message) bool { return m.Kind == alert.BreakerOpen && !m.Resolved })
	s.Outage(0)
	hook.wait(t, "breaker closed", 0, func(m alert.Message) bool { return m.Kind == alert.BreakerOpen && m.Resolved })
	waitCursor(t, cfg.Database.Path, truth.LastTimepoint, 60*time.Second)
	waitDrained(t, cfg.Database.Path, 60*time.Second)
	eventually(t, "every filing check run", 60*time.Second, func() bool { return filingsSettled(t, cfg.Database.Path) })

	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut}
	code := e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status", "--json"})
	var rep struct {
		Verdict string `json:"verdict"`
		Service struct {
			RESTWorkers  int    `json:"rest_workers"`
			APIState     string `json:"api_state"`
			BreakerState string `json:"breaker_state"`
			APIBudget    int64  `json:"api_budget_remaining"`
		} `json:"service"`
		REST struct {
			WorkersRunning bool                         `json:"workers_running"`
			Jobs           map[string]map[string]int64  `json:"jobs"`
			Budget         *struct{ Limit, Remain int } `json:"budget"`
			Drain          *struct{ Jobs int64 }        `json:"drain"`
		} `json:"rest"`
	}
	is.NoErr(json.Unmarshal([]byte(out.String()), &rep))
	is.Equal(code, 0) // OK: the breaker closed, no job dead
	is.Equal(rep.Verdict, "OK")
	is.Equal(rep.Service.RESTWorkers, 2)
	is.Equal(rep.Service.APIState, "ok")
	is.Equal(rep.Service.BreakerState, "closed")
	is.True(rep.Service.APIBudget >= 0)
	is.True(rep.REST.Budget != nil && rep.REST.Budget.Limit == 100) // the server's word
	is.True(rep.REST.WorkersRunning)
	// Nothing waits but the filing checks that look again tomorrow for a
	// notice not filed yet.
	is.True(rep.REST.Drain == nil || rep.REST.Drain.Jobs == rep.REST.Jobs["filing_check"]["queued"])
	done := rep.REST.Jobs["officers"]["done"]
	is.True(done > 20)
	out.Reset()
	e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status"})
	is.True(strings.Contains(out.String(), "rest        2 workers, API ok"))
	is.True(!strings.Contains(out.String(), "REST workers not running"))
	_, m := get(t, base+"/metrics")
	is.True(strings.Contains(m, fmt.Sprintf(`chwatch_jobs_total{kind="officers",result="done"} %d`, done))) // each job done once
	is.True(strings.Contains(m, `chwatch_job_seconds_bucket{kind="officers"`))
	is.True(!strings.Contains(m, `chwatch_breaker_transitions_total{to="open"} 0`))
	is.NoErr(stop())

	companies, officers := checkOfficers(t, cfg.Database.Path, s)
	t.Logf("%d strike-off companies, %d officers, %d officer lists; REST answers %v", companies, officers, done, s.RESTStats().ByStatus)
	is.True(companies > 20)
	out.Reset()
	is.Equal(e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "export", "officers"}), 0)
	is.Equal(strings.Count(out.String(), "\n"), officers+1) // a header and every officer
	// Hybrid exits were confirmed through the API: every company ends as
	// the simulator has it.
	r, err := db.OpenReader(context.Background(), cfg.Database.Path)
	is.NoErr(err)
	defer r.Close()
	var pending, fromAPI int
	is.NoErr(r.R.QueryRow("SELECT count(*) FROM companies WHERE status_check_pending = 1").Scan(&pending))
	is.NoErr(r.R.QueryRow("SELECT count(*) FROM status_changes WHERE change = 'left_strike_off' AND source = 'api'").Scan(&fromAPI))
	is.Equal(pending, 0)
	is.True(fromAPI > 0)
	for n, c := range truth.Companies {
		var st, detail string
		var deleted bool
		is.NoErr(r.R.QueryRow("SELECT company_status, coalesce(company_status_detail, ''), deleted_at IS NOT NULL FROM companies WHERE company_number = ?", n).Scan(&st, &detail, &deleted))
		if st != c.Status || detail != c.Detail || deleted != c.Deleted {
			t.Errorf("company %s: (%s, %q, deleted %v), truth (%s, %q, deleted %v)", n, st, detail, deleted, c.Status, c.Detail, c.Deleted)
		}
	}
}

// A job queued by `chwatch queue add` beside a running service is picked
// next, ahead of the officer backlog.
func TestQueueAddIsPickedNext(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 33, Companies: 2000, Events: 3000, Backlog: 3000, Heartbeat: 50 * time.Millisecond,
		StreamKey: "e2e-stream-key", APIKey: e2eAPIKey, APIRateLimit: 40, APIRateWindow: time.Second})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the run stops: it holds a stream connection
	cfg := restConfig(t, srv.URL, 40, time.Second)
	cfg.API.Workers = 1
	truth := s.Truth()
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint})
	waitCursor(t, cfg.Database.Path, truth.LastTimepoint, 60*time.Second)
	is.True(restPending(t, cfg.Database.Path) > 20) // a backlog at 40 requests a second

	num := s.CompanyNumbers()[0]
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut}
	is.Equal(e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "queue", "add", "status_check", strings.ToLower(num)}), 0)
	d, err := db.OpenReader(context.Background(), cfg.Database.Path)
	is.NoErr(err)
	defer d.Close()
	count := func(q string, args ...any) (n int) {
		d.R.QueryRow(q, args...).Scan(&n)
		return n
	}
	const officersDone = "SELECT count(*) FROM jobs WHERE kind = 'officers' AND state = 'done'"
	before := count(officersDone)
	eventually(t, "the status check done", 30*time.Second, func() bool {
		return count("SELECT count(*) FROM jobs WHERE kind = 'status_check' AND company_number = ? AND state = 'done'", num) == 1
	})
	after := count(officersDone)
	t.Logf("officer fetches finished meanwhile: %d", after-before)
	is.True(after-before <= 2) // the one in hand, at most one more
	is.NoErr(stop())
}

// Two chwatch instances, separate databases, one key, both draining a
// backlog: they adapt to the server's shared Remain. At most a few 429s in
// the first window, none after.
func TestTwoInstancesShareTheKey(t *testing.T) {
	if testing.Short() {
		t.Skip("a few budget windows")
	}
	is := is.New(t)
	// A whole number of seconds, as the real 5 minutes: X-Ratelimit-Reset
	// has whole seconds.
	const limit, window = 30, time.Second
	s, err := sim.New(sim.Config{Seed: 35, Companies: 2000, Events: 3000, Backlog: 3000, Heartbeat: 50 * time.Millisecond,
		StreamKey: "e2e-stream-key", APIKey: e2eAPIKey, APIRateLimit: limit, APIRateWindow: window})
	is.NoErr(err)
	rec := &answers{h: s.Handler()}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	var stops []func() error
	var paths []string
	for range 2 {
		cfg := restConfig(t, srv.URL, limit, window)
		stops = append(stops, startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint}))
		paths = append(paths, cfg.Database.Path)
	}
	eventually(t, "the first REST answer", 30*time.Second, func() bool { return !rec.first().IsZero() })
	first := rec.first()
	time.Sleep(5 * window) // the experiment: five windows of both draining
	for _, stop := range stops {
		is.NoErr(stop())
	}
	early, late, ok := rec.count(first.Add(window + time.Second))
	t.Logf("answers: %d answered, 429s: %d in the first window, %d after", ok, early, late)
	is.True(early <= 5)
	is.Equal(late, 0)
	is.True(ok >= 2*limit) // they kept working (the budget's use is scripts/bench-budget's business)
	for _, p := range paths {
		is.True(restPending(t, p) > 0) // both still had work: they competed throughout
	}
}

// answers records when the REST API answered what, in front of the simulator.
type answers struct {
	h  http.Handler
	mu sync.Mutex
	at []time.Time
	co []int
}

func (a *answers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusRecorder{ResponseWriter: w, code: 200}
	a.h.ServeHTTP(sw, r)
	if strings.HasPrefix(r.URL.Path, "/company/") {
		a.mu.Lock()
		a.at, a.co = append(a.at, time.Now()), append(a.co, sw.code)
		a.mu.Unlock()
	}
}

func (a *answers) first() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.at) == 0 {
		return time.Time{}
	}
	return a.at[0]
}

// count returns the 429s before and after t, and the other answers.
func (a *answers) count(t time.Time) (before, after, ok int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, at := range a.at {
		switch {
		case a.co[i] != http.StatusTooManyRequests:
			ok++
		case at.Before(t):
			before++
		default:
			after++
		}
	}
	return
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// The real binary, killed with SIGKILL while its REST workers hold leases,
// restarts and finishes the work: the jobs it held come back at once (the
// instance lock proves their holder gone), nothing is lost or dead, and
// every strike-off company ends with exactly its officers.
func TestEnrichSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	is := is.New(t)
	bin := buildBinary(t)
	// Every third answer is slow, so that jobs are in hand most of the time.
	s, err := sim.New(sim.Config{Seed: 37, Companies: 800, Events: 1500, Backlog: 1500, Heartbeat: 50 * time.Millisecond,
		APIKey: e2eAPIKey, APIRateLimit: 1000, APIRateWindow: time.Second, API: sim.APIFaults{SlowEvery: 3, SlowFor: 300 * time.Millisecond}})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the run stops: it holds a stream connection
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "chwatch.db")
	env := append(os.Environ(),
		"CHWATCH_CONFIG=", "CHWATCH_STREAM_URL="+srv.URL, "CHWATCH_API_URL="+srv.URL, "CHWATCH_STREAM_KEY=crash",
		"CHWATCH_API_KEY="+e2eAPIKey, "CHWATCH_API_RATE_LIMIT=1000", "CHWATCH_API_RATE_WINDOW=1s", "CHWATCH_API_WORKERS=4",
		"CHWATCH_STRIKE_OFF_CONFIRM_EXIT=stream", "CHWATCH_HTTP_LISTEN=", "CHWATCH_LOG_LEVEL=info")
	seedCursor(t, bin, dbPath, srv.URL, env)
	jobs := func(state string) (n int) {
		d, err := db.OpenReader(context.Background(), dbPath)
		if err != nil {
			return 0
		}
		defer d.Close()
		d.R.QueryRow("SELECT count(*) FROM jobs WHERE state = ?", state).Scan(&n)
		return n
	}
	running := func() int { return jobs("running") }
	start := func(i int) *exec.Cmd {
		cmd := exec.Command(bin, "--db", dbPath, "run")
		cmd.Env = env
		log, err := os.Create(filepath.Join(dir, fmt.Sprintf("run-%d.log", i)))
		is.NoErr(err)
		t.Cleanup(func() { log.Close() })
		cmd.Stdout, cmd.Stderr = log, log
		is.NoErr(cmd.Start())
		return cmd
	}
	held := 0
	for i := range 3 {
		cmd := start(i)
		done := jobs("done")
		eventually(t, "progress, and REST jobs in hand", 30*time.Second, func() bool { return jobs("done") >= done+3 && running() > 0 })
		is.NoErr(cmd.Process.Signal(os.Kill))
		cmd.Wait()
		n := running()
		t.Logf("kill %d: %d jobs left running, %d pending", i+1, n, restPending(t, dbPath))
		held += n
	}
	is.True(held > 0) // leases were held at the kills
	cmd := start(3)
	waitCursor(t, dbPath, s.Truth().LastTimepoint, 60*time.Second)
	waitDrained(t, dbPath, 60*time.Second)
	is.NoErr(cmd.Process.Signal(os.Interrupt))
	is.NoErr(cmd.Wait()) // a graceful stop: exit 0
	is.Equal(running(), 0)
	log, err := os.ReadFile(filepath.Join(dir, "run-3.log"))
	is.NoErr(err)
	is.True(strings.Contains(string(log), "REST jobs left running by a stopped process are queued again"))
	companies, officers := checkOfficers(t, dbPath, s)
	t.Logf("%d strike-off companies, %d officers", companies, officers)
	is.True(companies > 20)
}
