package queue_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
	"github.com/matryer/is"
)

// clock is a settable clock for a Queue.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// newQueue returns a queue on d with a clock at now and jitter fixed at
// jitter (0: waits of exactly half the backoff).
func newQueue(d *db.DB, o queue.Options, jitter float64) (*queue.Queue, *clock) {
	c := &clock{t: now}
	o.Now = c.now
	o.Rand = func() float64 { return jitter }
	return queue.New(d, o), c
}

func claim(tb testing.TB, q *queue.Queue, kinds ...queue.Kind) (queue.Job, bool) {
	tb.Helper()
	j, ok, err := q.Claim(context.Background(), kinds...)
	if err != nil {
		tb.Fatal(err)
	}
	return j, ok
}

// job reads a job's row.
func job(tb testing.TB, d *db.DB, id int64) (state string, attempts int, runAfter, lastError string) {
	tb.Helper()
	err := d.R.QueryRow("SELECT state, attempts, run_after, coalesce(last_error, '') FROM jobs WHERE id = ?", id).Scan(&state, &attempts, &runAfter, &lastError)
	if err != nil {
		tb.Fatal(err)
	}
	return
}

func TestClaimOrder(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	q, c := newQueue(d, queue.Options{}, 0)
	ctx := context.Background()
	// Officers first, a status check a minute later: the check still goes
	// first, then the sweep, then the officers oldest first.
	for _, n := range []string{"00000001", "00000002"} {
		_, err := q.Enqueue(ctx, queue.Officers, n)
		is.NoErr(err)
	}
	c.advance(time.Minute)
	_, err := q.Enqueue(ctx, queue.SweepCheck, "00000003")
	is.NoErr(err)
	_, err = q.Enqueue(ctx, queue.StatusCheck, "00000004")
	is.NoErr(err)

	var got []string
	for {
		j, ok := claim(t, q)
		if !ok {
			break
		}
		is.Equal(len(j.Token), 32) // a fresh random token
		is.Equal(j.LeaseUntil, c.now().Add(2*time.Minute))
		got = append(got, string(j.Kind)+" "+j.Company)
	}
	is.Equal(got, []string{"status_check 00000004", "sweep_check 00000003", "officers 00000001", "officers 00000002"})
	is.Equal(counter(t, d, queue.CounterPending), int64(4)) // running is pending
}

func TestClaimKinds(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	q, _ := newQueue(d, queue.Options{}, 0)
	ctx := context.Background()
	for _, k := range []queue.Kind{queue.StatusCheck, queue.Officers} {
		_, err := q.Enqueue(ctx, k, "SC571653")
		is.NoErr(err)
	}
	j, ok := claim(t, q, queue.Officers, queue.PSCs)
	is.True(ok)
	is.Equal(j.Kind, queue.Officers) // the status check is not of the kinds asked for
	_, ok = claim(t, q, queue.Officers)
	is.True(!ok)
	j, ok = claim(t, q)
	is.True(ok)
	is.Equal(j.Kind, queue.StatusCheck)
}

// A worker whose token no longer matches can finish nothing.
func TestLeaseToken(t *testing.T) {
	ops := []struct {
		name string
		do   func(q *queue.Queue, j queue.Job) error
	}{
		{"Complete", func(q *queue.Queue, j queue.Job) error { return q.Complete(context.Background(), j) }},
		{"Fail", func(q *queue.Queue, j queue.Job) error { return q.Fail(context.Background(), j, errors.New("boom")) }},
		{"Defer", func(q *queue.Queue, j queue.Job) error {
			return q.Defer(context.Background(), j, now.Add(time.Hour), "429")
		}},
		{"Renew", func(q *queue.Queue, j queue.Job) error { return q.Renew(context.Background(), &j) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			is := is.New(t)
			d := dbtest.Open(t)
			q, _ := newQueue(d, queue.Options{}, 0)
			_, err := q.Enqueue(context.Background(), queue.Officers, "SC571653")
			is.NoErr(err)
			j, ok := claim(t, q)
			is.True(ok)

			stale := j
			stale.Token = strings.Repeat("0", 32)
			err = op.do(q, stale)
			is.True(errors.Is(err, queue.ErrLeaseLost)) // the wrong token changes nothing
			state, attempts, _, _ := job(t, d, j.ID)
			is.Equal(state, "running")
			is.Equal(attempts, 0)

			is.NoErr(op.do(q, j)) // the right one works
			if op.name != "Renew" {
				is.True(errors.Is(op.do(q, j), queue.ErrLeaseLost)) // and only once
			}
		})
	}
}

func TestCompleteTx(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	q, _ := newQueue(d, queue.Options{}, 0)
	ctx := context.Background()
	_, err := q.Enqueue(ctx, queue.Officers, "SC571653")
	is.NoErr(err)
	j, _ := claim(t, q)

	// A result whose completion fails rolls back with it.
	err = d.WriteTx(ctx, func(tx db.Tx) error {
		if err := db.AddCounter(ctx, tx, "result", 1); err != nil {
			return err
		}
		bad := j
		bad.Token = "lost"
		return q.CompleteTx(ctx, tx, bad)
	})
	is.True(errors.Is(err, queue.ErrLeaseLost))
	is.Equal(counter(t, d, "result"), int64(0))

	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		if err := db.AddCounter(ctx, tx, "result", 1); err != nil {
			return err
		}
		return q.CompleteTx(ctx, tx, j)
	}))
	is.Equal(counter(t, d, "result"), int64(1))
	state, _, _, _ := job(t, d, j.ID)
	is.Equal(state, "done")
	is.Equal(counter(t, d, queue.CounterPending), int64(0))
	is.Equal(counter(t, d, queue.CounterName(queue.Officers, queue.StateDone)), int64(1))
}

func TestFailBackoffThenDead(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	q, c := newQueue(d, queue.Options{MaxAttempts: 4, BackoffMin: 30 * time.Second, BackoffMax: 90 * time.Second}, 0)
	ctx := context.Background()
	_, err := q.Enqueue(ctx, queue.Officers, "SC571653")
	is.NoErr(err)

	// Jitter 0 waits half the backoff: 15s, 30s, then the cap 90s halved.
	for i, wait := range []time.Duration{15 * time.Second, 30 * time.Second, 45 * time.Second} {
		j, ok := claim(t, q)
		is.True(ok)
		is.Equal(j.Attempts, i)
		is.NoErr(q.Fail(ctx, j, fmt.Errorf("GET /company/SC571653/officers: 500 (try %d)", i+1)))
		state, attempts, runAfter, last := job(t, d, j.ID)
		is.Equal(state, "queued")
		is.Equal(attempts, i+1)
		is.Equal(runAfter, db.FormatTime(c.now().Add(wait)))
		is.True(strings.Contains(last, fmt.Sprintf("try %d", i+1)))

		c.advance(wait - time.Second)
		_, ok = claim(t, q)
		is.True(!ok) // not before its backoff
		c.advance(time.Second)
	}
	j, ok := claim(t, q)
	is.True(ok)
	is.NoErr(q.Fail(ctx, j, errors.New("500 again")))
	state, attempts, _, last := job(t, d, j.ID)
	is.Equal(state, "dead") // the 4th failure of 4
	is.Equal(attempts, 4)
	is.Equal(last, "500 again") // kept
	c.advance(24 * time.Hour)
	_, ok = claim(t, q)
	is.True(!ok) // dead is never claimed

	dead, err := queue.ListDead(ctx, d.R, 10)
	is.NoErr(err)
	is.Equal(len(dead), 1)
	is.Equal(dead[0].Company, "SC571653")
	is.Equal(dead[0].Attempts, 4)
	is.Equal(dead[0].LastError, "500 again")
	is.Equal(counter(t, d, queue.CounterPending), int64(0))

	n, err := q.Retry(ctx)
	is.NoErr(err)
	is.Equal(n, int64(1))
	j, ok = claim(t, q)
	is.True(ok)
	is.Equal(j.Attempts, 0) // a retried job starts afresh
	is.NoErr(q.Fail(ctx, j, errors.New("again")))
}

func TestBackoffJitter(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	q := queue.New(d, queue.Options{BackoffMin: 10 * time.Second, BackoffMax: time.Hour, Rand: rand.New(rand.NewPCG(1, 2)).Float64})
	seen := map[time.Duration]bool{}
	for range 100 {
		w := q.Backoff(3) // 40s before jitter
		is.True(w >= 20*time.Second && w <= 40*time.Second)
		seen[w] = true
	}
	is.True(len(seen) > 50)                  // jobs failing together come back apart
	is.True(q.Backoff(40) <= time.Hour)      // capped
	is.True(q.Backoff(40) >= 30*time.Minute) // at half the cap at least
	is.True(q.Backoff(1) <= 10*time.Second)  // the first wait is BackoffMin at most
	is.True(q.Backoff(1) >= 5*time.Second)   // and half of it at least
}

// Waiting on the budget, the breaker or a 429 never spends an attempt, so a
// long outage kills no job.
func TestDeferSpendsNoAttempt(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	q, c := newQueue(d, queue.Options{MaxAttempts: 2}, 0)
	ctx := context.Background()
	_, err := q.Enqueue(ctx, queue.Officers, "SC571653")
	is.NoErr(err)
	for range 50 {
		j, ok := claim(t, q)
		is.True(ok)
		is.NoErr(q.Defer(ctx, j, c.now().Add(5*time.Minute), "breaker open"))
		_, ok = claim(t, q)
		is.True(!ok) // waits until then
		c.advance(5 * time.Minute)
	}
	j, ok := claim(t, q)
	is.True(ok)
	is.Equal(j.Attempts, 0)
	is.Equal(j.LastError, "breaker open") // why it waited
}

// A process killed while holding leases: its jobs come back once the lease
// expires, without an attempt spent, and the old worker cannot finish them.
func TestExpiredLeaseComesBack(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	crashed, c := newQueue(d, queue.Options{Lease: 2 * time.Minute}, 0)
	_, err := crashed.Enqueue(ctx, queue.Officers, "SC571653")
	is.NoErr(err)
	old, ok := claim(t, crashed)
	is.True(ok)

	restarted := queue.New(d, queue.Options{Lease: 2 * time.Minute, Now: c.now})
	c.advance(2 * time.Minute)
	_, ok = claim(t, restarted)
	is.True(!ok) // still leased

	c.advance(time.Second)
	j, ok := claim(t, restarted)
	is.True(ok)
	is.Equal(j.ID, old.ID)
	is.True(j.Token != old.Token)
	is.Equal(j.Attempts, 0)
	is.True(strings.Contains(j.LastError, "lease expired"))
	is.True(errors.Is(crashed.Complete(ctx, old), queue.ErrLeaseLost))
	is.NoErr(restarted.Complete(ctx, j))
}

func TestRecoverExpired(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, c := newQueue(d, queue.Options{}, 0)
	for _, n := range []string{"00000001", "00000002", "00000003"} {
		_, err := q.Enqueue(ctx, queue.Officers, n)
		is.NoErr(err)
	}
	claim(t, q)
	claim(t, q)
	n, err := q.RecoverExpired(ctx)
	is.NoErr(err)
	is.Equal(n, int64(0))
	c.advance(time.Hour)
	n, err = q.RecoverExpired(ctx)
	is.NoErr(err)
	is.Equal(n, int64(2))
	depth, err := queue.Depths(ctx, d.R)
	is.NoErr(err)
	is.Equal(depth, queue.Depth{queue.Officers: {queue.StateQueued: 3}})
}

func TestRenew(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, c := newQueue(d, queue.Options{Lease: 2 * time.Minute}, 0)
	other := queue.New(d, queue.Options{Now: c.now})
	_, err := q.Enqueue(ctx, queue.Officers, "SC571653")
	is.NoErr(err)
	j, _ := claim(t, q)
	c.advance(90 * time.Second)
	is.NoErr(q.Renew(ctx, &j))
	is.Equal(j.LeaseUntil, c.now().Add(2*time.Minute))
	c.advance(90 * time.Second) // past the first lease, within the renewed one
	_, ok := claim(t, other)
	is.True(!ok)
	is.NoErr(q.Complete(ctx, j))
}

// A graceful stop hands its running jobs back at once.
func TestReleaseLeases(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, c := newQueue(d, queue.Options{}, 0)
	other := queue.New(d, queue.Options{Now: c.now})
	for _, n := range []string{"00000001", "00000002", "00000003"} {
		_, err := q.Enqueue(ctx, queue.Officers, n)
		is.NoErr(err)
	}
	a, _ := claim(t, q)
	b, _ := claim(t, q)
	cc, _ := claim(t, other)
	is.NoErr(q.Complete(ctx, b))
	is.NoErr(q.ReleaseLeases(ctx)) // a only: b is done, cc is the other's
	state, attempts, _, _ := job(t, d, a.ID)
	is.Equal(state, "queued")
	is.Equal(attempts, 0)
	state, _, _, _ = job(t, d, cc.ID)
	is.Equal(state, "running")
	is.True(errors.Is(q.Complete(ctx, a), queue.ErrLeaseLost))

	is.NoErr(q.ReleaseLeases(ctx, cc.Token)) // by token
	state, _, _, _ = job(t, d, cc.ID)
	is.Equal(state, "queued")
}

func TestEnqueueNow(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, c := newQueue(d, queue.Options{}, 0)
	enqueueNow := func(company string) queue.Result {
		var res queue.Result
		is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
			var err error
			res, err = queue.EnqueueNow(ctx, tx, queue.Officers, company, c.now())
			return err
		}))
		return res
	}
	// Past max depth, EnqueueTx refuses; EnqueueNow does not.
	is.Equal(enqueue(t, d, queue.Officers, "00000001", 1), queue.Queued)
	is.Equal(enqueue(t, d, queue.Officers, "00000002", 1), queue.Refused)
	is.Equal(enqueueNow("00000002"), queue.Queued)

	// A job waiting on a backoff is moved to now.
	j, _ := claim(t, q)
	is.Equal(j.Company, "00000001")
	is.NoErr(q.Defer(ctx, j, c.now().Add(time.Hour), "budget"))
	j, _ = claim(t, q)
	is.Equal(j.Company, "00000002")
	is.Equal(enqueueNow("00000002"), queue.Exists) // running: left alone
	_, ok := claim(t, q)
	is.True(!ok)
	is.Equal(enqueueNow("00000001"), queue.Moved)
	j, ok = claim(t, q)
	is.True(ok)
	is.Equal(j.Company, "00000001")
	is.Equal(counter(t, d, queue.CounterPending), int64(2))
}

func TestPurgeAndDeleteDone(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, c := newQueue(d, queue.Options{MaxAttempts: 1}, 0)
	for i := range 10 {
		_, err := q.Enqueue(ctx, queue.Officers, fmt.Sprintf("%08d", i))
		is.NoErr(err)
	}
	for i := range 10 {
		j, _ := claim(t, q)
		if i < 3 {
			is.NoErr(q.Fail(ctx, j, errors.New("bad")))
		} else {
			is.NoErr(q.Complete(ctx, j))
		}
		c.advance(time.Minute)
	}
	n, err := q.Purge(ctx)
	is.NoErr(err)
	is.Equal(n, int64(3))

	// Done jobs finished before the cutoff go, a limit at a time.
	cutoff := now.Add(6 * time.Minute) // jobs 3, 4 and 5 finished before it
	var deleted []int64
	for {
		var n int64
		is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
			var err error
			n, err = queue.DeleteDoneTx(ctx, tx, cutoff, 2)
			return err
		}))
		deleted = append(deleted, n)
		if n < 2 {
			break
		}
	}
	is.Equal(deleted, []int64{2, 1})
	depth, err := queue.Depths(ctx, d.R)
	is.NoErr(err)
	is.Equal(depth, queue.Depth{queue.Officers: {queue.StateDone: 4}})

	n, err = q.DeleteDone(ctx, now.Add(time.Hour), 3) // the rest, 3 a transaction
	is.NoErr(err)
	is.Equal(n, int64(4))
	depth, err = queue.Depths(ctx, d.R)
	is.NoErr(err)
	is.Equal(len(depth), 0)
}

func TestOldest(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, c := newQueue(d, queue.Options{}, 0)
	_, err := q.Enqueue(ctx, queue.Officers, "00000001")
	is.NoErr(err)
	c.advance(time.Hour)
	_, err = q.Enqueue(ctx, queue.Officers, "00000002")
	is.NoErr(err)
	_, err = q.Enqueue(ctx, queue.StatusCheck, "00000003")
	is.NoErr(err)
	oldest, err := queue.Oldest(ctx, d.R)
	is.NoErr(err)
	is.Equal(oldest, map[queue.Kind]time.Time{queue.Officers: now, queue.StatusCheck: now.Add(time.Hour)})
}

func TestParseKind(t *testing.T) {
	is := is.New(t)
	for _, k := range queue.Kinds() {
		got, err := queue.ParseKind(string(k))
		is.NoErr(err)
		is.Equal(got, k)
		is.True(k.Priority() >= 0)
	}
	_, err := queue.ParseKind("officer")
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "status_check, sweep_check, officers")) // names the kinds
	is.Equal(queue.Kind("officer").Priority(), -1)
}

// Whatever happens to jobs, through the queue or by hand in sqlite3, the
// counters agree with the rows.
func TestCountersFollowRows(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, c := newQueue(d, queue.Options{MaxAttempts: 3, MaxDepth: 40}, 0.5)
	rng := rand.New(rand.NewPCG(7, 11))
	kinds := queue.Kinds()
	var held []queue.Job
	for i := range 2000 {
		n := fmt.Sprintf("%08d", rng.IntN(30))
		k := kinds[rng.IntN(len(kinds))]
		switch op := rng.IntN(11); {
		case op < 3:
			_, err := q.Enqueue(ctx, k, n)
			is.NoErr(err)
		case op < 5:
			if j, ok := claim(t, q); ok {
				held = append(held, j)
			}
		case op < 9 && len(held) > 0:
			j := held[0]
			held = held[1:]
			var err error
			switch op {
			case 5:
				err = q.Complete(ctx, j)
			case 6:
				err = q.Fail(ctx, j, errors.New("x"))
			case 7:
				err = q.Defer(ctx, j, c.now().Add(time.Minute), "wait")
			case 8:
				err = q.ReleaseLeases(ctx, j.Token)
			}
			if err != nil && !errors.Is(err, queue.ErrLeaseLost) {
				t.Fatal(err)
			}
		case op == 9:
			is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
				_, err := queue.CancelTx(ctx, tx, k, n)
				return err
			}))
		default:
			switch i % 3 {
			case 0:
				_, err := q.Retry(ctx)
				is.NoErr(err)
			case 1:
				// By hand, as an operator might.
				_, err := d.W.Exec("UPDATE jobs SET state = 'dead' WHERE id = (SELECT max(id) FROM jobs WHERE state = 'done')")
				is.NoErr(err)
			case 2:
				_, err := d.W.Exec("DELETE FROM jobs WHERE id = (SELECT min(id) FROM jobs)")
				is.NoErr(err)
			}
		}
		c.advance(time.Duration(rng.IntN(40)) * time.Second)
	}

	want := queue.Depth{}
	rows, err := d.R.Query("SELECT kind, state, count(*) FROM jobs GROUP BY kind, state")
	is.NoErr(err)
	defer rows.Close()
	var pending int64
	for rows.Next() {
		var k, s string
		var n int64
		is.NoErr(rows.Scan(&k, &s, &n))
		if want[queue.Kind(k)] == nil {
			want[queue.Kind(k)] = map[queue.State]int64{}
		}
		want[queue.Kind(k)][queue.State(s)] = n
		if s == "queued" || s == "running" {
			pending += n
		}
	}
	is.NoErr(rows.Err())
	got, err := queue.Depths(ctx, d.R)
	is.NoErr(err)
	is.Equal(got, want)
	is.Equal(counter(t, d, queue.CounterPending), pending)
	is.True(len(want) >= 4) // the walk reached most kinds
}

// A status check queued behind a long backlog of officer fetches is the next
// job claimed: its wait is the budget's pacing, never the backlog.
func TestStatusCheckBehindBacklog(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	backlog := 100_000
	if testing.Short() {
		backlog = 10_000
	}
	fillOfficers(t, d, backlog, now.Add(-time.Hour))
	q, _ := newQueue(d, queue.Options{}, 0)
	_, err := q.Enqueue(ctx, queue.StatusCheck, "SC571653")
	is.NoErr(err)
	j, ok := claim(t, q)
	is.True(ok)
	is.Equal(j.Kind, queue.StatusCheck)
	is.Equal(j.Company, "SC571653")
	j, ok = claim(t, q)
	is.True(ok)
	is.Equal(j.Kind, queue.Officers)
	is.Equal(j.Company, "00000000") // then the oldest officers fetch
	depth, err := queue.Depths(ctx, d.R)
	is.NoErr(err)
	is.Equal(depth.Count(queue.Officers, queue.StateQueued), int64(backlog-1))
}

// fillOfficers queues n officer jobs, one a second from since, in one
// statement (as an import with --officers would leave them).
func fillOfficers(tb testing.TB, d *db.DB, n int, since time.Time) {
	tb.Helper()
	_, err := d.W.Exec(`WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n + 1 < ?1)
		INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at)
		SELECT 'officers', 20, printf('%08d', n), 'queued', t, t, t
		FROM (SELECT n, strftime('%Y-%m-%dT%H:%M:%SZ', ?2, '+' || n || ' seconds') AS t FROM i)`, n, db.FormatTime(since))
	if err != nil {
		tb.Fatal(err)
	}
}

// A job that can never succeed is dead at once, with its cause, and comes
// back with `queue retry` like any dead job.
func TestBury(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, _ := newQueue(d, queue.Options{}, 0)
	_, err := q.Enqueue(ctx, queue.Officers, "SC57165")
	is.NoErr(err)
	j, _ := claim(t, q)
	is.NoErr(q.Bury(ctx, j, errors.New(`"SC57165" is not a company number: nothing sent`)))
	state, attempts, _, last := job(t, d, j.ID)
	is.Equal(state, "dead")
	is.Equal(attempts, 1)
	is.True(strings.Contains(last, "not a company number"))
	is.True(errors.Is(q.Bury(ctx, j, nil), queue.ErrLeaseLost)) // the token is spent
	n, err := q.Retry(ctx)
	is.NoErr(err)
	is.Equal(n, int64(1))
}

// At start, under the instance lock, every running job was left by a
// process that is gone: it comes back at once, lease or not, no attempt
// spent.
func TestRecoverOrphans(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	q, _ := newQueue(d, queue.Options{Lease: time.Hour}, 0)
	for _, n := range []string{"00000001", "00000002", "00000003"} {
		_, err := q.Enqueue(ctx, queue.Officers, n)
		is.NoErr(err)
	}
	a, _ := claim(t, q)
	claim(t, q)
	n, err := q.RecoverExpired(ctx)
	is.NoErr(err)
	is.Equal(n, int64(0)) // the leases hold an hour
	restarted := queue.New(d, queue.Options{Now: func() time.Time { return now }})
	n, err = restarted.RecoverOrphans(ctx)
	is.NoErr(err)
	is.Equal(n, int64(2))
	state, attempts, _, last := job(t, d, a.ID)
	is.Equal(state, "queued")
	is.Equal(attempts, 0)
	is.True(strings.Contains(last, "taken back at start"))
	is.True(errors.Is(q.Complete(ctx, a), queue.ErrLeaseLost))
}

// What finished jobs cost is kept per kind, for status's estimate.
func TestCosts(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	costs, err := queue.Costs(ctx, d.R)
	is.NoErr(err)
	is.Equal(len(costs), 0) // nothing measured yet
	err = d.WriteTx(ctx, func(tx db.Tx) error {
		for _, c := range []struct {
			k queue.Kind
			n int
		}{{queue.Officers, 1}, {queue.Officers, 3}, {queue.Officers, 2}, {queue.StatusCheck, 1}} {
			if err := queue.RecordCostTx(ctx, tx, c.k, c.n); err != nil {
				return err
			}
		}
		return nil
	})
	is.NoErr(err)
	costs, err = queue.Costs(ctx, d.R)
	is.NoErr(err)
	is.Equal(costs, map[queue.Kind]float64{queue.Officers: 2, queue.StatusCheck: 1})
	depth, err := queue.Depths(ctx, d.R)
	is.NoErr(err)
	is.Equal(len(depth), 0) // cost counters are not job counts
}
