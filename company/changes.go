package company

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/chwatch/chwatch/db"
)

// The change log, company_changes, is appended by Batch.Flush for the
// companies it inserts (migration 0010: a trigger's sub-program per row cost
// a first import about 6%) and by the trigger company_changes_update for
// every update that gives a company a new change_seq (migration 0008), so
// whichever process writes, the log has an entry for each company's current
// change_seq. An entry whose company has a higher change_seq since is
// superseded: readers drop it by joining on both columns, and PruneChangesTx
// deletes it.

// LogInserted is the statement README gives for a company inserted into
// companies by hand, outside Batch: it appends the company's current
// change_seq to the log, as Flush does, so that export --state lists it.
// Its one argument is the company number.
const LogInserted = `INSERT INTO company_changes (change_seq, company_number)
	SELECT change_seq, company_number FROM companies WHERE company_number = ?`

// CounterChangesPruned is the counter holding the change_seq up to which
// the current walk of PruneChangesTx has gone (0: the walk starts again at
// the log's beginning).
const CounterChangesPruned = "company_changes.pruned_to"

// PruneChangesTx looks at the next limit entries of the log after change_seq
// from and deletes those a later write superseded (or whose company no
// longer exists), inside the caller's transaction. It returns where the
// walk goes on from (0 when it reached the log's end and starts again from
// its beginning) and the entries deleted. A company's current entry always
// stays: its change_seq is the company's own, and a writer that changes it
// appends the new entry in the same transaction.
func PruneChangesTx(ctx context.Context, tx db.Querier, from int64, limit int) (next, deleted int64, err error) {
	var n int64
	var last sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT count(*), max(change_seq) FROM
		(SELECT change_seq FROM company_changes WHERE change_seq > ?1 ORDER BY change_seq LIMIT ?2)`, from, limit).Scan(&n, &last)
	if err != nil {
		return from, 0, fmt.Errorf("prune company changes: read the log after %d: %w", from, err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM company_changes WHERE change_seq > ?1 AND change_seq <= ?2
		AND NOT EXISTS (SELECT 1 FROM companies c
			WHERE c.company_number = company_changes.company_number AND c.change_seq = company_changes.change_seq)`, from, last.Int64)
	if err != nil {
		return from, 0, fmt.Errorf("prune company changes after %d: %w", from, err)
	}
	deleted, _ = res.RowsAffected()
	if n < int64(limit) {
		return 0, deleted, nil
	}
	return last.Int64, deleted, nil
}
