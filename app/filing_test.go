package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// filingsSettled reports whether every filing_check has run: none running,
// none due (those waiting a day for a notice are not due).
func filingsSettled(t *testing.T, path string) bool {
	t.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	err = d.R.QueryRow(`SELECT count(*) FROM jobs WHERE kind = 'filing_check' AND
		(state = 'running' OR (state = 'queued' AND run_after <= ?))`, db.FormatTime(time.Now().Add(time.Hour))).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n == 0 && restPending(t, path) == 0
}

// `chwatch run` with an API key reads the filing history of every company
// entering strike-off (paged, through 5xx bursts) and records why and when
// it will be struck off: every strike-off company's kind and dates are the
// simulator's truth, companies that left have none, a company without a
// notice yet waits a day for the next look, and the export, --due-before
// and status carry it all.
func TestFilingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("several seconds against the simulator")
	}
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 41, Companies: 600, StrikeOffShare: 0.2, Events: 3000, Backlog: 3000, Heartbeat: 50 * time.Millisecond,
		StreamKey: "e2e-stream-key", APIKey: e2eAPIKey, APIRateLimit: 200, APIRateWindow: time.Second,
		API: sim.APIFaults{Status5xxEvery: 90, Status5xxBurst: 2, PageCap: 10}})
	is.NoErr(err)
	var filingRequests atomic.Int64
	h := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/filing-history") {
			filingRequests.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := restConfig(t, srv.URL, 200, time.Second)
	truth := s.Truth()
	dumpJobsOnFailure(t, cfg.Database.Path)
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint, restBackoff: 20 * time.Millisecond, beatEvery: 20 * time.Millisecond})
	waitCursor(t, cfg.Database.Path, truth.LastTimepoint, 60*time.Second)
	eventually(t, "every filing check run", 90*time.Second, func() bool { return filingsSettled(t, cfg.Database.Path) })
	is.NoErr(stop())

	d, err := db.OpenReader(context.Background(), cfg.Database.Path)
	is.NoErr(err)
	defer d.Close()
	rows, err := d.R.Query(`SELECT company_number, strike_off_kind, gazette_notice_on, dissolution_due_on, strike_off_suspended_at,
		company_number IN (SELECT company_number FROM strike_off_companies) FROM companies`)
	is.NoErr(err)
	kinds := map[string]int{}
	var inStrikeOff, noNotice, suspended, due int
	for rows.Next() {
		var n string
		var kind, notice, dueOn, susp sql.NullString
		var in bool
		is.NoErr(rows.Scan(&n, &kind, &notice, &dueOn, &susp, &in))
		got := [4]string{kind.String, notice.String, dueOn.String, susp.String}
		if !in {
			if got != [4]string{} {
				t.Errorf("company %s is not in strike-off but has %v", n, got)
			}
			continue
		}
		inStrikeOff++
		tr := s.Filings(n)
		if want := [4]string{tr.Kind, tr.NoticeOn, tr.DueOn, tr.SuspendedAt}; got != want {
			t.Errorf("company %s: stored %v, the simulator's filing history says %v", n, got, want)
		}
		kinds[tr.Kind]++
		switch {
		case tr.NoticeOn == "":
			noNotice++
			// The next look is a day away, and no attempt was spent.
			var runAfter string
			var attempts int
			is.NoErr(d.R.QueryRow("SELECT run_after, attempts FROM jobs WHERE kind = 'filing_check' AND company_number = ? AND state = 'queued'", n).
				Scan(&runAfter, &attempts))
			at, _ := db.ParseTime(runAfter)
			is.True(time.Until(at) > 23*time.Hour)
			is.Equal(attempts, 0)
		case tr.SuspendedAt != "":
			suspended++
		default:
			due++
		}
	}
	is.NoErr(rows.Err())
	rows.Close()
	t.Logf("%d in strike-off: kinds %v, %d without a notice yet, %d suspended, %d due", inStrikeOff, kinds, noNotice, suspended, due)
	is.True(kinds["voluntary"] > 0 && kinds["compulsory"] > 0 && kinds["unknown"] > 0)
	is.True(noNotice > 0 && suspended > 0)

	var unknownRows int
	is.NoErr(d.R.QueryRow("SELECT count(*) FROM filing_unknowns").Scan(&unknownRows))
	is.True(unknownRows > 0)

	// Requests per entering company: every filing-history request the
	// simulator answered (retries of 5xx included) over the companies
	// that got a filing check.
	var checked, jobs, entries int64
	is.NoErr(d.R.QueryRow("SELECT count(DISTINCT company_number), count(*) FROM jobs WHERE kind = 'filing_check'").Scan(&checked, &jobs))
	is.NoErr(d.R.QueryRow("SELECT count(*) FROM status_changes WHERE change = 'entered_strike_off'").Scan(&entries))
	costs, err := queue.Costs(context.Background(), d.R)
	is.NoErr(err)
	req := float64(filingRequests.Load())
	t.Logf("filing_check: %.0f requests; %d entries into strike-off (%.2f requests an entry; companies that left before their check cost none), %d companies checked (%.2f a company), %.2f pages a finished job",
		req, entries, req/float64(entries), checked, req/float64(checked), costs[queue.FilingCheck])
	is.True(checked > 20)

	// The export carries the columns, and --due-before lists exactly the
	// due companies, soonest first.
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut}
	is.Equal(e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "export", "strike-off", "--due-before", "2999-01-01"}), 0)
	recs := exportParse(t, out.String())
	is.Equal(len(recs)-1, due)
	for i := 2; i < len(recs); i++ {
		is.True(recs[i-1][len(recs[i])-2] <= recs[i][len(recs[i])-2]) // dissolution_due_on ascending
	}

	out.Reset()
	is.True(e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status", "--json"}) != 3) // stopped, so not OK; yet read (3 is UNKNOWN)
	var rep struct {
		StrikeOff int64 `json:"strike_off"`
		Filings   struct {
			Kinds        map[string]int64 `json:"kinds"`
			Checked      int64            `json:"checked"`
			Suspended    int64            `json:"suspended"`
			Due          map[string]int64 `json:"due_by_month"`
			UnknownItems int64            `json:"unknown_items"`
		} `json:"filings"`
	}
	is.NoErr(json.Unmarshal([]byte(out.String()), &rep))
	is.Equal(rep.Filings.Checked, int64(inStrikeOff)) // the counters agree with the rows
	is.Equal(rep.StrikeOff, int64(inStrikeOff))
	is.Equal(rep.Filings.Kinds["voluntary"], int64(kinds["voluntary"]))
	is.Equal(rep.Filings.Suspended, int64(suspended))
	var dueSum int64
	for _, n := range rep.Filings.Due {
		dueSum += n
	}
	is.Equal(dueSum, int64(due))
	is.Equal(rep.Filings.UnknownItems, int64(unknownRows))
}

// Companies already in strike-off when migration 0004 lands get one
// filing_check each, counted for status; a second run of the migrations
// queues nothing more.
func TestFilingBackfill(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		for i, n := range []string{"00000001", "00000002", "00000003", "SC000004"} {
			v := company.Version{Number: n, Name: "X", Status: "active", Detail: company.StrikeOffDetail, Source: company.Stream,
				SourceTime: now, Timepoint: int64(i + 1), Etag: n}
			if n == "00000003" {
				v.Detail = "" // not in strike-off
			}
			if _, err := a.Apply(ctx, tx, seq, v, now); err != nil {
				return err
			}
		}
		return seq.Save(ctx, tx)
	})
	is.NoErr(err)
	// As before the upgrade (schema 3): no filing checks, no columns.
	_, err = d.MigrateDown(ctx, db.Latest()-3)
	is.NoErr(err)
	_, err = d.MigrateUp(ctx, now)
	is.NoErr(err)
	var jobs, backfill int
	is.NoErr(d.R.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'filing_check' AND state = 'queued' AND priority = ?", queue.FilingCheck.Priority()).Scan(&jobs))
	is.NoErr(d.R.QueryRow("SELECT value FROM counters WHERE name = ?", company.CounterFilingBackfill).Scan(&backfill))
	is.Equal(jobs, 3)
	is.Equal(backfill, 3)
	depth, err := queue.Depths(ctx, d.R)
	is.NoErr(err)
	is.Equal(depth.Count(queue.FilingCheck, queue.StateQueued), int64(3)) // the counters the triggers keep
	_, err = d.MigrateUp(ctx, now)
	is.NoErr(err)
	is.NoErr(d.R.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'filing_check'").Scan(&jobs))
	is.Equal(jobs, 3)
}
