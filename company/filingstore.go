package company

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Counter names of the strike-off kinds and the unknown filing descriptions,
// kept with the rows they count so that status reads them without scanning
// companies.
const (
	CounterFilingPrefix    = "filing."
	CounterFilingBackfill  = "filing.backfill"      // strike-off companies queued for a filing_check by migration 0004
	CounterFilingSuspended = "filing.suspended"     // strike-off companies with strike_off_suspended_at
	CounterFilingUnknown   = "filing.unknown_items" // rows of filing_unknowns
)

// CounterFilingKind is the counter of strike-off companies of kind k.
func CounterFilingKind(k string) string { return "filing.kind." + k }

// CounterFilingDuePrefix starts the counters of strike-off companies, not
// suspended, due for dissolution in each month: filing.due.2027-01.
const CounterFilingDuePrefix = "filing.due."

// dueCounter is the month counter of a company due on due, "" when it
// counts in none (no notice yet, or suspended).
func dueCounter(due, suspended string) string {
	if len(due) < len("2006-01") || suspended != "" {
		return ""
	}
	return CounterFilingDuePrefix + due[:len("2006-01")]
}

// StrikeOffResult says what ApplyStrikeOffTx did.
type StrikeOffResult struct {
	// Written is false when the company is not in strike-off (it left
	// while its filing history was read, or was never stored): nothing was
	// written.
	Written bool
	Changed bool // the company's four columns changed
	Unknown int  // unrecognised items stored for the first time
}

// ApplyStrikeOffTx records what a company's filing history says about its
// strike-off, inside the caller's write transaction: the four strike-off
// columns (with a change_seq from seq, only when they change), and the
// items of unrecognised description in filing_unknowns. Like
// ReplaceOfficersTx it checks in the same transaction that the company is
// still in strike-off, so a late answer never marks a company that left.
func ApplyStrikeOffTx(ctx context.Context, tx db.Querier, seq *db.Seq, number string, s StrikeOff, fetchedAt time.Time) (StrikeOffResult, error) {
	var (
		status                                   string
		detail, deleted, kind, notice, due, susp sql.NullString
	)
	err := tx.QueryRowContext(ctx, `SELECT company_status, company_status_detail, deleted_at,
		strike_off_kind, gazette_notice_on, dissolution_due_on, strike_off_suspended_at FROM companies WHERE company_number = ?`, number).
		Scan(&status, &detail, &deleted, &kind, &notice, &due, &susp)
	if errors.Is(err, sql.ErrNoRows) {
		return StrikeOffResult{}, nil
	}
	if err != nil {
		return StrikeOffResult{}, fmt.Errorf("record strike-off of %s: read company: %w", number, err)
	}
	if !InStrikeOff(status, detail.String, deleted.Valid) {
		return StrikeOffResult{}, nil
	}
	out := StrikeOffResult{Written: true}
	ts := db.FormatTime(fetchedAt)
	if kind.String != s.Kind || notice.String != s.NoticeOn || due.String != s.DueOn || susp.String != s.SuspendedAt {
		out.Changed = true
		_, err := tx.ExecContext(ctx, `UPDATE companies SET strike_off_kind = ?, gazette_notice_on = ?, dissolution_due_on = ?,
			strike_off_suspended_at = ?, updated_at = ?, change_seq = ? WHERE company_number = ?`,
			s.Kind, db.NullString(s.NoticeOn), db.NullString(s.DueOn), db.NullString(s.SuspendedAt), ts, seq.Next(), number)
		if err != nil {
			return out, fmt.Errorf("record strike-off of %s: %w", number, err)
		}
		if kind.Valid {
			seq.Count(CounterFilingKind(kind.String), -1)
		}
		seq.Count(CounterFilingKind(s.Kind), 1)
		switch {
		case susp.Valid && s.SuspendedAt == "":
			seq.Count(CounterFilingSuspended, -1)
		case !susp.Valid && s.SuspendedAt != "":
			seq.Count(CounterFilingSuspended, 1)
		}
		if was, now := dueCounter(due.String, susp.String), dueCounter(s.DueOn, s.SuspendedAt); was != now {
			if was != "" {
				seq.Count(was, -1)
			}
			if now != "" {
				seq.Count(now, 1)
			}
		}
	}
	for _, f := range s.Unknown {
		res, err := tx.ExecContext(ctx, `INSERT INTO filing_unknowns (company_number, transaction_id, description, category, type, date, raw, seen_at)
			VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (company_number, transaction_id) DO NOTHING`,
			number, f.TransactionID, f.Description, db.NullString(f.Category), db.NullString(f.Type), db.NullString(f.Date), string(f.Raw), ts)
		if err != nil {
			return out, fmt.Errorf("record strike-off of %s: keep unknown item %s: %w", number, f.TransactionID, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			out.Unknown++
		}
	}
	seq.Count(CounterFilingUnknown, int64(out.Unknown))
	return out, nil
}

// clearStrikeOffTx clears a leaving company's four strike-off columns and
// uncounts its kind. It runs only on the exit path of the rule (a read, and
// a write when a filing_check had run): nothing is added to the stream's
// other writes. The row was just written with this transaction's
// change_seq.
func clearStrikeOffTx(ctx context.Context, tx db.Querier, seq *db.Seq, number string) error {
	var (
		kind      string
		due, susp sql.NullString
	)
	// RETURNING would show the new (NULL) values: the old ones are read first.
	err := tx.QueryRowContext(ctx, `SELECT strike_off_kind, dissolution_due_on, strike_off_suspended_at FROM companies
		WHERE company_number = ? AND strike_off_kind IS NOT NULL`, number).Scan(&kind, &due, &susp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `UPDATE companies SET strike_off_kind = NULL, gazette_notice_on = NULL, dissolution_due_on = NULL,
			strike_off_suspended_at = NULL WHERE company_number = ?`, number)
	}
	if err != nil {
		return fmt.Errorf("clear strike-off of %s: %w", number, err)
	}
	seq.Count(CounterFilingKind(kind), -1)
	if susp.Valid {
		seq.Count(CounterFilingSuspended, -1)
	}
	if c := dueCounter(due.String, susp.String); c != "" {
		seq.Count(c, -1)
	}
	return nil
}
