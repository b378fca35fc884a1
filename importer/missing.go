package importer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/gaps"
)

// passRows is the rowid range one transaction of the missing pass covers.
const passRows = 20000

// passPending reports whether the pass after a complete import still has
// work: an earlier run stopped inside it.
func (im *importer) passPending(ctx context.Context) (bool, error) {
	if newer, err := im.newerImport(ctx); err != nil || newer != "" {
		return false, err
	}
	missing, err := company.MissingPending(ctx, im.d.W, im.asOf)
	if err != nil || missing {
		return missing, err
	}
	open, err := gaps.AnyCovered(ctx, im.d.W, im.opts.AsOf)
	if err != nil {
		return false, fmt.Errorf("check the end of the import as of %s: %w", im.asOf, err)
	}
	return open, nil
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
	maxID, err := company.MaxRowID(ctx, im.d.W)
	if err != nil {
		return fmt.Errorf("mark missing companies: %w", err)
	}
	dctx := context.WithoutCancel(ctx)
	for lo := int64(0); ; lo += passRows {
		if err := ctx.Err(); err != nil {
			return err
		}
		last := lo+passRows >= maxID
		now := im.opts.Now()
		var m company.Missing
		var resolved int64
		err := im.d.WriteTx(dctx, func(sqlTx db.Tx) error {
			tx := db.NewStmtCache(sqlTx)
			seq, err := db.BeginSeq(dctx, tx)
			if err != nil {
				return err
			}
			if m, err = company.MarkMissing(dctx, tx, seq, im.asOf, lo, lo+passRows, now, im.opts.MaxDepth); err != nil {
				return err
			}
			if last {
				// With the last range, so that a pass that ended also
				// resolved its gaps.
				if resolved, err = gaps.ResolveCoveredTx(dctx, tx, im.opts.AsOf, now); err != nil {
					return err
				}
			}
			return seq.Save(dctx, tx)
		})
		if err != nil {
			return fmt.Errorf("mark companies missing from the file as of %s: %w", im.asOf, err)
		}
		if err := im.committed(); err != nil {
			return err
		}
		im.s.Missing += m.Marked
		im.s.StatusChecks += m.StatusChecks
		im.s.GapsResolved += resolved
		if last {
			return nil
		}
		im.pause(ctx)
	}
}
