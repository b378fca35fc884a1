package ingest

import (
	"context"
	"fmt"

	"github.com/chwatch/chwatch/db"
)

// OpenGap is a stream gap nobody has resolved yet.
type OpenGap struct {
	ID, FromTimepoint, ToTimepoint int64
	Reason                         string
}

// OpenGaps returns the unresolved gaps, oldest first. run's alerts follow
// it: a gap is resolved by an import or `chwatch gaps resolve`, in other
// processes.
func OpenGaps(ctx context.Context, q db.Querier) ([]OpenGap, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, from_timepoint, coalesce(to_timepoint, 0), coalesce(reason, '')
		FROM stream_gaps WHERE stream = ? AND resolved_at IS NULL ORDER BY id`, StreamName)
	if err != nil {
		return nil, fmt.Errorf("read open gaps: %w", err)
	}
	defer rows.Close()
	var out []OpenGap
	for rows.Next() {
		var g OpenGap
		if err := rows.Scan(&g.ID, &g.FromTimepoint, &g.ToTimepoint, &g.Reason); err != nil {
			return nil, fmt.Errorf("read open gaps: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
