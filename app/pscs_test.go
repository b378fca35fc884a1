package app

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

const pscsEndpoint = "/company/{n}/persons-with-significant-control"

// pscsEvents is the length of pscsSim's log.
const pscsEvents = 3000

// pscsSim is a simulator whose REST side pages lists at 35, repeating an
// item across pages, with a budget generous enough for a quick test.
func pscsSim(t *testing.T) (*sim.Sim, string) {
	t.Helper()
	// Most of the log is live, so that companies enter, have their PSCs
	// fetched, and some leave afterwards.
	s, err := sim.New(sim.Config{Seed: 41, Companies: 500, Events: pscsEvents, Backlog: 300, Rate: 600, Heartbeat: 50 * time.Millisecond,
		StreamKey: "e2e-stream-key", APIKey: e2eAPIKey, APIRateLimit: 400, APIRateWindow: time.Second,
		API: sim.APIFaults{PageCap: 35, OverlapPages: true}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the runs stop: they hold a stream connection
	return s, srv.URL
}

// runToEnd runs the service until the stream's whole log is applied and
// no REST job of the kinds it claims is pending, then stops it.
func runToEnd(t *testing.T, cfg *config.Config, s *sim.Sim, kinds ...queue.Kind) {
	t.Helper()
	_, started := pscJobs(t, cfg.Database.Path)
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint, restBackoff: 20 * time.Millisecond, beatEvery: 20 * time.Millisecond})
	// Set up (the pscs backfill included) before the first heartbeat
	// records the start.
	eventually(t, "the run started", 10*time.Second, func() bool { _, s := pscJobs(t, cfg.Database.Path); return s != started })
	waitCursor(t, cfg.Database.Path, sim.DefaultFirstTimepoint+pscsEvents-1, 60*time.Second)
	eventually(t, "the REST jobs drained", 90*time.Second, func() bool {
		d, err := db.OpenReader(context.Background(), cfg.Database.Path)
		if err != nil {
			return false
		}
		defer d.Close()
		depth, err := queue.Depths(context.Background(), d.R)
		if err != nil {
			return false
		}
		return depth.Sum(queue.StateQueued, kinds...)+depth.Sum(queue.StateRunning, kinds...) == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// checkPSCs compares the PSCs of every strike-off company with the
// simulator's truth and finds none elsewhere (exits cleaned them up); it
// returns how many companies and PSCs it compared, and how many companies
// had their PSCs fetched before they left strike-off.
func checkPSCs(t *testing.T, path string, s *sim.Sim) (companies, pscs, cleaned int) {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stored := map[string][]string{}
	rows, err := d.R.Query("SELECT company_number, psc_id FROM pscs ORDER BY company_number, psc_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n, id string
		rows.Scan(&n, &id)
		stored[n] = append(stored[n], id)
	}
	rows.Close()
	var numbers []string
	rows, err = d.R.Query("SELECT company_number FROM strike_off_companies")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		numbers = append(numbers, n)
	}
	rows.Close()
	for _, n := range numbers {
		var want []string
		for _, p := range s.PSCs(n).PSCs {
			want = append(want, p.ID)
		}
		sort.Strings(want)
		if got := stored[n]; !slices.Equal(got, want) {
			t.Errorf("company %s: %d PSCs stored, the simulator has %d", n, len(got), len(want))
		}
		pscs += len(want)
		delete(stored, n)
	}
	for n, ids := range stored {
		t.Errorf("company %s is not in strike-off but has %d PSCs", n, len(ids))
	}
	var dead int
	d.R.QueryRow("SELECT count(*) FROM jobs WHERE state = 'dead'").Scan(&dead)
	if dead != 0 {
		t.Errorf("%d dead jobs", dead)
	}
	// Companies whose pscs job finished while they were in strike-off and
	// that left afterwards: their rows were written, and the exit deleted
	// them (none is left, checked above).
	err = d.R.QueryRow(`SELECT count(DISTINCT j.company_number) FROM jobs j
		WHERE j.kind = 'pscs' AND j.state = 'done'
		AND EXISTS (SELECT 1 FROM status_changes s WHERE s.company_number = j.company_number AND s.change = 'entered_strike_off' AND s.detected_at <= j.created_at)
		AND EXISTS (SELECT 1 FROM status_changes s WHERE s.company_number = j.company_number AND s.change = 'left_strike_off' AND s.detected_at > j.updated_at)
		AND j.company_number NOT IN (SELECT company_number FROM strike_off_companies)`).Scan(&cleaned)
	if err != nil {
		t.Fatal(err)
	}
	return len(numbers), pscs, cleaned
}

// requestsPerEntry is the REST requests the simulator answered per company
// that entered strike-off, by endpoint.
func requestsPerEntry(t *testing.T, path string, s *sim.Sim) (entries int, per map[string]float64) {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.R.QueryRow("SELECT count(*) FROM status_changes WHERE change = 'entered_strike_off'").Scan(&entries)
	per = map[string]float64{}
	for ep, n := range s.RESTStats().ByEndpoint {
		per[ep] = float64(n) / float64(entries)
	}
	return entries, per
}

// With enrich.pscs = true from the start, `chwatch run` against the
// simulator fetches every strike-off company's PSCs beside its officers:
// afterwards each holds exactly the simulator's PSCs (paged lists, empty
// lists, ceased PSCs, every kind), companies that left hold none, the
// export has every row and status counts them.
func TestPSCsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("several seconds against the simulator")
	}
	is := is.New(t)
	s, url := pscsSim(t)
	cfg := restConfig(t, url, 400, time.Second)
	cfg.Enrich.PSCs = true
	dumpJobsOnFailure(t, cfg.Database.Path)
	runToEnd(t, cfg, s, queue.Officers, queue.PSCs)

	companies, pscs, cleaned := checkPSCs(t, cfg.Database.Path, s)
	entries, per := requestsPerEntry(t, cfg.Database.Path, s)
	t.Logf("%d strike-off companies, %d PSCs, %d cleaned on exit; %d entries; requests per entering company: %v", companies, pscs, cleaned, entries, per)
	is.True(companies > 20)
	is.True(pscs > companies) // the simulator's lists are there, paged ones included
	is.True(cleaned > 0)      // some exits had PSCs to clean up
	// A company that left before its turn costs nothing; a list fetched
	// costs a request a page.
	costs := jobCosts(t, cfg.Database.Path)
	t.Logf("requests per fetched list: %v", costs)
	is.True(per[pscsEndpoint] > 0)
	is.True(costs[queue.PSCs] >= 1 && costs[queue.PSCs] < 2)
	companies2, officers := checkOfficers(t, cfg.Database.Path, s)
	is.Equal(companies2, companies) // the officers beside them, unchanged
	is.True(officers > 0)

	var out strings.Builder
	e := &env{stdout: &out, stderr: &out}
	is.Equal(e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "export", "pscs"}), 0)
	is.Equal(strings.Count(out.String(), "\n"), pscs+1) // a header and every PSC
	is.True(strings.HasPrefix(out.String(), "company_number,company_name,psc_id,kind,name,natures_of_control,"))
	out.Reset()
	e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status", "--json"})
	var rep struct {
		PSCs      int    `json:"pscs"`
		PSCsSince string `json:"pscs_since"`
	}
	is.NoErr(json.Unmarshal([]byte(out.String()), &rep))
	is.Equal(rep.PSCs, pscs)
	is.True(rep.PSCsSince != "")
}

// With enrich.pscs = false (the default) no PSC request is sent and no
// pscs job queued; turning it on later queues the companies already in
// strike-off once, and the next run fetches exactly their PSCs.
func TestPSCsTurnedOnLater(t *testing.T) {
	if testing.Short() {
		t.Skip("several seconds against the simulator")
	}
	is := is.New(t)
	s, url := pscsSim(t)
	cfg := restConfig(t, url, 400, time.Second)
	dumpJobsOnFailure(t, cfg.Database.Path)
	runToEnd(t, cfg, s, queue.Officers)
	entries, per := requestsPerEntry(t, cfg.Database.Path, s)
	t.Logf("enrich.pscs off: %d entries; requests per entering company: %v; per fetched list: %v", entries, per, jobCosts(t, cfg.Database.Path))
	is.Equal(s.RESTStats().ByEndpoint[pscsEndpoint], int64(0)) // off: not one PSC request
	n, _ := pscJobs(t, cfg.Database.Path)
	is.Equal(n, int64(0)) // and no pscs job at all
	checkOfficers(t, cfg.Database.Path, s)

	before := s.RESTStats().ByEndpoint[pscsEndpoint]
	cfg.Enrich.PSCs = true
	runToEnd(t, cfg, s, queue.Officers, queue.PSCs)
	companies, pscs, _ := checkPSCs(t, cfg.Database.Path, s)
	is.True(companies > 20 && pscs > companies)
	sent := s.RESTStats().ByEndpoint[pscsEndpoint] - before
	is.True(sent >= int64(companies)) // the backfill: a list or more per strike-off company
	t.Logf("turned on: %d PSC requests for %d strike-off companies, %d PSCs", sent, companies, pscs)

	// Once: the next start queues nothing again.
	n0, started0 := pscJobs(t, cfg.Database.Path)
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint, beatEvery: 20 * time.Millisecond})
	eventually(t, "the third run started", 10*time.Second, func() bool { _, s := pscJobs(t, cfg.Database.Path); return s != started0 })
	is.NoErr(stop())
	n1, _ := pscJobs(t, cfg.Database.Path)
	is.Equal(n1, n0)
	is.Equal(s.RESTStats().ByEndpoint[pscsEndpoint]-before, sent)
}

// pscJobs is how many pscs jobs exist in any state, and when the last run
// started ("" before any).
func pscJobs(t *testing.T, path string) (n int64, started string) {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		return 0, ""
	}
	defer d.Close()
	d.R.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'pscs'").Scan(&n)
	d.R.QueryRow("SELECT value FROM service_state WHERE key = 'started_at'").Scan(&started)
	return n, started
}

// jobCosts is the measured requests per finished job of each kind.
func jobCosts(t *testing.T, path string) map[queue.Kind]float64 {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := queue.Costs(context.Background(), d.R)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
