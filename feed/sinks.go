package feed

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/chwatch/chwatch/db"
)

// statusTrigger writes a status change's message: every status_changes
// row, first sightings included, from any process (run, import). It exists
// only while a sink is configured (Sync creates and drops it), so a user
// without one runs the schema of before the feed: with no sink the ingest
// path costs nothing at all, not even the trigger's own overhead (about 7
// µs a row on the bulk path, BenchmarkIngestNoSink).
const statusTrigger = `CREATE TRIGGER IF NOT EXISTS feed_status_change AFTER INSERT ON status_changes
WHEN EXISTS (SELECT 1 FROM feed_sinks) BEGIN -- the change feed (package feed): exists only while a sink is configured
  INSERT INTO feed_outbox (kind, change_id, created_at) VALUES ('change', NEW.id, NEW.detected_at);
END`

// Sync makes feed_sinks hold exactly the sinks named: a sink new to it
// starts at the newest message (no backfill: it is told of changes from
// now on), a sink no longer configured loses its row and its place. The
// status_changes trigger exists exactly while a sink does. With no sink
// left, nothing more enters the outbox, and what is in it goes. run calls
// it at start, before the first batch.
func Sync(ctx context.Context, d *db.DB, names []string, now time.Time) (added, removed []string, err error) {
	err = d.WriteTx(ctx, func(tx db.Tx) error {
		have, err := sinkNames(ctx, tx)
		if err != nil {
			return err
		}
		for _, n := range have {
			if !slices.Contains(names, n) {
				if _, err := tx.ExecContext(ctx, "DELETE FROM feed_sinks WHERE name = ?", n); err != nil {
					return fmt.Errorf("remove feed sink %s: %w", n, err)
				}
				removed = append(removed, n)
			}
		}
		for _, n := range names {
			if slices.Contains(have, n) {
				continue
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO feed_sinks (name, delivered_id, added_at)
				VALUES (?, (SELECT COALESCE(max(id), 0) FROM feed_outbox), ?)`, n, db.FormatTime(now))
			if err != nil {
				return fmt.Errorf("add feed sink %s: %w", n, err)
			}
			added = append(added, n)
		}
		ddl := statusTrigger
		if len(names) == 0 {
			ddl = "DROP TRIGGER IF EXISTS feed_status_change"
		}
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("status_changes trigger: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sync feed sinks: %w", err)
	}
	if len(removed) > 0 {
		if _, err := Prune(ctx, d, 0); err != nil {
			return added, removed, err
		}
	}
	return added, removed, nil
}

func sinkNames(ctx context.Context, q db.Querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT name FROM feed_sinks ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("read feed sinks: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read feed sinks: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// position reads where sink stands in the outbox.
func position(ctx context.Context, q db.Querier, sink string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, "SELECT delivered_id FROM feed_sinks WHERE name = ?", sink).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("read feed sink %s: %w (run syncs feed_sinks at start)", sink, err)
	}
	return id, nil
}

// savePosition records that sink delivered every message up to id, and
// that it is delivering again.
func savePosition(ctx context.Context, d *db.DB, sink string, id int64, now time.Time) error {
	return d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE feed_sinks SET delivered_id = max(delivered_id, ?), delivered_at = ?, failing_since = NULL
			WHERE name = ?`, id, db.FormatTime(now), sink)
		if err != nil {
			return fmt.Errorf("save feed sink %s position: %w", sink, err)
		}
		return nil
	})
}

// saveFailure records a failed attempt of sink (why never holds a URL).
func saveFailure(ctx context.Context, d *db.DB, sink, why string, since, now time.Time) error {
	return d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE feed_sinks SET failing_since = COALESCE(failing_since, ?), last_error = ?, last_error_at = ?
			WHERE name = ?`, db.FormatTime(since), why, db.FormatTime(now), sink)
		if err != nil {
			return fmt.Errorf("save feed sink %s failure: %w", sink, err)
		}
		return nil
	})
}

// PruneBatch is how many delivered rows one prune transaction deletes:
// small enough that ingestion waits a millisecond at most for the writer.
const PruneBatch = 500

// Prune deletes the outbox rows every sink has delivered, PruneBatch per
// transaction, and returns how many went; max > 0 stops after that many.
// The newest row always stays: it keeps ids rising, so officers-<id> never
// names two messages.
func Prune(ctx context.Context, d *db.DB, max int64) (int64, error) {
	var total int64
	for max <= 0 || total < max {
		var n int64
		err := d.WriteTx(ctx, func(tx db.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM feed_outbox WHERE id IN (SELECT id FROM feed_outbox
				WHERE id <= COALESCE((SELECT min(delivered_id) FROM feed_sinks), (SELECT max(id) FROM feed_outbox))
				AND id < (SELECT max(id) FROM feed_outbox) ORDER BY id LIMIT ?)`, PruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune feed outbox: %w", err)
		}
		total += n
		if n < PruneBatch {
			break
		}
	}
	return total, nil
}

// SinkState is one sink as the database knows it, for status in another
// process and for the service's own metrics.
type SinkState struct {
	Name         string    `json:"name"`
	DeliveredID  int64     `json:"delivered_id"`
	DeliveredAt  time.Time `json:"delivered_at,omitzero"`
	Backlog      int64     `json:"backlog"`                // messages written and not yet delivered
	OldestAt     time.Time `json:"oldest_at,omitzero"`     // when the oldest of them was written (zero: none)
	FailingSince time.Time `json:"failing_since,omitzero"` // its current run of failures began (zero: delivering)
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	AddedAt      time.Time `json:"added_at,omitzero"`
}

// Read returns every configured sink with its backlog, through q, from
// indexed lookups only: outbox ids rise without gaps, so the backlog is
// the newest id less the sink's position.
func Read(ctx context.Context, q db.Querier) ([]SinkState, error) {
	var newest sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max(id) FROM feed_outbox").Scan(&newest); err != nil {
		return nil, fmt.Errorf("read feed outbox: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT name, delivered_id, delivered_at, failing_since, last_error, last_error_at, added_at,
		(SELECT created_at FROM feed_outbox o WHERE o.id > s.delivered_id ORDER BY o.id LIMIT 1)
		FROM feed_sinks s ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read feed sinks: %w", err)
	}
	defer rows.Close()
	var out []SinkState
	for rows.Next() {
		var (
			s                                                SinkState
			deliveredAt, failing, lastErr, lastErrAt, oldest sql.NullString
			added                                            string
		)
		if err := rows.Scan(&s.Name, &s.DeliveredID, &deliveredAt, &failing, &lastErr, &lastErrAt, &added, &oldest); err != nil {
			return nil, fmt.Errorf("read feed sinks: %w", err)
		}
		s.DeliveredAt, _ = db.ParseTime(deliveredAt.String)
		s.FailingSince, _ = db.ParseTime(failing.String)
		s.LastError = lastErr.String
		s.LastErrorAt, _ = db.ParseTime(lastErrAt.String)
		s.AddedAt, _ = db.ParseTime(added)
		s.OldestAt, _ = db.ParseTime(oldest.String)
		if oldest.Valid {
			s.Backlog = max(newest.Int64-s.DeliveredID, 1)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Behind reports whether the sink's oldest undelivered message is older
// than after (status.down_warn): it is down, or cannot keep up. status
// warns, and run raises the feed_backlog alert, on this one condition.
func (s SinkState) Behind(now time.Time, after time.Duration) bool {
	return !s.OldestAt.IsZero() && now.Sub(s.OldestAt) > after
}
