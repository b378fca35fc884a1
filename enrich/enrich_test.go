package enrich_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/enrich"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

const testKey = "enrich-test-key"

// rig is the REST side of a service, as run wires it, against a simulator
// on loopback, with time constants scaled down.
type rig struct {
	sim     *sim.Sim
	url     string
	d       *db.DB
	q       *queue.Queue
	b       *budget.Budget
	brk     *breaker.Breaker
	c       *api.Client
	w       *enrich.Workers
	m       *metrics.Set
	applier *company.Applier

	mu      sync.Mutex
	changes []string // breaker changes, in order
}

type rigOptions struct {
	workers  int
	timeout  time.Duration
	failures int
	openFor  time.Duration
	policy   company.Policy
	pscs     bool // enrich.pscs: the workers claim pscs jobs too
}

func newRig(t *testing.T, sc sim.Config, o rigOptions) *rig {
	t.Helper()
	if sc.APIKey == "" {
		sc.APIKey = testKey
	}
	s, err := sim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	r := &rig{sim: s, url: srv.URL, d: dbtest.Open(t), m: metrics.NewSet()}
	log := testLogger()
	ctx := context.Background()
	r.q = queue.New(r.d, queue.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	r.b, err = budget.New(ctx, r.d, budget.Config{Key: testKey, Limit: sc.APIRateLimit, Window: sc.APIRateWindow,
		ResetGuard: 50 * time.Millisecond, MaxWait: sc.APIRateWindow, Logger: log, Metrics: r.m})
	if err != nil {
		t.Fatal(err)
	}
	r.brk = breaker.New(breaker.Config{Failures: o.failures, OpenFor: o.openFor, Metrics: r.m, OnChange: func(c breaker.Change) {
		r.mu.Lock()
		r.changes = append(r.changes, c.To.String())
		r.mu.Unlock()
	}})
	timeout := o.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	r.c, err = api.New(api.Config{URL: srv.URL, Key: testKey, Timeout: timeout, Limiter: r.b, Logger: log, Metrics: r.m,
		RetryWaitMin: 5 * time.Millisecond, RetryWaitMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.applier = &company.Applier{Policy: o.policy, Transitions: company.NewTransitions(r.m)}
	r.w, err = enrich.New(enrich.Config{DB: r.d, Queue: r.q, Budget: r.b, Breaker: r.brk, Client: r.c, Applier: r.applier,
		Workers: o.workers, PSCs: o.pscs, Logger: log, Metrics: r.m, Idle: 20 * time.Millisecond, ProbeWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("CHWATCH_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs the workers until the returned function stops them.
func (r *rig) start(t *testing.T) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("workers: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// store applies versions through the rule, as the stream would.
func (r *rig) store(t *testing.T, vs ...company.Version) {
	t.Helper()
	ctx := context.Background()
	err := r.d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if _, err := r.applier.Apply(ctx, tx, seq, v, time.Now()); err != nil {
				return err
			}
		}
		return seq.Save(ctx, tx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// inStrikeOff is a stream version of number in strike-off, published at t.
func inStrikeOff(number string, t time.Time) company.Version {
	return company.Version{Number: number, Name: "COMPANY " + number, Status: "active", Detail: company.StrikeOffDetail,
		Etag: "etag-" + number, Source: company.Stream, SourceTime: t}
}

// rechecks counts the filing checks waiting a day for a notice not filed
// yet: work for tomorrow, not a backlog.
func (r *rig) rechecks(t *testing.T) int64 {
	t.Helper()
	var n int64
	err := r.d.R.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'filing_check' AND state = 'queued' AND run_after > ?",
		db.FormatTime(time.Now().Add(time.Hour))).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitDrained waits until no job of the workers' kinds is queued or running,
// but the filing checks waiting a day for a notice (the simulator's
// companies these tests put in strike-off by hand have none).
func (r *rig) waitDrained(t *testing.T, within time.Duration) {
	t.Helper()
	end := time.Now().Add(within)
	for {
		d, err := queue.Depths(context.Background(), r.d.R)
		if err != nil {
			t.Fatal(err)
		}
		left := d.Sum(queue.StateQueued, enrich.Kinds()...) + d.Sum(queue.StateRunning, enrich.Kinds()...) - r.rechecks(t)
		if left == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d jobs still pending after %s: %v", left, within, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// officersOf reads the stored officer ids of number, sorted.
func (r *rig) officersOf(t *testing.T, number string) []string {
	t.Helper()
	rows, err := r.d.R.Query("SELECT officer_id FROM officers WHERE company_number = ? ORDER BY officer_id", number)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// truthOf is the simulator's officer list of number: its appointment ids, sorted.
func (r *rig) truthOf(number string) []string {
	var out []string
	for _, o := range r.sim.Officers(number).Officers {
		out = append(out, o.AppointmentID)
	}
	sort.Strings(out)
	return out
}

// checkOfficers asserts that every company in strike-off holds exactly the
// simulator's officers, and that no other company holds any.
func (r *rig) checkOfficers(t *testing.T) (companies, officers int) {
	t.Helper()
	rows, err := r.d.R.Query("SELECT company_number FROM strike_off_companies")
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
	paged := 0
	for _, n := range numbers {
		got, want := r.officersOf(t, n), r.truthOf(n)
		if !slices.Equal(got, want) {
			t.Errorf("company %s: %d officers stored, the simulator has %d", n, len(got), len(want))
		}
		if len(want) > 35 {
			paged++
		}
		officers += len(got)
	}
	var strays int
	r.d.R.QueryRow(`SELECT count(*) FROM officers WHERE company_number NOT IN (SELECT company_number FROM strike_off_companies)`).Scan(&strays)
	if strays != 0 {
		t.Errorf("%d officers stored for companies not in strike-off", strays)
	}
	if paged == 0 {
		t.Errorf("no company had a list of more than one page: the test proves nothing about paging")
	}
	return len(numbers), officers
}

// checkJobs asserts that every job ran exactly once: none pending or dead,
// and as many completions counted as done rows.
func (r *rig) checkJobs(t *testing.T, kind queue.Kind, want int) {
	t.Helper()
	d, err := queue.Depths(context.Background(), r.d.R)
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Count(kind, queue.StateDead); n != 0 {
		t.Errorf("%d %s jobs dead", n, kind)
	}
	if n := d.Count(kind, queue.StateDone); n != int64(want) {
		t.Errorf("%d %s jobs done, want %d", n, kind, want)
	}
	if got := r.counter(fmt.Sprintf(`chwatch_jobs_total{kind=%q,result="done"}`, kind)); got != float64(want) {
		t.Errorf("chwatch_jobs_total done %v for %d %s jobs: a job completed twice, or a completion was lost", got, want, kind)
	}
}

// until calls ok until it holds, or fails the test after 20s.
func (r *rig) until(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 20s", what)
		}
	}
}

func (r *rig) counter(name string) float64 {
	var b strings.Builder
	r.m.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// Officers of every strike-off company are fetched, paged lists
// (the server capping pages at 35, and repeating an item across pages),
// empty 200s and 404 lists included, and stored exactly as the simulator
// has them.
func TestOfficersMatchTheSimulator(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 7, Companies: 400, APIRateLimit: 2000, APIRateWindow: time.Second,
		API: sim.APIFaults{PageCap: 35, OverlapPages: true}}, rigOptions{workers: 3})
	now := time.Now().UTC()
	var vs []company.Version
	for _, n := range r.sim.CompanyNumbers() {
		vs = append(vs, inStrikeOff(n, now))
	}
	r.store(t, vs...)
	r.start(t)
	r.waitDrained(t, 3*time.Minute) // 400 officer lists and 400 filing histories; minutes under -race on a busy box
	companies, officers := r.checkOfficers(t)
	is.Equal(companies, 400)
	r.checkJobs(t, queue.Officers, 400)
	t.Logf("%d companies, %d officers, %d requests", companies, officers, r.sim.RESTStats().Requests)
	var raw string
	is.NoErr(r.d.R.QueryRow("SELECT raw FROM officers LIMIT 1").Scan(&raw))
	is.True(strings.Contains(raw, `"links"`)) // the item is kept whole
	costs, err := queue.Costs(context.Background(), r.d.R)
	is.NoErr(err)
	is.True(costs[queue.Officers] > 1) // some lists took several pages
}

// The REST side under faults: 5xx bursts, timeouts, a 429 storm (another
// program spending the key's whole window, again and again) and the API
// dead for a while. The breaker opens, probes and closes; afterwards every
// company holds exactly its officers and every job ran once, none dead.
func TestFaultsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of faults against the simulator")
	}
	is := is.New(t)
	const window = time.Second
	r := newRig(t, sim.Config{Seed: 8, Companies: 300, APIRateLimit: 200, APIRateWindow: window,
		API: sim.APIFaults{Status5xxEvery: 40, Status5xxBurst: 3, SlowEvery: 53, SlowFor: 2 * time.Second, PageCap: 50}},
		rigOptions{workers: 3, timeout: 150 * time.Millisecond, failures: 3, openFor: 150 * time.Millisecond})
	now := time.Now().UTC()
	var vs []company.Version
	for _, n := range r.sim.CompanyNumbers() {
		vs = append(vs, inStrikeOff(n, now))
	}
	r.store(t, vs...)
	stop := r.start(t)

	// Another program on the same key hammers it, spending every window,
	// until the workers have met its 429s.
	cl := &http.Client{Timeout: 100 * time.Millisecond}
	num := r.sim.CompanyNumbers()[0]
	r.until(t, "the workers meet a 429", func() bool {
		req, _ := http.NewRequest(http.MethodGet, r.url+"/company/"+num, nil)
		req.SetBasicAuth(testKey, "")
		if resp, err := cl.Do(req); err == nil {
			resp.Body.Close()
		}
		return r.counter(`chwatch_api_requests_total{code="429"}`) > 0
	})
	d, err := queue.Depths(context.Background(), r.d.R)
	is.NoErr(err)
	// Work is left for the outage (how much depends on how fast the box
	// ran the workers before the first 429; a few jobs are enough).
	is.True(d.Count(queue.Officers, queue.StateQueued) > 10)
	// The API is dead until the breaker has opened and a probe failed.
	r.sim.Outage(time.Hour)
	r.until(t, "a failed probe", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return strings.Contains(strings.Join(r.changes, " "), "open half-open open")
	})
	r.sim.Outage(0)
	r.waitDrained(t, 60*time.Second)
	stop()

	st := r.sim.RESTStats()
	t.Logf("answers: %v; breaker: %v", st.ByStatus, r.changes)
	is.True(st.ByStatus[503]+st.ByStatus[502]+st.ByStatus[504] > 0)
	is.True(r.counter(`chwatch_api_requests_total{code="timeout"}`) > 0)
	r.mu.Lock()
	changes := strings.Join(r.changes, " ")
	r.mu.Unlock()
	is.True(strings.Contains(changes, "open half-open open")) // opened, probed, opened again
	is.True(strings.HasSuffix(changes, "closed"))             // and closed again
	is.Equal(r.brk.State(), breaker.Closed)
	companies, _ := r.checkOfficers(t)
	is.Equal(companies, 300)
	r.checkJobs(t, queue.Officers, 300)
}

// companyRow is what the tests read of a stored company.
type companyRow struct {
	status, detail string
	pending        bool
	deleted        bool
	source         string
}

func (r *rig) company(t *testing.T, number string) companyRow {
	t.Helper()
	var c companyRow
	var detail, deleted *string
	err := r.d.R.QueryRow(`SELECT company_status, company_status_detail, status_check_pending, deleted_at, source FROM companies WHERE company_number = ?`, number).
		Scan(&c.status, &detail, &c.pending, &deleted, &c.source)
	if err != nil {
		t.Fatal(err)
	}
	if detail != nil {
		c.detail = *detail
	}
	c.deleted = deleted != nil
	return c
}

func (r *rig) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := r.d.R.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Status checks and gap sweeps apply the API's profile through the company
// rule: a hybrid exit the API confirms (with the event's etag) leaves
// strike-off, deleting the officers and cancelling the queued fetch; one the
// API contradicts keeps its status; a 404 is a deleted version. Every
// pending flag clears.
func TestProfilesGoThroughTheRule(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 21, Companies: 300, Backlog: 3000, APIRateLimit: 2000, APIRateWindow: time.Second},
		rigOptions{workers: 2, policy: company.Policy{ConfirmExit: "api"}})
	truth := r.sim.Truth()
	var active, struck []string
	for n, c := range truth.Companies {
		switch {
		case c.Deleted:
		case c.InStrikeOff:
			struck = append(struck, n)
		case c.Status == "active" && c.Detail == "":
			active = append(active, n)
		}
	}
	sort.Strings(active)
	sort.Strings(struck)
	is.True(len(active) >= 3 && len(struck) >= 2)
	past := time.Now().UTC().Add(-time.Hour)
	// Companies chwatch holds in strike-off. exited and early have really
	// left (the simulator says active); kept has not; gone is unknown to
	// the API; swept is checked by a gap sweep.
	exited, early, kept, gone, swept := active[0], active[1], struck[0], "ZZ999999", active[2]
	for _, n := range []string{exited, early, kept, gone, swept} {
		r.store(t, inStrikeOff(n, past))
	}
	stop := r.start(t)
	r.waitDrained(t, 30*time.Second) // officers of all five
	stop()
	is.True(len(r.officersOf(t, exited)) > 0 || len(r.truthOf(exited)) == 0)

	// Events that drop the detail, each with the etag the API has now.
	hybrid := func(n string) company.Version {
		return company.Version{Number: n, Name: "COMPANY " + n, Status: "active", Etag: truth.Companies[n].Etag,
			Source: company.Stream, SourceTime: past.Add(time.Minute)}
	}
	r.store(t, hybrid(exited), hybrid(kept), hybrid(gone))
	for _, n := range []string{exited, kept, gone} {
		is.True(r.company(t, n).pending) // the API decides
	}
	// early: entered anew, its officer fetch still queued, then the event
	// that drops the detail.
	r.store(t, company.Version{Number: early, Status: "dissolved", Source: company.Stream, SourceTime: past.Add(time.Minute)},
		inStrikeOff(early, past.Add(2*time.Minute)), hybrid(early))
	is.Equal(r.count(t, "SELECT count(*) FROM jobs WHERE kind = 'officers' AND company_number = ? AND state = 'queued'", early), 1)
	_, err := queue.EnqueueSweepTx(context.Background(), r.d.W, time.Now())
	is.NoErr(err)

	// One worker, so jobs run in priority order: early's status check
	// settles its exit before its officers job could be claimed (two
	// workers may claim both at once, and the fetch then runs).
	r.w, err = enrich.New(enrich.Config{DB: r.d, Queue: r.q, Budget: r.b, Breaker: r.brk, Client: r.c, Applier: r.applier,
		Workers: 1, Idle: 20 * time.Millisecond})
	is.NoErr(err)
	r.start(t)
	r.waitDrained(t, 30*time.Second)

	for _, tt := range []struct {
		name, number string
		strikeOff    bool
		deleted      bool
	}{
		{"ExitConfirmed", exited, false, false},
		{"ExitBeforeTheFetch", early, false, false},
		{"ExitContradicted", kept, true, false},
		{"UnknownToTheAPI", gone, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			c := r.company(t, tt.number)
			is.Equal(c.pending, false) // settled
			is.Equal(c.status == "active" && c.detail == company.StrikeOffDetail && !c.deleted, tt.strikeOff)
			is.Equal(c.deleted, tt.deleted)
			is.Equal(c.source, "api")
			if !tt.strikeOff {
				is.Equal(len(r.officersOf(t, tt.number)), 0) // strike_off.on_exit = delete-officers
				is.Equal(r.count(t, "SELECT count(*) FROM status_changes WHERE company_number = ? AND change = 'left_strike_off' AND source = 'api'", tt.number), 1)
			} else {
				is.Equal(r.officersOf(t, tt.number), r.truthOf(tt.number))
			}
		})
	}
	// early's officers were never fetched: leaving cancelled the job.
	is.Equal(r.count(t, "SELECT count(*) FROM jobs WHERE kind = 'officers' AND company_number = ?", early), 1) // its first entry's only
	// The sweep found swept's exit too, without any event.
	is.Equal(r.company(t, swept).status, "active")
	is.Equal(r.count(t, "SELECT count(*) FROM strike_off_companies WHERE company_number = ?", swept), 0)
	is.Equal(r.count(t, "SELECT count(*) FROM jobs WHERE kind = 'sweep_check' AND state = 'done'"), 5) // all five were in strike-off when the sweep was queued
	// Every exit the API confirmed is counted, as the stream's are.
	is.Equal(int(r.counter(`chwatch_strike_off_transitions_total{change="left_strike_off"}`)),
		r.count(t, "SELECT count(*) FROM status_changes WHERE change = 'left_strike_off' AND source = 'api'"))
}

// A company number Companies House cannot answer is never sent: the job is
// dead at once, with a last error that says why.
func TestBadNumberIsDeadAtOnce(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 1, Companies: 10, APIRateLimit: 100, APIRateWindow: time.Second}, rigOptions{})
	ctx := context.Background()
	for _, k := range []queue.Kind{queue.StatusCheck, queue.Officers} {
		_, err := r.q.Enqueue(ctx, k, "SC57165")
		is.NoErr(err)
	}
	r.start(t)
	r.until(t, "two dead jobs", func() bool {
		return r.count(t, "SELECT count(*) FROM jobs WHERE state = 'dead'") == 2
	})
	var last string
	is.NoErr(r.d.R.QueryRow("SELECT last_error FROM jobs WHERE kind = 'status_check'").Scan(&last))
	is.True(strings.Contains(last, `"SC57165" is not a company number`))
	is.Equal(r.sim.RESTStats().Requests, int64(0)) // nothing sent
	is.Equal(r.count(t, "SELECT attempts FROM jobs WHERE kind = 'officers'"), 1)
}

// A status check queued behind a backlog of officer fetches is the next job
// claimed: it waits only for the budget's pacing.
func TestStatusCheckJumpsTheBacklog(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 3, Companies: 400, APIRateLimit: 100, APIRateWindow: time.Second}, rigOptions{workers: 1})
	now := time.Now().UTC()
	var vs []company.Version
	numbers := r.sim.CompanyNumbers()
	for _, n := range numbers[1:] {
		vs = append(vs, inStrikeOff(n, now))
	}
	r.store(t, vs...)
	r.start(t)
	r.until(t, "a few officer lists", func() bool {
		return r.count(t, "SELECT count(*) FROM jobs WHERE state = 'done'") >= 5
	})
	err := r.d.WriteTx(context.Background(), func(tx db.Tx) error {
		_, err := queue.EnqueueNow(context.Background(), tx, queue.StatusCheck, numbers[0], time.Now())
		return err
	})
	is.NoErr(err)
	before := r.count(t, "SELECT count(*) FROM jobs WHERE kind = 'officers' AND state = 'done'")
	r.until(t, "the status check done", func() bool {
		return r.count(t, "SELECT count(*) FROM jobs WHERE kind = 'status_check' AND state = 'done'") == 1
	})
	after := r.count(t, "SELECT count(*) FROM jobs WHERE kind = 'officers' AND state = 'done'")
	t.Logf("officer fetches finished while the status check waited: %d (of %d queued)", after-before, len(vs))
	is.True(after-before <= 2) // the one in flight, at most one more
}

// Without the right key, REST work pauses for api.unauthorized_wait: one
// request, no attempt spent, the job waits.
func TestUnauthorizedPauses(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 1, Companies: 10, APIKey: "another-key", APIRateLimit: 100, APIRateWindow: time.Second}, rigOptions{workers: 2})
	ctx := context.Background()
	for _, n := range r.sim.CompanyNumbers()[:3] {
		_, err := r.q.Enqueue(ctx, queue.StatusCheck, n)
		is.NoErr(err)
	}
	r.start(t)
	r.until(t, "the budget paused by a 401", func() bool { return r.b.State().PauseReason == budget.Unauthorized })
	// A window in which misbehaving workers would send more: what they
	// send, not when, is checked.
	time.Sleep(300 * time.Millisecond)
	is.Equal(r.sim.RESTStats().ByStatus[401], int64(1))
	is.Equal(r.count(t, "SELECT count(*) FROM jobs WHERE attempts > 0"), 0)
	is.Equal(r.count(t, "SELECT count(*) FROM jobs WHERE state = 'queued'"), 3)
	is.True(strings.Contains(r.w.State().LastError, "401"))
}

// A 403 pauses all REST work for api.forbidden_wait and raises one
// critical alert; nothing probes in a loop and no attempt is spent. The
// first answer after the pause resolves it.
func TestForbiddenPausesAndAlerts(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 1, Companies: 10, APIRateLimit: 100, APIRateWindow: time.Second,
		API: sim.APIFaults{Status403Every: 1}}, rigOptions{workers: 2})
	ctx := context.Background()
	var err error
	r.b, err = budget.New(ctx, r.d, budget.Config{Key: testKey, Limit: 100, Window: time.Second, ForbiddenWait: 400 * time.Millisecond})
	is.NoErr(err)
	r.c, err = api.New(api.Config{URL: r.url, Key: testKey, Limiter: r.b})
	is.NoErr(err)
	alerts := alert.New(alert.Config{})
	r.w, err = enrich.New(enrich.Config{DB: r.d, Queue: r.q, Budget: r.b, Breaker: r.brk, Client: r.c, Applier: r.applier,
		Alerts: alerts, Workers: 2, Idle: 20 * time.Millisecond})
	is.NoErr(err)
	for _, n := range r.sim.CompanyNumbers()[:3] {
		_, err := r.q.Enqueue(ctx, queue.StatusCheck, n)
		is.NoErr(err)
	}
	r.start(t)
	r.until(t, "the budget paused by a 403", func() bool { return r.b.State().PauseReason == budget.Forbidden })
	r.until(t, "an alert", func() bool { return alerts.Active(alert.APIForbidden) })
	is.Equal(r.sim.RESTStats().ByStatus[403], int64(1)) // one request, then the pause
	is.Equal(r.count(t, "SELECT count(*) FROM jobs WHERE attempts > 0"), 0)
	r.until(t, "a second 403 after the wait", func() bool { return r.sim.RESTStats().ByStatus[403] == 2 })
	is.Equal(r.sim.RESTStats().Requests, int64(2)) // one try per wait, never a loop
}
