package enrich_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// columns reads a company's four strike-off columns, "" for NULL.
func (r *rig) columns(t *testing.T, number string) [4]string {
	t.Helper()
	var c [4]sql.NullString
	err := r.d.R.QueryRow("SELECT strike_off_kind, gazette_notice_on, dissolution_due_on, strike_off_suspended_at FROM companies WHERE company_number = ?", number).
		Scan(&c[0], &c[1], &c[2], &c[3])
	if err != nil {
		t.Fatal(err)
	}
	return [4]string{c[0].String, c[1].String, c[2].String, c[3].String}
}

// A filing check writes what the simulator's filing history says; the
// company leaving strike-off clears it (and its counters) in the exit's
// transaction; a check for a company not in strike-off sends nothing.
func TestFilingCheckThenExit(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 12, Companies: 300, StrikeOffShare: 0.3, APIRateLimit: 1000, APIRateWindow: time.Second},
		rigOptions{workers: 2, policy: company.Policy{ConfirmExit: "stream"}})
	var num, other string
	for _, n := range r.sim.CompanyNumbers() {
		tr := r.sim.Filings(n)
		switch {
		case num == "" && tr.NoticeOn != "" && tr.SuspendedAt == "":
			num = n
		case other == "" && tr.Kind == "unknown" && tr.NoticeOn == "" && tr.Items == 0:
			other = n // never in strike-off in the simulator: nothing filed
		}
	}
	is.True(num != "" && other != "")
	now := time.Now().UTC()
	r.store(t, inStrikeOff(num, now))
	stop := r.start(t)
	tr := r.sim.Filings(num)
	want := [4]string{tr.Kind, tr.NoticeOn, tr.DueOn, ""}
	r.until(t, "the filing check", func() bool { return r.columns(t, num) == want })

	c := func(name string) int64 {
		var v int64
		r.d.R.QueryRow("SELECT value FROM counters WHERE name = ?", name).Scan(&v)
		return v
	}
	due := company.CounterFilingDuePrefix + tr.DueOn[:7]
	is.Equal(c(company.CounterFilingKind(tr.Kind)), int64(1))
	is.Equal(c(due), int64(1))

	// The stream says it left: the columns and counters go with the exit.
	left := inStrikeOff(num, now.Add(time.Second))
	left.Detail, left.Etag = "", "etag-left"
	r.store(t, left)
	is.Equal(r.columns(t, num), [4]string{})
	is.Equal(c(company.CounterFilingKind(tr.Kind)), int64(0))
	is.Equal(c(due), int64(0))

	// A filing check for a company not in strike-off spends no request.
	r.waitDrained(t, time.Minute) // num's officers fetch, if it was running
	before := r.sim.RESTStats().Requests
	ctx := context.Background()
	r.store(t, company.Version{Number: other, Name: "X", Status: "active", Etag: "e", Source: company.Stream, SourceTime: now})
	err := r.d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := queue.EnqueueNow(ctx, tx, queue.FilingCheck, other, time.Now())
		return err
	})
	is.NoErr(err)
	r.until(t, "the check done", func() bool {
		var n int
		r.d.R.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'filing_check' AND company_number = ? AND state = 'done'", other).Scan(&n)
		return n == 1
	})
	stop()
	is.Equal(r.sim.RESTStats().Requests, before)
	is.Equal(r.columns(t, other), [4]string{})
}
