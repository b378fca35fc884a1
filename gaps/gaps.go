// Package gaps owns the stream_gaps table: the stretches of the stream that
// could not be replayed (a 416), from the moment ingest records one to its
// resolution by an import that covers it or by an operator's note. No other
// package reads or writes stream_gaps; they call this one.
package gaps

import (
	"context"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Gap is one row of stream_gaps. Times are as stored (ISO 8601 UTC text,
// "" when unknown).
type Gap struct {
	ID            int64
	Stream        string
	FromTimepoint int64 // first timepoint missed (cursor + 1)
	ToTimepoint   int64 // first timepoint received live afterwards (0: unknown)
	FromTime      string
	ToTime        string
	DetectedAt    string
	Reason        string
	ResolvedAt    string // "" while open
	Resolution    string // 'import' | 'sweep' | the operator's note
}

// Open reports whether the gap is unresolved.
func (g Gap) Open() bool { return g.ResolvedAt == "" }

// Import is the resolution of a gap covered by a bulk import.
const Import = "import"

// RecordTx writes a new open gap inside the caller's transaction (the batch
// that learnt of it) and returns its ID.
func RecordTx(ctx context.Context, tx db.Querier, stream string, fromTP, toTP int64, fromTime, toTime, detected time.Time, reason string) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO stream_gaps (stream, from_timepoint, to_timepoint, from_time, to_time, detected_at, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, stream, fromTP, toTP, db.NullTime(fromTime), db.NullTime(toTime), db.FormatTime(detected), reason)
	if err != nil {
		return 0, fmt.Errorf("record gap: %w", err)
	}
	id, _ := res.LastInsertId()
	return id, nil
}

// ResolveTx resolves the open gap id with the operator's note and reports
// whether there was such an open gap.
func ResolveTx(ctx context.Context, tx db.Querier, id int64, note string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, "UPDATE stream_gaps SET resolved_at = ?, resolution = ? WHERE id = ? AND resolved_at IS NULL",
		db.FormatTime(now), note, id)
	if err != nil {
		return false, fmt.Errorf("resolve gap %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Resolve is ResolveTx in its own transaction.
func Resolve(ctx context.Context, d *db.DB, id int64, note string, now time.Time) (bool, error) {
	var ok bool
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		var err error
		ok, err = ResolveTx(ctx, tx, id, note, now)
		return err
	})
	return ok, err
}

// covered selects the open gaps that ended by ?1, a bulk file's as-of at
// 00:00Z: the file holds what the stream missed then.
const covered = "resolved_at IS NULL AND to_time IS NOT NULL AND to_time <= ?1"

// ResolveCoveredTx resolves, as Import, the open gaps that ended by asOf
// and returns how many.
func ResolveCoveredTx(ctx context.Context, tx db.Querier, asOf, now time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, "UPDATE stream_gaps SET resolved_at = ?2, resolution = '"+Import+"' WHERE "+covered,
		db.FormatTime(asOf), db.FormatTime(now))
	if err != nil {
		return 0, fmt.Errorf("resolve stream gaps: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// AnyCovered reports whether an open gap ended by asOf (ResolveCoveredTx
// would resolve something).
func AnyCovered(ctx context.Context, q db.Querier, asOf time.Time) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM stream_gaps WHERE "+covered+")", db.FormatTime(asOf)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read stream gaps: %w", err)
	}
	return n == 1, nil
}

// OpenGaps reads the unresolved gaps, oldest first (through stream_gaps_open).
func OpenGaps(ctx context.Context, q db.Querier) ([]Gap, error) {
	return list(ctx, q, "WHERE resolved_at IS NULL ORDER BY id")
}

// List reads every gap, open ones first.
func List(ctx context.Context, q db.Querier) ([]Gap, error) {
	return list(ctx, q, "ORDER BY resolved_at IS NOT NULL, id")
}

func list(ctx context.Context, q db.Querier, tail string) ([]Gap, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, stream, from_timepoint, coalesce(to_timepoint, 0), coalesce(from_time, ''), coalesce(to_time, ''),
		detected_at, reason, coalesce(resolved_at, ''), coalesce(resolution, '') FROM stream_gaps `+tail)
	if err != nil {
		return nil, fmt.Errorf("read stream gaps: %w", err)
	}
	defer rows.Close()
	var out []Gap
	for rows.Next() {
		var g Gap
		if err := rows.Scan(&g.ID, &g.Stream, &g.FromTimepoint, &g.ToTimepoint, &g.FromTime, &g.ToTime,
			&g.DetectedAt, &g.Reason, &g.ResolvedAt, &g.Resolution); err != nil {
			return nil, fmt.Errorf("read stream gaps: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
