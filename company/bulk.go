package company

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// What a bulk import writes besides the versions it applies: bookkeeping of
// which file listed a company, and which live companies a complete file
// lacks.

// MarkListed records that the bulk file of asOf lists the company although
// the rule left its row alone (unchanged or stale). It touches neither
// updated_at nor change_seq: bulk_as_of is bookkeeping, not a change of the
// company.
func MarkListed(ctx context.Context, q db.Querier, number, asOf string) error {
	_, err := q.ExecContext(ctx, `UPDATE companies SET bulk_as_of = ?1
		WHERE company_number = ?2 AND (bulk_as_of IS NULL OR bulk_as_of < ?1)`, asOf, number)
	if err != nil {
		return fmt.Errorf("record bulk_as_of of %s: %w", number, err)
	}
	return nil
}

// ClearMissing is for a stale row (newer data kept) of a company an earlier
// import of asOf or before marked missing: the file lists it after all.
func ClearMissing(ctx context.Context, q db.Querier, seq *db.Seq, number, asOf string, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE companies SET missing_from_bulk = NULL, updated_at = ?1, change_seq = ?2
		WHERE company_number = ?3 AND missing_from_bulk IS NOT NULL AND missing_from_bulk <= ?4`,
		db.FormatTime(now), seq.Next(), number, asOf)
	if err != nil {
		return fmt.Errorf("clear missing_from_bulk of %s: %w", number, err)
	}
	return nil
}

// missingWhere selects the live companies a complete file of as-of ?1 lacks
// and that are not marked yet. Idempotent: a marked row no longer matches,
// so an interrupted pass simply runs again.
const missingWhere = `(bulk_as_of IS NULL OR bulk_as_of < ?1) AND missing_from_bulk IS NULL AND deleted_at IS NULL
	AND company_status NOT IN ('dissolved', 'converted-closed', 'closed', 'removed')
	AND (date_of_creation IS NULL OR date_of_creation < ?1)`

// MissingPending reports whether any company is still to be marked missing
// from the complete file of asOf: a pass stopped inside it.
func MissingPending(ctx context.Context, q db.Querier, asOf string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM companies WHERE `+missingWhere+`)`, asOf).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look for companies missing from the file as of %s: %w", asOf, err)
	}
	return n == 1, nil
}

// MaxRowID is the highest rowid of companies (0 when empty): the end of
// the ranges MarkMissing walks.
func MaxRowID(ctx context.Context, q db.Querier) (int64, error) {
	var id sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max(rowid) FROM companies").Scan(&id); err != nil {
		return 0, fmt.Errorf("read companies: %w", err)
	}
	return id.Int64, nil
}

// Missing is what MarkMissing did.
type Missing struct {
	Marked       int64 // companies marked missing_from_bulk
	StatusChecks int64 // of which in strike-off, queued for a status check
}

// MarkMissing marks the live companies with lo < rowid <= hi that the
// complete file of asOf lacks, and queues a status check for those in
// strike-off, inside the caller's transaction. The caller walks rowid
// ranges in short transactions; memory holds one range's numbers at most.
func MarkMissing(ctx context.Context, tx db.Querier, seq *db.Seq, asOf string, lo, hi int64, now time.Time, maxDepth int64) (Missing, error) {
	var m Missing
	rows, err := tx.QueryContext(ctx, `SELECT rowid, company_number, company_status, coalesce(company_status_detail, '')
		FROM companies WHERE rowid > ?2 AND rowid <= ?3 AND `+missingWhere+` ORDER BY rowid`, asOf, lo, hi)
	if err != nil {
		return m, fmt.Errorf("find companies missing from the file as of %s: %w", asOf, err)
	}
	type hit struct {
		id        int64
		number    string
		strikeOff bool
	}
	var hits []hit
	for rows.Next() {
		var h hit
		var status, detail string
		if err := rows.Scan(&h.id, &h.number, &status, &detail); err != nil {
			rows.Close()
			return m, fmt.Errorf("find companies missing from the file as of %s: %w", asOf, err)
		}
		// deleted_at IS NULL is in missingWhere.
		h.strikeOff = InStrikeOff(status, detail, false)
		hits = append(hits, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("find companies missing from the file as of %s: %w", asOf, err)
	}
	ts := db.FormatTime(now)
	for _, h := range hits {
		if _, err := tx.ExecContext(ctx, "UPDATE companies SET missing_from_bulk = ?, updated_at = ?, change_seq = ? WHERE rowid = ?",
			asOf, ts, seq.Next(), h.id); err != nil {
			return m, fmt.Errorf("mark %s missing: %w", h.number, err)
		}
		m.Marked++
		if h.strikeOff {
			res, err := queue.EnqueueTx(ctx, tx, queue.StatusCheck, h.number, now, maxDepth)
			if err != nil {
				return m, err
			}
			if res == queue.Queued {
				m.StatusChecks++
			}
		}
	}
	return m, nil
}
