// Package queue is chwatch's durable queue of REST work in the jobs table:
// enqueueing with its dedup rule and depth limit, inside the caller's
// transaction, so a job exists exactly when the change that caused it does.
package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Kinds of job.
const (
	StatusCheck = "status_check"
	SweepCheck  = "sweep_check"
	Officers    = "officers"
)

// Priority of each kind: lower runs first.
var Priority = map[string]int{StatusCheck: 0, SweepCheck: 10, Officers: 20}

// Counter names kept in the counters table.
const (
	CounterPending = "jobs_pending" // queued or running
	CounterRefused = "jobs_refused" // refused past queue.max_depth
)

// Result says what Enqueue did.
type Result int

// Results of Enqueue.
const (
	Queued  Result = iota // a new job
	Exists                // one was already queued or running for this kind and company
	Refused               // the queue is past max depth for low-priority work
)

// Enqueue adds a job for (kind, company) unless one is already queued or
// running. Low-priority kinds (officers) are refused, and counted, when
// maxDepth jobs are pending; status checks always go in. maxDepth <= 0 means
// no limit.
func Enqueue(ctx context.Context, q db.Querier, kind, company string, now time.Time, maxDepth int64) (Result, error) {
	prio, ok := Priority[kind]
	if !ok {
		return 0, fmt.Errorf("enqueue %s for %s: unknown kind", kind, company)
	}
	if maxDepth > 0 && kind == Officers {
		var pending int64
		err := q.QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM counters WHERE name = ?), 0)", CounterPending).Scan(&pending)
		if err != nil {
			return 0, fmt.Errorf("enqueue %s for %s: %w", kind, company, err)
		}
		if pending >= maxDepth {
			return Refused, db.AddCounter(ctx, q, CounterRefused, 1)
		}
	}
	ts := db.FormatTime(now)
	res, err := q.ExecContext(ctx, `INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at)
		VALUES (?, ?, ?, 'queued', ?, ?, ?)
		ON CONFLICT (kind, company_number) WHERE state IN ('queued', 'running') DO NOTHING`,
		kind, prio, company, ts, ts, ts)
	if err != nil {
		return 0, fmt.Errorf("enqueue %s for %s: %w", kind, company, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Exists, nil
	}
	return Queued, db.AddCounter(ctx, q, CounterPending, 1)
}

// Cancel removes the queued (not running) jobs of kind for company, and
// returns how many it removed.
func Cancel(ctx context.Context, q db.Querier, kind, company string) (int64, error) {
	res, err := q.ExecContext(ctx, "DELETE FROM jobs WHERE kind = ? AND company_number = ? AND state = 'queued'", kind, company)
	if err != nil {
		return 0, fmt.Errorf("cancel %s for %s: %w", kind, company, err)
	}
	n, _ := res.RowsAffected()
	return n, db.AddCounter(ctx, q, CounterPending, -n)
}

// Depth is the number of jobs by kind and state.
type Depth map[string]map[string]int64

// Depths counts jobs by kind and state. It reads the whole jobs table
// (jobs_state is (state, updated_at), which does not cover kind): for
// status and metrics, not for a hot path.
func Depths(ctx context.Context, q db.Querier) (Depth, error) {
	rows, err := q.QueryContext(ctx, "SELECT kind, state, count(*) FROM jobs GROUP BY state, kind")
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	out := Depth{}
	for rows.Next() {
		var kind, state string
		var n int64
		if err := rows.Scan(&kind, &state, &n); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		if out[kind] == nil {
			out[kind] = map[string]int64{}
		}
		out[kind][state] = n
	}
	return out, rows.Err()
}
