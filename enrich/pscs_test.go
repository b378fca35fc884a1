package enrich_test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/enrich"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

const pscsEndpoint = "/company/{n}/persons-with-significant-control"

// pending is how many jobs of kinds are queued or running (the filing
// checks waiting a day for a notice left out).
func (r *rig) pending(t *testing.T, kinds ...queue.Kind) int64 {
	t.Helper()
	d, err := queue.Depths(context.Background(), r.d.R)
	if err != nil {
		t.Fatal(err)
	}
	n := d.Sum(queue.StateQueued, kinds...) + d.Sum(queue.StateRunning, kinds...)
	if slices.Contains(kinds, queue.FilingCheck) {
		n -= r.rechecks(t) // tomorrow's work
	}
	return n
}

// pscsOf reads the stored PSC ids of number, sorted.
func (r *rig) pscsOf(t *testing.T, number string) []string {
	t.Helper()
	rows, err := r.d.R.Query("SELECT psc_id FROM pscs WHERE company_number = ? ORDER BY psc_id", number)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		out = append(out, id)
	}
	return out
}

// The PSCs of every strike-off company are fetched beside its officers
// (paged lists, pages capped at 35 and overlapping, empty lists, ceased
// PSCs) and stored exactly as the simulator has them.
func TestPSCsMatchTheSimulator(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 11, Companies: 200, APIRateLimit: 3000, APIRateWindow: time.Second,
		API: sim.APIFaults{PageCap: 35, OverlapPages: true}}, rigOptions{workers: 3, pscs: true, policy: company.Policy{PSCs: true}})
	now := time.Now().UTC()
	var vs []company.Version
	for _, n := range r.sim.CompanyNumbers() {
		vs = append(vs, inStrikeOff(n, now))
	}
	r.store(t, vs...)
	is.Equal(r.pending(t, queue.PSCs), int64(200)) // queued on entry, beside the officers
	r.start(t)
	// As long as waitDrained allows: under -race (and qemu) 600 lists take a while.
	for end := time.Now().Add(60 * time.Second); r.pending(t, append(enrich.Kinds(), queue.PSCs)...) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d jobs still pending after 60s", r.pending(t, append(enrich.Kinds(), queue.PSCs)...))
		}
	}
	paged, empty, ceased := 0, 0, 0
	for _, n := range r.sim.CompanyNumbers() {
		var want []string
		for _, p := range r.sim.PSCs(n).PSCs {
			want = append(want, p.ID)
			if p.CeasedOn != "" {
				ceased++
			}
		}
		sort.Strings(want)
		if got := r.pscsOf(t, n); !slices.Equal(got, want) {
			t.Errorf("company %s: %d PSCs stored, the simulator has %d", n, len(got), len(want))
		}
		switch {
		case len(want) > 35:
			paged++
		case len(want) == 0:
			empty++
		}
	}
	is.True(paged > 0 && empty > 0 && ceased > 0) // the shapes that matter were there
	r.checkJobs(t, queue.PSCs, 200)
	var stored int64
	is.NoErr(r.d.R.QueryRow("SELECT value FROM counters WHERE name = ?", company.CounterPSCs).Scan(&stored))
	is.Equal(int(stored), r.count(t, "SELECT count(*) FROM pscs"))
	costs, err := queue.Costs(context.Background(), r.d.R)
	is.NoErr(err)
	is.True(costs[queue.PSCs] > 1) // some lists took several pages
	t.Logf("%d companies (%d paged, %d without PSCs), %d PSCs, %.3f requests a list", 200, paged, empty, stored, costs[queue.PSCs])
}

// Without enrich.pscs the workers never claim a pscs job, and send no PSC
// request.
func TestPSCsOffAreNeverClaimed(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 11, Companies: 20, APIRateLimit: 3000, APIRateWindow: time.Second}, rigOptions{workers: 2})
	n := r.sim.CompanyNumbers()[0]
	// Queued before the officers job, at the same priority: a worker that
	// could claim it would take it first, so once the officers are done
	// it would be gone.
	_, err := r.q.Enqueue(context.Background(), queue.PSCs, n)
	is.NoErr(err)
	r.store(t, inStrikeOff(n, time.Now().UTC()))
	r.start(t)
	r.until(t, "officers done", func() bool { return r.pending(t, enrich.Kinds()...) == 0 })
	is.Equal(r.pending(t, queue.PSCs), int64(1))
	is.Equal(r.sim.RESTStats().ByEndpoint[pscsEndpoint], int64(0))
}

// SetUpPSCs: turning enrich.pscs on queues the strike-off companies
// without PSC rows and without a pending job, once; turning it off drops
// the queued jobs; on again queues afresh those without rows.
func TestSetUpPSCs(t *testing.T) {
	is := is.New(t)
	r := newRig(t, sim.Config{Seed: 11, Companies: 20}, rigOptions{})
	ctx := context.Background()
	now := time.Now().UTC()
	nums := r.sim.CompanyNumbers()
	r.store(t, inStrikeOff(nums[0], now), inStrikeOff(nums[1], now), inStrikeOff(nums[2], now),
		company.Version{Number: nums[3], Name: "ACTIVE", Status: "active", Source: company.Stream, SourceTime: now})
	// nums[0] has PSCs already (an earlier run), nums[1] a pending job.
	is.NoErr(r.d.WriteTx(ctx, func(tx db.Tx) error {
		seq, _ := db.BeginSeq(ctx, tx)
		p, _ := company.ParsePSC([]byte(`{"kind":"individual-person-with-significant-control","name":"A","links":{"self":"/x/individual/a"}}`))
		if _, err := company.ReplacePSCsTx(ctx, tx, seq, nums[0], []company.PSC{p}, now); err != nil {
			return err
		}
		if _, err := queue.EnqueueTx(ctx, tx, queue.PSCs, nums[1], now, 0); err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	}))
	jobsOf := func(n string) int {
		return r.count(t, "SELECT count(*) FROM jobs WHERE kind = 'pscs' AND company_number = ? AND state = 'queued'", n)
	}

	res, err := enrich.SetUpPSCs(ctx, r.d, true, 0, now)
	is.NoErr(err)
	is.True(res.Backfill)
	is.Equal(res.Queued, int64(1)) // nums[2] only
	is.Equal([]int{jobsOf(nums[0]), jobsOf(nums[1]), jobsOf(nums[2]), jobsOf(nums[3])}, []int{0, 1, 1, 0})

	is.NoErr(r.d.WriteTx(ctx, func(tx db.Tx) error { _, err := queue.CancelTx(ctx, tx, queue.PSCs, nums[2]); return err }))
	res, err = enrich.SetUpPSCs(ctx, r.d, true, 0, now.Add(time.Hour)) // the next start
	is.NoErr(err)
	is.Equal(res, enrich.PSCSetup{Since: now.Truncate(time.Second)}) // once: nothing queued again
	is.Equal(jobsOf(nums[2]), 0)

	res, err = enrich.SetUpPSCs(ctx, r.d, false, 0, now)
	is.NoErr(err)
	is.Equal(res.Cancelled, int64(1))
	is.Equal(r.count(t, "SELECT count(*) FROM jobs WHERE kind = 'pscs' AND state = 'queued'"), 0)
	is.Equal(len(r.pscsOf(t, nums[0])), 1) // stored PSCs stay

	res, err = enrich.SetUpPSCs(ctx, r.d, true, 0, now)
	is.NoErr(err)
	is.Equal(res.Queued, int64(2)) // nums[1] and nums[2], not nums[0] with its rows

	t.Run("PastMaxDepth", func(t *testing.T) {
		is := is.New(t)
		_, err := enrich.SetUpPSCs(ctx, r.d, false, 0, now)
		is.NoErr(err)
		res, err := enrich.SetUpPSCs(ctx, r.d, true, 1, now) // one job may go in
		is.NoErr(err)
		is.Equal(res.Queued+res.Refused, int64(2))
		is.True(res.Refused >= 1)
	})
}
