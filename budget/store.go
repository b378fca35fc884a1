package budget

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/db"
)

// row is api_budget as stored: times are wall-clock times of the process
// that wrote it.
type row struct {
	keyID                             string
	limit, windowSec, remain          int
	end, pausedUntil, sharedUntil     time.Time
	lastAnswer, updated               time.Time
	serverReset                       int64
	reason, refused, writer           string
	requests, rateLimited, lastStatus int64
}

const selectRow = `SELECT key_id, rate_limit, window_seconds, remain, window_end, server_reset, paused_until,
	pause_reason, refused, shared_until, requests, rate_limited, last_status, last_response_at, writer, updated_at
	FROM api_budget WHERE id = 1`

func read(ctx context.Context, q db.Querier) (row, bool, error) {
	var (
		r                                               row
		end, paused, shared, lastAnswer, reason, refusd sql.NullString
		reset, lastStatus                               sql.NullInt64
		updated                                         string
	)
	err := q.QueryRowContext(ctx, selectRow).Scan(&r.keyID, &r.limit, &r.windowSec, &r.remain, &end, &reset, &paused,
		&reason, &refusd, &shared, &r.requests, &r.rateLimited, &lastStatus, &lastAnswer, &r.writer, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, false, nil
	}
	if err != nil {
		return row{}, false, fmt.Errorf("read api_budget: %w", err)
	}
	r.end, _ = db.ParseTime(end.String)
	r.pausedUntil, _ = db.ParseTime(paused.String)
	r.sharedUntil, _ = db.ParseTime(shared.String)
	r.lastAnswer, _ = db.ParseTime(lastAnswer.String)
	r.updated, _ = db.ParseTime(updated)
	r.serverReset, r.lastStatus = reset.Int64, lastStatus.Int64
	r.reason, r.refused = reason.String, refusd.String
	return r, true, nil
}

// local turns a stored wall-clock time into a time on the budget's clock,
// at most limit ahead: a wall clock that jumped (a Raspberry Pi setting
// its clock after boot) must not turn a pause into days.
func (b *Budget) local(wall, now time.Time, limit time.Duration) time.Time {
	if wall.IsZero() {
		return time.Time{}
	}
	d := wall.Sub(now.Round(0)) // wall against wall
	return now.Add(min(d, limit))
}

// adopt builds the state from a row an earlier process (or another one)
// wrote. The configured limit and window stand until the server speaks.
func (b *Budget) adopt(r row, now time.Time) state {
	st := state{
		limit: b.cfg.Limit, window: b.cfg.Window, remain: min(r.remain, b.cfg.Limit),
		serverReset: r.serverReset, reason: r.reason, refused: r.refused,
		requests: r.requests, rateLimited: r.rateLimited, lastStatus: int(r.lastStatus),
	}
	st.end = b.local(r.end, now, st.window)
	st.sharedUntil = b.local(r.sharedUntil, now, 2*st.window)
	st.lastAnswer = b.local(r.lastAnswer, now, 0)
	st.pausedUntil = b.local(r.pausedUntil, now, b.pauseCap(r.reason))
	if !st.end.After(now) {
		st.end = time.Time{} // that window is over
	}
	return st
}

// pauseCap is the longest a pause of reason may last.
func (b *Budget) pauseCap(reason string) time.Duration {
	switch reason {
	case Unauthorized:
		return b.cfg.UnauthorizedWait
	case Forbidden:
		return b.cfg.ForbiddenWait
	}
	return b.cfg.Window + b.cfg.ResetGuard
}

// refresh merges, at most once a second, what other chwatch processes on
// the database wrote: a pause one of them met holds here too. Their
// Remain is not merged: the server's next answer brings the truth.
func (b *Budget) refresh(ctx context.Context) {
	b.mu.Lock()
	now := b.clock.Now()
	due := now.Sub(b.lastRefresh) >= time.Second
	if due {
		b.lastRefresh = now
	}
	b.mu.Unlock()
	if !due {
		return
	}
	r, ok, err := read(ctx, b.d.R)
	if err != nil {
		b.log.Warn("could not read the shared REST budget", "err", err)
		return
	}
	if !ok || r.writer == b.writer || r.keyID != b.keyID {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.clock.Now()
	if until := b.local(r.pausedUntil, now, b.pauseCap(r.reason)); r.reason != "" && until.After(now) && until.After(b.st.pausedUntil) {
		b.st.reason, b.st.pausedUntil = r.reason, until
		b.log.Warn("REST work paused by another chwatch process", "reason", r.reason, "until", r.pausedUntil.Format(time.RFC3339))
	}
	if r.refused != "" && b.local(r.lastAnswer, now, 0).After(b.st.lastAnswer) {
		b.st.refused = r.refused
	}
}

// maybeFlush writes the row when it has not been written for
// Config.PersistEvery.
func (b *Budget) maybeFlush(ctx context.Context) {
	b.mu.Lock()
	due := b.clock.Now().Sub(b.lastWrite) >= b.cfg.PersistEvery
	b.mu.Unlock()
	if due {
		_ = b.flush(ctx)
	}
}

// flush writes the current state, outside the budget's lock: a commit that
// waits for the writer connection never holds up pacing.
func (b *Budget) flush(ctx context.Context) error {
	b.mu.Lock()
	now := b.clock.Now()
	st, rev := b.st, b.rev
	b.lastWrite = now
	b.mu.Unlock()

	b.persistMu.Lock()
	defer b.persistMu.Unlock()
	if rev <= b.written {
		return nil
	}
	// Bounded: a caller holding the writer connection in a transaction of
	// its own while it calls the API would otherwise wait here forever.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wall := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return db.FormatTime(t)
	}
	var reason, refused any
	if st.reason != "" && st.pausedUntil.After(now) {
		reason = st.reason
	}
	if st.refused != "" {
		refused = st.refused
	}
	paused := wall(st.pausedUntil)
	if reason == nil {
		paused = nil
	}
	var reset, status any
	if st.serverReset != 0 {
		reset = st.serverReset
	}
	if !st.lastAnswer.IsZero() {
		status = st.lastStatus
	}
	err := b.d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_budget (id, key_id, rate_limit, window_seconds, remain, window_end,
			server_reset, paused_until, pause_reason, refused, shared_until, requests, rate_limited, last_status,
			last_response_at, writer, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET (key_id, rate_limit, window_seconds, remain, window_end, server_reset,
			paused_until, pause_reason, refused, shared_until, requests, rate_limited, last_status, last_response_at,
			writer, updated_at) = (excluded.key_id, excluded.rate_limit, excluded.window_seconds, excluded.remain,
			excluded.window_end, excluded.server_reset, excluded.paused_until, excluded.pause_reason, excluded.refused,
			excluded.shared_until, excluded.requests, excluded.rate_limited, excluded.last_status,
			excluded.last_response_at, excluded.writer, excluded.updated_at)`,
			b.keyID, st.limit, int64(st.window/time.Second), st.remain, wall(st.end), reset, paused, reason, refused,
			wall(st.sharedUntil), st.requests, st.rateLimited, status, wall(st.lastAnswer), b.writer, db.FormatTime(now))
		return err
	})
	if err != nil {
		// The budget goes on in memory; the row catches up at the next write.
		b.log.Warn("could not write the shared REST budget", "err", err)
		return fmt.Errorf("write api_budget: %w", err)
	}
	b.written = rev
	return nil
}

// Read returns the budget as the database holds it, for `status` in
// another process (ok is false before any REST request). Times are as
// stored, on the clock of the process that wrote them.
func Read(ctx context.Context, q db.Querier) (State, bool, error) {
	r, ok, err := read(ctx, q)
	if err != nil || !ok {
		return State{}, ok, err
	}
	s := State{
		Limit: r.limit, Window: time.Duration(r.windowSec) * time.Second, Remain: r.remain, WindowEnd: r.end,
		Refused: r.refused, Shared: r.sharedUntil.After(r.updated), Requests: r.requests, RateLimited: r.rateLimited,
		LastStatus: int(r.lastStatus), LastResponseAt: r.lastAnswer, UpdatedAt: r.updated,
	}
	if r.reason != "" {
		s.PausedUntil, s.PauseReason = r.pausedUntil, r.reason
	}
	return s, true, nil
}
