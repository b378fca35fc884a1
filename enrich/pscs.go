package enrich

import (
	"context"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// pscs runs a pscs job: every page of the company's list of persons with
// significant control, then its PSCs replaced in one transaction with the
// job's completion (nothing is written when the company left strike-off
// meanwhile: ReplacePSCsTx checks inside the transaction). Failures settle
// as an officer list's do.
func (w *Workers) pscs(ctx context.Context, j queue.Job) string {
	if res, skip := w.skipList(ctx, j, "PSCs"); skip {
		return res
	}
	list, err := breaker.Call(w.cfg.Breaker, func() (api.PSCList, error) { return w.cfg.Client.PSCs(ctx, j.Company) })
	if err != nil {
		return w.settle(ctx, j, err)
	}
	w.answered()
	now := w.cfg.Now()
	var res company.PSCsResult
	err = w.commit(ctx, j, max(list.Pages, 1), func(ctx context.Context, tx db.Tx, seq *db.Seq) (err error) {
		res, err = company.ReplacePSCsTx(ctx, tx, seq, j.Company, list.PSCs, now)
		return err
	}, nil)
	if err != nil {
		return w.unwritten(ctx, j, err)
	}
	switch {
	case !res.Written:
		w.log.Info("PSCs not stored: the company left strike-off while its list was read", "company", j.Company)
	case !list.Found:
		// Not the company's absence: the profile and the stream decide
		// that. The register simply has nothing for it.
		w.log.Info("the PSC register does not know the company (404): no PSCs stored", "company", j.Company)
	default:
		w.log.Debug("PSCs stored", "company", j.Company, "pscs", res.Stored, "removed", res.Removed, "pages", list.Pages,
			"active", list.ActiveCount, "ceased", list.CeasedCount)
	}
	return Done
}

// PSCSetup is what SetUpPSCs did.
type PSCSetup struct {
	Since     time.Time // when enrich.pscs was turned on (zero: it is off)
	Backfill  bool      // the backfill ran now: the option was just turned on
	Queued    int64     // pscs jobs the backfill queued
	Refused   int64     // companies the backfill left out past queue.max_depth (counted as refused)
	Cancelled int64     // queued pscs jobs dropped because the option is off
}

// SetUpPSCs brings the queue in line with enrich.pscs at the start of a
// run, in one transaction, before any worker claims. Turned on (no
// db.StatePSCsSince row yet, the row that makes the backfill run once, not
// at every start): every company in strike-off without PSC rows and
// without a pscs job pending gets one, once (entries from now on are
// queued by the company rule beside their officers). Off: the queued pscs
// jobs are dropped, so the queue can drain and its drain estimate stays
// true; the rows already stored stay until their companies leave
// strike-off, and turning the option on again queues afresh those
// without rows. It must run under the instance lock (no job of another
// process is running).
func SetUpPSCs(ctx context.Context, d *db.DB, on bool, maxDepth int64, now time.Time) (PSCSetup, error) {
	var out PSCSetup
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		kv, err := db.State(ctx, tx)
		if err != nil {
			return err
		}
		since, _ := db.ParseTime(kv[db.StatePSCsSince])
		ts := db.FormatTime(now)
		switch {
		case on && !since.IsZero():
			out.Since = since
			return nil
		case on:
			out.Since, out.Backfill = now, true
			if out.Queued, out.Refused, err = queue.EnqueueSelectTx(ctx, tx, queue.PSCs, now, maxDepth, company.WithoutPSCsSQL); err != nil {
				return err
			}
			return db.SetState(ctx, tx, ts, map[string]string{db.StatePSCsSince: ts})
		}
		if out.Cancelled, err = queue.CancelKindTx(ctx, tx, queue.PSCs); err != nil {
			return err
		}
		if _, ok := kv[db.StatePSCsSince]; ok && kv[db.StatePSCsSince] != "" {
			return db.SetState(ctx, tx, ts, map[string]string{db.StatePSCsSince: ""})
		}
		return nil
	})
	if err != nil {
		return PSCSetup{}, fmt.Errorf("set up PSC fetches (enrich.pscs): %w", err)
	}
	return out, nil
}
