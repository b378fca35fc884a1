package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
	"github.com/matryer/is"
)

var now = time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)

// enqueue runs Enqueue in its own write transaction.
func enqueue(tb testing.TB, d *db.DB, kind queue.Kind, company string, maxDepth int64) queue.Result {
	tb.Helper()
	var res queue.Result
	err := d.WriteTx(context.Background(), func(tx db.Tx) error {
		var err error
		res, err = queue.EnqueueTx(context.Background(), tx, kind, company, now, maxDepth)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func counter(tb testing.TB, d *db.DB, name string) int64 {
	tb.Helper()
	c, err := db.Counters(context.Background(), d.W)
	if err != nil {
		tb.Fatal(err)
	}
	return c[name]
}

func setState(tb testing.TB, d *db.DB, kind queue.Kind, company, state string) {
	tb.Helper()
	_, err := d.W.ExecContext(context.Background(),
		"UPDATE jobs SET state = ? WHERE kind = ? AND company_number = ? AND state IN ('queued', 'running')", state, kind, company)
	if err != nil {
		tb.Fatal(err)
	}
}

func TestEnqueueDedup(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)

	is.Equal(enqueue(t, d, queue.Officers, "SC571653", 0), queue.Queued)
	is.Equal(counter(t, d, queue.CounterPending), int64(1))
	is.Equal(enqueue(t, d, queue.Officers, "SC571653", 0), queue.Exists) // already queued
	is.Equal(counter(t, d, queue.CounterPending), int64(1))              // not counted twice

	// Another kind, or another company, is another job.
	is.Equal(enqueue(t, d, queue.StatusCheck, "SC571653", 0), queue.Queued)
	is.Equal(enqueue(t, d, queue.Officers, "00000006", 0), queue.Queued)
	is.Equal(counter(t, d, queue.CounterPending), int64(3))

	setState(t, d, queue.Officers, "SC571653", "running")
	is.Equal(enqueue(t, d, queue.Officers, "SC571653", 0), queue.Exists) // still running

	setState(t, d, queue.Officers, "SC571653", "done")
	is.Equal(enqueue(t, d, queue.Officers, "SC571653", 0), queue.Queued) // allowed again once done

	setState(t, d, queue.Officers, "SC571653", "dead")
	is.Equal(enqueue(t, d, queue.Officers, "SC571653", 0), queue.Queued) // and once dead

	var n int
	is.NoErr(d.W.QueryRow("SELECT count(*) FROM jobs WHERE kind = 'officers' AND company_number = 'SC571653'").Scan(&n))
	is.Equal(n, 3) // done, dead, queued
}

func TestEnqueuePriority(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	for _, kind := range []queue.Kind{queue.Officers, queue.SweepCheck, queue.StatusCheck} {
		is.Equal(enqueue(t, d, kind, "NI012345", 0), queue.Queued)
	}
	rows, err := d.W.Query("SELECT kind, priority, state, run_after FROM jobs ORDER BY priority")
	is.NoErr(err)
	defer rows.Close()
	var kinds []queue.Kind
	for rows.Next() {
		var kind, state, runAfter string
		var prio int
		is.NoErr(rows.Scan(&kind, &prio, &state, &runAfter))
		is.Equal(prio, queue.Kind(kind).Priority())
		is.Equal(state, "queued")
		is.Equal(runAfter, "2026-11-28T23:41:36Z")
		kinds = append(kinds, queue.Kind(kind))
	}
	is.NoErr(rows.Err())
	is.Equal(kinds, []queue.Kind{queue.StatusCheck, queue.SweepCheck, queue.Officers}) // status checks first
}

func TestEnqueueUnknownKind(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	err := d.WriteTx(context.Background(), func(tx db.Tx) error {
		_, err := queue.EnqueueTx(context.Background(), tx, "bogus", "SC571653", now, 0)
		return err
	})
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "unknown kind"))
}

func TestEnqueueMaxDepth(t *testing.T) {
	tests := []struct {
		name     string
		maxDepth int64
		kind     queue.Kind
		want     queue.Result
		refused  int64
		pending  int64
	}{
		{"OfficersRefusedAtDepth", 2, queue.Officers, queue.Refused, 1, 2},
		{"StatusCheckNeverRefused", 2, queue.StatusCheck, queue.Queued, 0, 3},
		{"SweepCheckNotRefused", 2, queue.SweepCheck, queue.Queued, 0, 3},
		{"OfficersBelowDepth", 3, queue.Officers, queue.Queued, 0, 3},
		{"ZeroMeansNoLimit", 0, queue.Officers, queue.Queued, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			d := dbtest.Open(t)
			is.Equal(enqueue(t, d, queue.Officers, "00000001", tt.maxDepth), queue.Queued)
			is.Equal(enqueue(t, d, queue.Officers, "00000002", tt.maxDepth), queue.Queued)
			is.Equal(enqueue(t, d, tt.kind, "00000003", tt.maxDepth), tt.want)
			is.Equal(counter(t, d, queue.CounterRefused), tt.refused)
			is.Equal(counter(t, d, queue.CounterPending), tt.pending)
			var n int64
			is.NoErr(d.W.QueryRow("SELECT count(*) FROM jobs WHERE state = 'queued'").Scan(&n))
			is.Equal(n, tt.pending) // a refused job is not in the table
		})
	}
}

func TestCancel(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	enqueue(t, d, queue.Officers, "SC571653", 0)
	enqueue(t, d, queue.StatusCheck, "SC571653", 0)
	enqueue(t, d, queue.Officers, "OC301234", 0)
	setState(t, d, queue.Officers, "OC301234", "running")

	cancel := func(kind queue.Kind, company string) int64 {
		var n int64
		is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
			var err error
			n, err = queue.CancelTx(ctx, tx, kind, company)
			return err
		}))
		return n
	}
	is.Equal(cancel(queue.Officers, "SC571653"), int64(1))
	is.Equal(counter(t, d, queue.CounterPending), int64(2))
	is.Equal(cancel(queue.Officers, "SC571653"), int64(0)) // nothing left
	is.Equal(cancel(queue.Officers, "OC301234"), int64(0)) // a running job is not cancelled
	is.Equal(counter(t, d, queue.CounterPending), int64(2))

	depth, err := queue.Depths(ctx, d.W)
	is.NoErr(err)
	is.Equal(depth, queue.Depth{
		queue.StatusCheck: {"queued": 1},
		queue.Officers:    {"running": 1},
	})
}

func TestDepths(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	depth, err := queue.Depths(context.Background(), d.R)
	is.NoErr(err)
	is.Equal(len(depth), 0)

	enqueue(t, d, queue.Officers, "00000001", 0)
	enqueue(t, d, queue.Officers, "00000002", 0)
	enqueue(t, d, queue.Officers, "00000003", 0)
	enqueue(t, d, queue.StatusCheck, "00000001", 0)
	enqueue(t, d, queue.SweepCheck, "00000001", 0)
	setState(t, d, queue.Officers, "00000002", "done")
	setState(t, d, queue.Officers, "00000003", "dead")
	depth, err = queue.Depths(context.Background(), d.R)
	is.NoErr(err)
	is.Equal(depth, queue.Depth{
		queue.Officers:    {"queued": 1, "done": 1, "dead": 1},
		queue.StatusCheck: {"queued": 1},
		queue.SweepCheck:  {"queued": 1},
	})
}

// The claim statement walks jobs_claim in ORDER BY order: no sort, no scan.
func TestClaimUsesIndex(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	for i, kind := range []queue.Kind{queue.Officers, queue.StatusCheck, queue.SweepCheck} {
		for _, n := range []string{"00000001", "00000002", "SC571653"} {
			enqueue(t, d, kind, n, 0)
		}
		if i == 0 {
			setState(t, d, kind, "00000001", "done")
		}
	}
	plan := dbtest.Plan(t, d, queue.ClaimSQL, db.FormatTime(now.Add(time.Minute)), "token", db.FormatTime(now), "")
	t.Log(plan)
	// The plan of the statement Claim runs: jobs_claim, partial on state =
	// 'queued' and ordered (priority, run_after, id), serves both the WHERE
	// and the ORDER BY, and ClaimSQL names it (INDEXED BY) so the planner
	// cannot prefer jobs_state and sort.
	is.True(strings.Contains(plan, "INDEX jobs_claim")) // the claim walks jobs_claim
	is.True(!strings.Contains(plan, "TEMP B-TREE"))     // in ORDER BY order, without a sort
}
