package importer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// passRows is the rowid range one transaction of the missing pass covers.
const passRows = 20000

// missingWhere selects the live companies a complete file of as-of ?1 lacks
// and that are not marked yet. Idempotent: a marked row no longer matches,
// so an interrupted pass simply runs again.
const missingWhere = `(bulk_as_of IS NULL OR bulk_as_of < ?1) AND missing_from_bulk IS NULL AND deleted_at IS NULL
	AND company_status NOT IN ('dissolved', 'converted-closed', 'closed', 'removed')
	AND (date_of_creation IS NULL OR date_of_creation < ?1)`

// resolveGaps marks as resolved the gaps that ended by the as-of (?2 is its
// 00:00Z time): the file holds what the stream missed then.
const resolveGaps = `UPDATE stream_gaps SET resolved_at = ?1, resolution = 'import'
	WHERE resolved_at IS NULL AND to_time IS NOT NULL AND to_time <= ?2`

// passPending reports whether the pass after a complete import still has
// work: an earlier run stopped inside it.
func (im *importer) passPending(ctx context.Context) (bool, error) {
	if newer, err := im.newerImport(ctx); err != nil || newer != "" {
		return false, err
	}
	var n int
	err := im.d.W.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM companies WHERE `+missingWhere+`)
		OR EXISTS (SELECT 1 FROM stream_gaps WHERE resolved_at IS NULL AND to_time IS NOT NULL AND to_time <= ?2)`,
		im.asOf, db.FormatTime(im.opts.AsOf)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check the end of the import as of %s: %w", im.asOf, err)
	}
	return n == 1, nil
}

// newerImport returns the as-of of a complete import newer than this one.
func (im *importer) newerImport(ctx context.Context) (string, error) {
	var newer sql.NullString
	err := im.d.W.QueryRowContext(ctx, "SELECT max(as_of) FROM imports WHERE completed_at IS NOT NULL AND as_of > ?", im.asOf).Scan(&newer)
	if err != nil {
		return "", fmt.Errorf("read imports: %w", err)
	}
	return newer.String, nil
}

// markMissing marks the live companies the complete file lacks, queues a
// status check for those in strike-off, and resolves the gaps the file
// covers, in short transactions over rowid ranges.
func (im *importer) markMissing(ctx context.Context) error {
	newer, err := im.newerImport(ctx)
	if err != nil {
		return err
	}
	if newer != "" {
		im.s.MissingSkipped = newer
		return nil
	}
	var maxID sql.NullInt64
	if err := im.d.W.QueryRowContext(ctx, "SELECT max(rowid) FROM companies").Scan(&maxID); err != nil {
		return fmt.Errorf("mark missing companies: %w", err)
	}
	dctx := context.WithoutCancel(ctx)
	asOfTime := db.FormatTime(im.opts.AsOf)
	for lo := int64(0); ; lo += passRows {
		if err := ctx.Err(); err != nil {
			return err
		}
		last := lo+passRows >= maxID.Int64
		now := im.opts.Now()
		ts := db.FormatTime(now)
		var marked, checks, gaps int64
		err := im.d.WriteTx(dctx, func(tx db.Tx) error {
			seq, err := db.BeginSeq(dctx, tx)
			if err != nil {
				return err
			}
			rows, err := tx.QueryContext(dctx, `SELECT rowid, company_number,
				coalesce(company_status = 'active' AND company_status_detail = 'active-proposal-to-strike-off', 0)
				FROM companies WHERE rowid > ?2 AND rowid <= ?3 AND `+missingWhere+` ORDER BY rowid`,
				im.asOf, lo, lo+passRows)
			if err != nil {
				return err
			}
			type hit struct {
				id        int64
				number    string
				strikeOff bool
			}
			var hits []hit
			for rows.Next() {
				var h hit
				if err := rows.Scan(&h.id, &h.number, &h.strikeOff); err != nil {
					rows.Close()
					return err
				}
				hits = append(hits, h)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			upd, err := tx.PrepareContext(dctx, "UPDATE companies SET missing_from_bulk = ?, updated_at = ?, change_seq = ? WHERE rowid = ?")
			if err != nil {
				return err
			}
			defer upd.Close()
			for _, h := range hits {
				if _, err := upd.ExecContext(dctx, im.asOf, ts, seq.Next(), h.id); err != nil {
					return fmt.Errorf("mark %s missing: %w", h.number, err)
				}
				marked++
				if h.strikeOff {
					res, err := queue.Enqueue(dctx, tx, queue.StatusCheck, h.number, now, im.opts.MaxDepth)
					if err != nil {
						return err
					}
					if res == queue.Queued {
						checks++
					}
				}
			}
			if last {
				// With the last range, so that a pass that ended also
				// resolved its gaps.
				res, err := tx.ExecContext(dctx, resolveGaps, ts, asOfTime)
				if err != nil {
					return fmt.Errorf("resolve stream gaps: %w", err)
				}
				gaps, _ = res.RowsAffected()
			}
			return seq.Save(dctx, tx)
		})
		if err != nil {
			return fmt.Errorf("mark companies missing from the file as of %s: %w", im.asOf, err)
		}
		im.s.Missing += marked
		im.s.StatusChecks += checks
		im.s.GapsResolved += gaps
		if last {
			return nil
		}
		im.pause(ctx)
	}
}
