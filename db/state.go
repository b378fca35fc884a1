package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Querier is what both *sql.DB and *sql.Tx offer.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// AddCounter adds delta to the running total name in the caller's transaction.
func AddCounter(ctx context.Context, q Querier, name string, delta int64) error {
	if delta == 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`, name, delta)
	if err != nil {
		return fmt.Errorf("add counter %s: %w", name, err)
	}
	return nil
}

// Counters reads every running total.
func Counters(ctx context.Context, q Querier) (map[string]int64, error) {
	return scanCounters(ctx, q, "", "SELECT name, value FROM counters")
}

// CountersNamed reads the running totals of names; a name never counted is
// absent. Each is a primary-key lookup, whatever the table holds.
func CountersNamed(ctx context.Context, q Querier, names ...string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(names) == 0 {
		return out, nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	return scanCounters(ctx, q, "", "SELECT name, value FROM counters WHERE name IN (?"+strings.Repeat(", ?", len(names)-1)+")", args...)
}

// CountersPrefix reads the running totals whose names start with prefix
// (ASCII), keyed by the rest of the name: one range of the primary key.
func CountersPrefix(ctx context.Context, q Querier, prefix string) (map[string]int64, error) {
	return scanCounters(ctx, q, prefix, "SELECT name, value FROM counters WHERE name >= ? AND name < ?", prefix, prefixEnd(prefix))
}

// prefixEnd is the first string past every string starting with p.
func prefixEnd(p string) string {
	if p == "" {
		return "\x7f"
	}
	return p[:len(p)-1] + string(rune(p[len(p)-1]+1))
}

func scanCounters(ctx context.Context, q Querier, prefix, query string, args ...any) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read counters: %w", err)
		}
		out[strings.TrimPrefix(k, prefix)] = v
	}
	return out, rows.Err()
}

// Day counters hold a total for one UTC day, kept beside the running
// totals in the same transactions as the rows they count, so "today" needs
// no scan of a big table. Their names, "day.2026-11-28.events_applied",
// sort by day: a day's are one range, and the days past retention one
// range delete.
const dayPrefix = "day."

// Day is t's UTC date, as day counters name it (YYYY-MM-DD).
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// DayCounter is the name of the counter holding name's total for day
// (YYYY-MM-DD).
func DayCounter(day, name string) string { return dayPrefix + day + "." + name }

// DayCounters reads day's totals, keyed by name.
func DayCounters(ctx context.Context, q Querier, day string) (map[string]int64, error) {
	return CountersPrefix(ctx, q, DayCounter(day, ""))
}

// DeleteDayCountersTx deletes up to limit day counters of the days before
// before's day, for retention.
func DeleteDayCountersTx(ctx context.Context, tx Querier, before time.Time, limit int) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM counters WHERE name IN
		(SELECT name FROM counters WHERE name >= ? AND name < ? LIMIT ?)`, dayPrefix, dayPrefix+Day(before), limit)
	if err != nil {
		return 0, fmt.Errorf("delete day counters: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Seq hands out change_seq values inside one write transaction. Because every
// write transaction is BEGIN IMMEDIATE, the values a transaction takes are
// all above those of every transaction committed before it, in this process
// or another: so an export mark never skips a row committed late.
type Seq struct {
	start, next int64
	deltas      map[string]int64
}

// BeginSeq reads the sequence inside the caller's write transaction.
func BeginSeq(ctx context.Context, q Querier) (*Seq, error) {
	var v int64
	err := q.QueryRowContext(ctx, "SELECT value FROM counters WHERE name = 'change_seq'").Scan(&v)
	if err != nil && err != sql.ErrNoRows {
		return nil, fmt.Errorf("read change_seq: %w", err)
	}
	return &Seq{start: v, next: v}, nil
}

// Next returns the next change_seq value.
func (s *Seq) Next() int64 {
	s.next++
	return s.next
}

// Save stores the values taken and the counted totals, in the same
// transaction.
func (s *Seq) Save(ctx context.Context, q Querier) error {
	for name, d := range s.deltas {
		if err := AddCounter(ctx, q, name, d); err != nil {
			return err
		}
	}
	s.deltas = nil
	return AddCounter(ctx, q, "change_seq", s.next-s.start)
}

// StatePSCsSince is the service_state row saying since when enrich.pscs is
// on ("" or absent: off); `run` writes it at start (enrich.SetUpPSCs),
// status reads it.
const StatePSCsSince = "pscs_since"

// SetState writes service_state rows.
func SetState(ctx context.Context, q Querier, now string, kv map[string]string) error {
	for k, v := range kv {
		_, err := q.ExecContext(ctx, `INSERT INTO service_state (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, k, v, now)
		if err != nil {
			return fmt.Errorf("write service_state %s: %w", k, err)
		}
	}
	return nil
}

// State reads every service_state row.
func State(ctx context.Context, q Querier) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT key, value FROM service_state")
	if err != nil {
		return nil, fmt.Errorf("read service_state: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read service_state: %w", err)
		}
		out[k] = v
	}
	return out, rows.Err()
}

// Tx is a write transaction.
type Tx = *sql.Tx

// Count adds delta to the running total name when the transaction saves.
func (s *Seq) Count(name string, delta int64) {
	if delta == 0 {
		return
	}
	if s.deltas == nil {
		s.deltas = map[string]int64{}
	}
	s.deltas[name] += delta
}
