// Package queue owns the jobs table: chwatch's durable queue of REST work.
// No other package reads or writes jobs; they call this one.
//
// Enqueueing happens inside the caller's transaction (EnqueueTx), so a job
// exists exactly when the change that caused it does, with one pending job
// per kind and company and a depth limit for low-priority work. Workers
// Claim the next due job with a lease and a fresh lease token, and finish
// it with Complete, Fail (an attempt spent, exponential backoff with
// jitter, dead after MaxAttempts), Bury (dead at once: it can never
// succeed) or Defer (no attempt spent), each matching the token. Counts
// per kind and state are kept in counters by triggers on jobs (migration
// 0002), so status and /metrics never count rows; RecordCostTx keeps what
// finished jobs cost in REST requests, for status's backlog estimate.
package queue

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chwatch/chwatch/db"
)

// Kind is a kind of job. Its priority is a method: lower runs first.
type Kind string

// The kinds of job the schema accepts.
const (
	StatusCheck Kind = "status_check" // confirm a company's status through REST (hybrid exits, missing from bulk, oversized lines)
	SweepCheck  Kind = "sweep_check"  // re-check a strike-off company after a stream gap
	Officers    Kind = "officers"     // fetch the officers of a company in strike-off
	FilingCheck Kind = "filing_check" // read a company's filing history (a later issue)
	PSCs        Kind = "pscs"         // fetch a company's persons with significant control (a later issue)
)

// Kinds returns every kind, highest priority first.
func Kinds() []Kind { return []Kind{StatusCheck, SweepCheck, Officers, FilingCheck, PSCs} }

// Priority is the kind's place in the queue: status checks (0) before gap
// sweeps (10) before fetches (20). An unknown kind is -1.
func (k Kind) Priority() int {
	switch k {
	case StatusCheck:
		return 0
	case SweepCheck:
		return 10
	case Officers, FilingCheck, PSCs:
		return 20
	}
	return -1
}

// lowPriority kinds are refused past queue.max_depth.
func (k Kind) lowPriority() bool { return k.Priority() > SweepCheck.Priority() }

// ParseKind reads a kind's name.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if k.Priority() < 0 {
		names := make([]string, 0, 5)
		for _, k := range Kinds() {
			names = append(names, string(k))
		}
		return "", fmt.Errorf("unknown job kind %q (kinds: %s)", s, strings.Join(names, ", "))
	}
	return k, nil
}

// State is where a job is in its life.
type State string

// The states of a job.
const (
	StateQueued  State = "queued"
	StateRunning State = "running"
	StateDone    State = "done"
	StateDead    State = "dead"
)

// States returns every state in life order.
func States() []State { return []State{StateQueued, StateRunning, StateDone, StateDead} }

// Counter names kept in the counters table (by the triggers of migration
// 0002, except CounterRefused).
const (
	CounterPending = "jobs_pending" // queued or running
	CounterRefused = "jobs_refused" // refused past queue.max_depth
)

// CounterName is the counter holding the number of jobs of kind in state.
func CounterName(k Kind, s State) string { return "jobs." + string(k) + "." + string(s) }

// Result says what an enqueue did.
type Result int

// Results of an enqueue.
const (
	Queued  Result = iota // a new job
	Exists                // one was already queued or running for this kind and company
	Refused               // the queue is past max depth for low-priority work
	Moved                 // EnqueueNow: the queued job's run_after was moved to now
)

func (r Result) String() string {
	switch r {
	case Queued:
		return "queued"
	case Exists:
		return "exists"
	case Refused:
		return "refused"
	case Moved:
		return "moved"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Job is a job as Claim hands it out, or as ListDead reads it.
type Job struct {
	ID         int64
	Kind       Kind
	Company    string
	State      State
	Attempts   int    // failures spent so far
	Token      string // lease token set by Claim (jobs.lease_token)
	LeaseUntil time.Time
	LastError  string
	RunAfter   time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ErrLeaseLost is returned by Complete, Fail, Renew and Defer when the job's
// lease token no longer matches: the lease expired and the job went back to
// the queue (another worker may hold it now), or it was released.
var ErrLeaseLost = errors.New("lease lost: the job is no longer held with this token")

// Options configure a Queue. Zero values take the defaults.
type Options struct {
	MaxAttempts int           // queue.max_attempts: the failure that makes a job dead (default 8)
	MaxDepth    int64         // queue.max_depth: pending jobs past which low-priority kinds are refused (0: no limit)
	Lease       time.Duration // how long a claim holds a job before it may be taken again (default 2m)
	// Fail waits BackoffMin after the first failure, doubling up to
	// BackoffMax, each wait jittered down to half (defaults 30s and 1h).
	BackoffMin, BackoffMax time.Duration
	Now                    func() time.Time // the clock (time.Now)
	Rand                   func() float64   // jitter source in [0, 1) (math/rand/v2)
}

// Queue runs the workers' side of jobs on d.W: claims and their outcomes.
type Queue struct {
	d *db.DB
	o Options

	mu   sync.Mutex
	held map[string]bool // lease tokens this Queue handed out and not finished
}

// New returns a Queue on d.
func New(d *db.DB, o Options) *Queue {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 30 * time.Second
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(time.Hour, o.BackoffMin)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return &Queue{d: d, o: o, held: map[string]bool{}}
}

// ClaimSQL is the statement Claim runs: one UPDATE that takes the first due
// queued job in jobs_claim's order (priority, run_after, id) and leases it.
// ?1 lease_until, ?2 lease token, ?3 now, ?4 the kinds allowed as
// ",kind,kind," (” for every kind). INDEXED BY makes the plan a fact, not a
// planner's choice: the walk stops at the first due row.
const ClaimSQL = `UPDATE jobs SET state = 'running', lease_until = ?1, lease_token = ?2, updated_at = ?3
WHERE id = (SELECT id FROM jobs INDEXED BY jobs_claim
	WHERE state = 'queued' AND run_after <= ?3 AND (?4 = '' OR instr(?4, ',' || kind || ',') > 0)
	ORDER BY priority, run_after, id LIMIT 1)
RETURNING id, kind, company_number, attempts, coalesce(last_error, ''), run_after, created_at`

// recoverSQL queues again the running jobs whose lease expired: their
// worker crashed or was killed. It reads the running jobs through
// jobs_state, a handful (one per worker), whatever the queue's length. An expired lease spends no attempt: the job
// did not fail, its worker went away.
const recoverSQL = `UPDATE jobs SET state = 'queued', lease_until = NULL, lease_token = NULL,
	last_error = 'lease expired: the worker holding it stopped without releasing it', updated_at = ?1
	WHERE state = 'running' AND lease_until < ?1`

// Claim takes the next due job (of kinds, when given), sets it running with
// a lease of Options.Lease and a fresh lease token. ok is false when nothing
// is due. Before claiming, in the same transaction, it queues again the
// jobs whose lease expired (RecoverExpired), so work held by a crashed
// process comes back by itself.
func (q *Queue) Claim(ctx context.Context, kinds ...Kind) (Job, bool, error) {
	now := q.o.Now()
	ts := db.FormatTime(now)
	allowed := ""
	if len(kinds) > 0 {
		var b strings.Builder
		b.WriteByte(',')
		for _, k := range kinds {
			b.WriteString(string(k))
			b.WriteByte(',')
		}
		allowed = b.String()
	}
	j := Job{Token: newToken(), LeaseUntil: now.Add(q.o.Lease).Truncate(time.Second), State: StateRunning}
	found := false
	err := q.d.WriteTx(ctx, func(tx db.Tx) error {
		if _, err := tx.ExecContext(ctx, recoverSQL, ts); err != nil {
			return fmt.Errorf("recover expired leases: %w", err)
		}
		var kind, runAfter, created string
		err := tx.QueryRowContext(ctx, ClaimSQL, db.FormatTime(j.LeaseUntil), j.Token, ts, allowed).
			Scan(&j.ID, &kind, &j.Company, &j.Attempts, &j.LastError, &runAfter, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		j.Kind = Kind(kind)
		j.RunAfter, _ = db.ParseTime(runAfter)
		j.CreatedAt, _ = db.ParseTime(created)
		j.UpdatedAt = now.Truncate(time.Second)
		return nil
	})
	if err != nil {
		return Job{}, false, fmt.Errorf("claim a job: %w", err)
	}
	if !found {
		return Job{}, false, nil
	}
	q.hold(j.Token, true)
	return j, true, nil
}

// RecoverExpired queues again the running jobs whose lease expired, without
// spending an attempt, and returns how many. Claim does it too; this is for
// a process that starts, to make them visible at once.
func (q *Queue) RecoverExpired(ctx context.Context) (int64, error) {
	var n int64
	err := q.d.WriteTx(ctx, func(tx db.Tx) error {
		res, err := tx.ExecContext(ctx, recoverSQL, db.FormatTime(q.o.Now()))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recover expired leases: %w", err)
	}
	return n, nil
}

// orphansSQL queues again every running job, whatever its lease, through
// jobs_state. It spends no attempt.
const orphansSQL = `UPDATE jobs SET state = 'queued', lease_until = NULL, lease_token = NULL,
	last_error = 'lease taken back at start: the process holding it stopped without releasing it', updated_at = ?1
	WHERE state = 'running'`

// RecoverOrphans queues again every running job, expired lease or not,
// without spending an attempt, and returns how many. Only a process that
// holds the database's instance lock may call it (chwatch run, at start):
// no other process claims jobs, so every running job it finds was left by
// one that is gone (killed, or the power cut), and need not wait out its
// lease.
func (q *Queue) RecoverOrphans(ctx context.Context) (int64, error) {
	var n int64
	err := q.d.WriteTx(ctx, func(tx db.Tx) error {
		res, err := tx.ExecContext(ctx, orphansSQL, db.FormatTime(q.o.Now()))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("take back the leases of a stopped process: %w", err)
	}
	return n, nil
}

// Renew extends a held lease by Options.Lease from now: a worker waiting on
// the budget or the breaker calls it, so its job is not taken from it.
func (q *Queue) Renew(ctx context.Context, j *Job) error {
	until := q.o.Now().Add(q.o.Lease).Truncate(time.Second)
	err := q.d.WriteTx(ctx, func(tx db.Tx) error {
		return held(tx.ExecContext(ctx, "UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'running' AND lease_token = ?",
			db.FormatTime(until), j.ID, j.Token))
	})
	if err != nil {
		return fmt.Errorf("renew the lease of job %d (%s %s): %w", j.ID, j.Kind, j.Company, err)
	}
	j.LeaseUntil = until
	return nil
}

// Complete marks the job done in its own transaction.
func (q *Queue) Complete(ctx context.Context, j Job) error {
	return q.d.WriteTx(ctx, func(tx db.Tx) error { return q.CompleteTx(ctx, tx, j) })
}

// CompleteTx marks the job done inside the caller's transaction, so the
// job's result and its completion commit together. ErrLeaseLost when the
// token no longer matches: the caller should roll its result back.
func (q *Queue) CompleteTx(ctx context.Context, tx db.Querier, j Job) error {
	err := held(tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', lease_until = NULL, lease_token = NULL, last_error = NULL, updated_at = ?
		WHERE id = ? AND state = 'running' AND lease_token = ?`, db.FormatTime(q.o.Now()), j.ID, j.Token))
	if err != nil {
		return fmt.Errorf("complete job %d (%s %s): %w", j.ID, j.Kind, j.Company, err)
	}
	q.hold(j.Token, false)
	return nil
}

// maxErrorBytes bounds the last_error kept per job.
const maxErrorBytes = 1000

// Fail spends an attempt: the job goes back to the queue after a backoff
// (BackoffMin doubled per attempt up to BackoffMax, jittered down to half),
// or is dead once it has failed MaxAttempts times, its last error kept.
// cause must not carry secrets (the REST client never puts the key in an
// error).
func (q *Queue) Fail(ctx context.Context, j Job, cause error) error {
	return q.d.WriteTx(ctx, func(tx db.Tx) error { return q.FailTx(ctx, tx, j, cause) })
}

// FailTx is Fail inside the caller's transaction.
func (q *Queue) FailTx(ctx context.Context, tx db.Querier, j Job, cause error) error {
	now := q.o.Now()
	msg := "failed"
	if cause != nil {
		msg = truncate(cause.Error(), maxErrorBytes)
	}
	attempts := j.Attempts + 1
	state, runAfter := StateQueued, now.Add(q.Backoff(attempts))
	if attempts >= q.o.MaxAttempts {
		state, runAfter = StateDead, now
	}
	err := held(tx.ExecContext(ctx, `UPDATE jobs SET state = ?, attempts = attempts + 1, run_after = ?, lease_until = NULL, lease_token = NULL,
		last_error = ?, updated_at = ? WHERE id = ? AND state = 'running' AND lease_token = ?`,
		string(state), db.FormatTime(runAfter), msg, db.FormatTime(now), j.ID, j.Token))
	if err != nil {
		return fmt.Errorf("fail job %d (%s %s): %w", j.ID, j.Kind, j.Company, err)
	}
	q.hold(j.Token, false)
	return nil
}

// Bury makes the job dead at once, spending an attempt and keeping cause as
// its last error: for a job that can never succeed, such as one whose
// company number Companies House cannot answer. `queue retry` brings it
// back like any dead job.
func (q *Queue) Bury(ctx context.Context, j Job, cause error) error {
	return q.d.WriteTx(ctx, func(tx db.Tx) error { return q.BuryTx(ctx, tx, j, cause) })
}

// BuryTx is Bury inside the caller's transaction.
func (q *Queue) BuryTx(ctx context.Context, tx db.Querier, j Job, cause error) error {
	now := q.o.Now()
	msg := "cannot succeed"
	if cause != nil {
		msg = truncate(cause.Error(), maxErrorBytes)
	}
	err := held(tx.ExecContext(ctx, `UPDATE jobs SET state = 'dead', attempts = attempts + 1, run_after = ?, lease_until = NULL, lease_token = NULL,
		last_error = ?, updated_at = ? WHERE id = ? AND state = 'running' AND lease_token = ?`,
		db.FormatTime(now), msg, db.FormatTime(now), j.ID, j.Token))
	if err != nil {
		return fmt.Errorf("bury job %d (%s %s): %w", j.ID, j.Kind, j.Company, err)
	}
	q.hold(j.Token, false)
	return nil
}

// Backoff is the wait after the job's attempts-th failure: BackoffMin
// doubled per earlier failure, at most BackoffMax, jittered to between half
// and all of it so that jobs failing together do not come back together.
func (q *Queue) Backoff(attempts int) time.Duration {
	d := q.o.BackoffMin
	for i := 1; i < attempts && d < q.o.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, q.o.BackoffMax)
	return d/2 + time.Duration(q.o.Rand()*float64(d/2))
}

// Defer puts the job back in the queue until until WITHOUT spending an
// attempt: the job did not fail, the API could not be asked (a 429, a budget
// wait, the breaker open or its half-open probe taken, a 401 or 403 pause).
// reason is kept in last_error, so `queue status` says why a job waits.
func (q *Queue) Defer(ctx context.Context, j Job, until time.Time, reason string) error {
	return q.d.WriteTx(ctx, func(tx db.Tx) error { return q.DeferTx(ctx, tx, j, until, reason) })
}

// DeferTx is Defer inside the caller's transaction.
func (q *Queue) DeferTx(ctx context.Context, tx db.Querier, j Job, until time.Time, reason string) error {
	err := held(tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', run_after = ?, lease_until = NULL, lease_token = NULL,
		last_error = coalesce(nullif(?, ''), last_error), updated_at = ? WHERE id = ? AND state = 'running' AND lease_token = ?`,
		db.FormatTime(until), truncate(reason, maxErrorBytes), db.FormatTime(q.o.Now()), j.ID, j.Token))
	if err != nil {
		return fmt.Errorf("defer job %d (%s %s): %w", j.ID, j.Kind, j.Company, err)
	}
	q.hold(j.Token, false)
	return nil
}

// ReleaseLeases puts running jobs back in the queue at once, without
// spending an attempt: those of tokens, or with none given every job this
// Queue claimed and has not finished (a graceful stop). Jobs of a process
// that crashed come back when their lease expires (see Claim).
func (q *Queue) ReleaseLeases(ctx context.Context, tokens ...string) error {
	if len(tokens) == 0 {
		q.mu.Lock()
		for t := range q.held {
			tokens = append(tokens, t)
		}
		q.mu.Unlock()
	}
	if len(tokens) == 0 {
		return nil
	}
	list, err := json.Marshal(tokens)
	if err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	err = q.d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', lease_until = NULL, lease_token = NULL, updated_at = ?
			WHERE state = 'running' AND lease_token IN (SELECT value FROM json_each(?))`, db.FormatTime(q.o.Now()), string(list))
		return err
	})
	if err != nil {
		return fmt.Errorf("release %d leases: %w", len(tokens), err)
	}
	q.mu.Lock()
	for _, t := range tokens {
		delete(q.held, t)
	}
	q.mu.Unlock()
	return nil
}

// Enqueue is EnqueueTx in its own transaction, with the Queue's clock and
// MaxDepth.
func (q *Queue) Enqueue(ctx context.Context, kind Kind, company string) (Result, error) {
	var res Result
	err := q.d.WriteTx(ctx, func(tx db.Tx) error {
		var err error
		res, err = EnqueueTx(ctx, tx, kind, company, q.o.Now(), q.o.MaxDepth)
		return err
	})
	return res, err
}

// EnqueueTx adds a job for (kind, company) in the caller's transaction
// unless one is already queued or running. Low-priority kinds (officers and
// other fetches) are refused, and counted in CounterRefused, when maxDepth
// jobs are pending; status checks and sweeps always go in. maxDepth <= 0
// means no limit. The caller logs a refusal.
func EnqueueTx(ctx context.Context, tx db.Querier, kind Kind, company string, now time.Time, maxDepth int64) (Result, error) {
	prio := kind.Priority()
	if prio < 0 {
		return 0, fmt.Errorf("enqueue %s for %s: unknown kind", kind, company)
	}
	if maxDepth > 0 && kind.lowPriority() {
		var pending int64
		err := tx.QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM counters WHERE name = ?), 0)", CounterPending).Scan(&pending)
		if err != nil {
			return 0, fmt.Errorf("enqueue %s for %s: %w", kind, company, err)
		}
		if pending >= maxDepth {
			return Refused, db.AddCounter(ctx, tx, CounterRefused, 1)
		}
	}
	return insert(ctx, tx, kind, company, now)
}

func insert(ctx context.Context, tx db.Querier, kind Kind, company string, now time.Time) (Result, error) {
	ts := db.FormatTime(now)
	res, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at)
		VALUES (?, ?, ?, 'queued', ?, ?, ?)
		ON CONFLICT (kind, company_number) WHERE state IN ('queued', 'running') DO NOTHING`,
		string(kind), kind.Priority(), company, ts, ts, ts)
	if err != nil {
		return 0, fmt.Errorf("enqueue %s for %s: %w", kind, company, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Exists, nil
	}
	return Queued, nil
}

// moveSQL makes a queued job due at ?1. The state IN (...) term is
// jobs_pending's condition, so the planner can use that index (it cannot
// prove that state = 'queued' implies it); state = 'queued' leaves a running
// job alone.
const moveSQL = `UPDATE jobs SET run_after = ?1, updated_at = ?1
	WHERE kind = ?2 AND company_number = ?3 AND state IN ('queued', 'running') AND state = 'queued'`

// EnqueueNow is for `chwatch queue add`: a job for (kind, company) due now.
// A queued job has its run_after moved to now (Moved); a running one is left
// alone (Exists); otherwise a new job is queued. It ignores max depth: an
// operator asked for it.
func EnqueueNow(ctx context.Context, tx db.Querier, kind Kind, company string, now time.Time) (Result, error) {
	if kind.Priority() < 0 {
		return 0, fmt.Errorf("enqueue %s for %s: unknown kind", kind, company)
	}
	res, err := tx.ExecContext(ctx, moveSQL, db.FormatTime(now), string(kind), company)
	if err != nil {
		return 0, fmt.Errorf("enqueue %s for %s now: %w", kind, company, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return Moved, nil
	}
	return insert(ctx, tx, kind, company, now)
}

// cancelSQL deletes the queued job of ?1 for ?2 through jobs_pending, as
// moveSQL finds it.
const cancelSQL = `DELETE FROM jobs
	WHERE kind = ?1 AND company_number = ?2 AND state IN ('queued', 'running') AND state = 'queued'`

// CancelTx removes the queued (not running) jobs of kind for company, and
// returns how many it removed: leaving strike-off cancels officer fetches.
func CancelTx(ctx context.Context, tx db.Querier, kind Kind, company string) (int64, error) {
	res, err := tx.ExecContext(ctx, cancelSQL, string(kind), company)
	if err != nil {
		return 0, fmt.Errorf("cancel %s for %s: %w", kind, company, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// EnqueueSweepTx queues a sweep_check for every company in strike-off (the
// strike_off_companies view) that has none pending: after a 416 gap, exits
// during the gap are found this way. It returns how many it queued.
func EnqueueSweepTx(ctx context.Context, tx db.Querier, now time.Time) (int64, error) {
	n, _, err := EnqueueSelectTx(ctx, tx, SweepCheck, now, 0, "SELECT company_number FROM strike_off_companies")
	if err != nil {
		return 0, fmt.Errorf("queue gap sweep: %w", err)
	}
	return n, nil
}

// EnqueueSelectTx queues a job of kind, in the caller's transaction, for
// every company number that query (a SELECT of one column named
// company_number, written by the package that owns the rows it reads)
// returns and that has none of kind pending: the backfills (a gap sweep,
// enrich.pscs turned on) in one statement. A low-priority kind queues at most maxDepth less the pending
// jobs (maxDepth <= 0: no limit); the companies left over are counted in
// CounterRefused. It returns how many it queued and how many it refused.
func EnqueueSelectTx(ctx context.Context, tx db.Querier, kind Kind, now time.Time, maxDepth int64, query string, args ...any) (queued, refused int64, err error) {
	if kind.Priority() < 0 {
		return 0, 0, fmt.Errorf("enqueue %s: unknown kind", kind)
	}
	room := int64(-1) // LIMIT -1: no limit
	if maxDepth > 0 && kind.lowPriority() {
		var pending int64
		if err := tx.QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM counters WHERE name = ?), 0)", CounterPending).Scan(&pending); err != nil {
			return 0, 0, fmt.Errorf("enqueue %s: %w", kind, err)
		}
		room = max(maxDepth-pending, 0)
	}
	ts := db.FormatTime(now)
	// The candidates without a pending job of kind, so that the limit
	// counts only rows that insert.
	from := `SELECT company_number FROM (` + query + `) AS sel WHERE NOT EXISTS (SELECT 1 FROM jobs j
		WHERE j.kind = ? AND j.company_number = sel.company_number AND j.state IN ('queued', 'running'))`
	all := append(append([]any{}, args...), string(kind))
	res, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at)
		SELECT ?, ?, company_number, 'queued', ?, ?, ? FROM (`+from+` LIMIT ?) WHERE true
		ON CONFLICT (kind, company_number) WHERE state IN ('queued', 'running') DO NOTHING`,
		append(append([]any{string(kind), kind.Priority(), ts, ts, ts}, all...), room)...)
	if err != nil {
		return 0, 0, fmt.Errorf("enqueue %s: %w", kind, err)
	}
	queued, _ = res.RowsAffected()
	if room >= 0 && queued == room {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (`+from+`)`, all...).Scan(&refused); err != nil {
			return queued, 0, fmt.Errorf("enqueue %s: count refused: %w", kind, err)
		}
		if err := db.AddCounter(ctx, tx, CounterRefused, refused); err != nil {
			return queued, 0, err
		}
	}
	return queued, refused, nil
}

// CancelKindTx removes every queued (not running) job of kind, and returns
// how many it removed: enrich.pscs turned off drops the PSC fetches.
func CancelKindTx(ctx context.Context, tx db.Querier, kind Kind) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE kind = ? AND state IN ('queued', 'running') AND state = 'queued'`, string(kind))
	if err != nil {
		return 0, fmt.Errorf("cancel every %s job: %w", kind, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// listDeadSQL reads the latest dead jobs through jobs_state.
const listDeadSQL = `SELECT id, kind, company_number, attempts, coalesce(last_error, ''), run_after, created_at, updated_at
	FROM jobs WHERE state = 'dead' ORDER BY updated_at DESC LIMIT ?`

// ListDead reads the most recently dead jobs, at most limit of them.
func ListDead(ctx context.Context, q db.Querier, limit int) ([]Job, error) {
	rows, err := q.QueryContext(ctx, listDeadSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("read dead jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j := Job{State: StateDead}
		var kind, runAfter, created, updated string
		if err := rows.Scan(&j.ID, &kind, &j.Company, &j.Attempts, &j.LastError, &runAfter, &created, &updated); err != nil {
			return nil, fmt.Errorf("read dead jobs: %w", err)
		}
		j.Kind = Kind(kind)
		j.RunAfter, _ = db.ParseTime(runAfter)
		j.CreatedAt, _ = db.ParseTime(created)
		j.UpdatedAt, _ = db.ParseTime(updated)
		out = append(out, j)
	}
	return out, rows.Err()
}

// Retry puts dead jobs back in the queue, due now, with their attempts
// reset, and returns how many.
func (q *Queue) Retry(ctx context.Context) (int64, error) {
	var n int64
	err := q.d.WriteTx(ctx, func(tx db.Tx) error {
		var err error
		n, err = RetryTx(ctx, tx, q.o.Now())
		return err
	})
	return n, err
}

// RetryTx is Retry inside the caller's transaction. A dead job whose kind
// and company already have a pending job, or a newer dead one, stays dead:
// there is one pending job per kind and company.
func RetryTx(ctx context.Context, tx db.Querier, now time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?1, lease_until = NULL, lease_token = NULL, updated_at = ?1
		WHERE state = 'dead'
		AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = jobs.kind AND j.company_number = jobs.company_number AND j.state IN ('queued', 'running'))
		AND id = (SELECT max(id) FROM jobs j WHERE j.kind = jobs.kind AND j.company_number = jobs.company_number AND j.state = 'dead')`,
		db.FormatTime(now))
	if err != nil {
		return 0, fmt.Errorf("retry dead jobs: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Purge deletes every dead job and returns how many.
func (q *Queue) Purge(ctx context.Context) (int64, error) {
	var n int64
	err := q.d.WriteTx(ctx, func(tx db.Tx) error {
		var err error
		n, err = PurgeTx(ctx, tx)
		return err
	})
	return n, err
}

// PurgeTx is Purge inside the caller's transaction.
func PurgeTx(ctx context.Context, tx db.Querier) (int64, error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM jobs WHERE state = 'dead'")
	if err != nil {
		return 0, fmt.Errorf("purge dead jobs: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// DeleteDone deletes every done job finished before before, limit a
// transaction (each a short hold of the write lock), and returns how many.
func (q *Queue) DeleteDone(ctx context.Context, before time.Time, limit int) (int64, error) {
	var total int64
	for {
		var n int64
		err := q.d.WriteTx(ctx, func(tx db.Tx) error {
			var err error
			n, err = DeleteDoneTx(ctx, tx, before, limit)
			return err
		})
		total += n
		if err != nil || n < int64(limit) {
			return total, err
		}
	}
}

// deleteDoneSQL deletes the oldest done jobs through jobs_state.
const deleteDoneSQL = `DELETE FROM jobs WHERE id IN (
	SELECT id FROM jobs WHERE state = 'done' AND updated_at < ? ORDER BY updated_at LIMIT ?)`

// DeleteDoneTx deletes at most limit done jobs finished before before,
// oldest first, through jobs_state (retention.jobs_done; the caller runs it
// in small transactions until fewer than limit go).
func DeleteDoneTx(ctx context.Context, tx db.Querier, before time.Time, limit int) (int64, error) {
	res, err := tx.ExecContext(ctx, deleteDoneSQL, db.FormatTime(before), limit)
	if err != nil {
		return 0, fmt.Errorf("delete finished jobs: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Depth is the number of jobs by kind and state; absent means none.
type Depth map[Kind]map[State]int64

// Count is the number of jobs of kind in state.
func (d Depth) Count(k Kind, s State) int64 { return d[k][s] }

// Sum is the number of jobs in state s of any of kinds (every kind when
// none is given).
func (d Depth) Sum(s State, kinds ...Kind) int64 {
	if len(kinds) == 0 {
		kinds = Kinds()
	}
	var n int64
	for _, k := range kinds {
		n += d[k][s]
	}
	return n
}

// Depths reads the jobs by kind and state from their counters (never from
// jobs itself: status and /metrics call it every few seconds).
func Depths(ctx context.Context, q db.Querier) (Depth, error) {
	// 'jobs/' is the string just past every 'jobs.' name.
	rows, err := q.QueryContext(ctx, "SELECT name, value FROM counters WHERE name > 'jobs.' AND name < 'jobs/'")
	if err != nil {
		return nil, fmt.Errorf("read job counts: %w", err)
	}
	defer rows.Close()
	out := Depth{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("read job counts: %w", err)
		}
		kind, state, ok := strings.Cut(strings.TrimPrefix(name, "jobs."), ".")
		if !ok || n == 0 {
			continue
		}
		k := Kind(kind)
		if out[k] == nil {
			out[k] = map[State]int64{}
		}
		out[k][State(state)] = n
	}
	return out, rows.Err()
}

// Counter names of what finished jobs cost (see RecordCostTx).
const (
	costPrefix     = "job_cost."     // + kind: REST requests spent by finished jobs of the kind
	measuredPrefix = "job_measured." // + kind: finished jobs of the kind whose cost was recorded
)

// RecordCostTx adds, inside the job's completing transaction, that a job of
// kind cost requests REST requests (an officer list of three pages: 3), so
// that status can estimate a backlog at the measured average rather than
// one request a job.
func RecordCostTx(ctx context.Context, tx db.Querier, kind Kind, requests int) error {
	if err := db.AddCounter(ctx, tx, costPrefix+string(kind), int64(requests)); err != nil {
		return err
	}
	return db.AddCounter(ctx, tx, measuredPrefix+string(kind), 1)
}

// Costs returns the average REST requests per finished job of each kind
// whose cost was recorded; kinds without a record are absent.
func Costs(ctx context.Context, q db.Querier) (map[Kind]float64, error) {
	counters, err := db.Counters(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read job costs: %w", err)
	}
	out := map[Kind]float64{}
	for _, k := range Kinds() {
		if n := counters[measuredPrefix+string(k)]; n > 0 {
			out[k] = float64(counters[costPrefix+string(k)]) / float64(n)
		}
	}
	return out, nil
}

// OldestSQL reads when the oldest queued job of a kind was created, from
// jobs_oldest alone.
const OldestSQL = "SELECT min(created_at) FROM jobs WHERE kind = ? AND state = 'queued'"

// Oldest returns when the oldest queued job of each kind was created; kinds
// with no queued job are absent.
func Oldest(ctx context.Context, q db.Querier) (map[Kind]time.Time, error) {
	out := map[Kind]time.Time{}
	for _, k := range Kinds() {
		var created sql.NullString
		if err := q.QueryRowContext(ctx, OldestSQL, string(k)).Scan(&created); err != nil {
			return nil, fmt.Errorf("read the oldest %s job: %w", k, err)
		}
		if created.Valid {
			t, err := db.ParseTime(created.String)
			if err != nil {
				return nil, fmt.Errorf("read the oldest %s job: %w", k, err)
			}
			out[k] = t
		}
	}
	return out, nil
}

// held turns an UPDATE that matched no row into ErrLeaseLost.
func held(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

func (q *Queue) hold(token string, on bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if on {
		q.held[token] = true
	} else {
		delete(q.held, token)
	}
}

// newToken is a lease token: 128 random bits.
func newToken() string {
	b := make([]byte, 16)
	crand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
