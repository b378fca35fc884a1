package enrich

import (
	"context"
	"time"

	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// DefaultNoticeRecheck is how long a filing_check that found no
// first-Gazette notice yet waits before it reads the history again: a DS01
// is followed by its notice within weeks, and a day keeps such a company's
// cost at a request a day.
const DefaultNoticeRecheck = 24 * time.Hour

// filingCheck runs a filing_check: every page of the company's gazette and
// dissolution filings, the strike-off's cause and timetable decided from
// them (company.DecideStrikeOff) and stored with the job's completion in
// one transaction. Nothing is written for a company that left strike-off
// meanwhile (ApplyStrikeOffTx checks inside the transaction). When no notice
// is filed yet, what is known is stored and the job goes back to the queue
// for NoticeRecheck, spending no attempt.
func (w *Workers) filingCheck(ctx context.Context, j queue.Job) string {
	if !api.ValidNumber(j.Company) {
		return w.bury(ctx, j, badNumber(j))
	}
	if res, skip := w.skipUnlessInStrikeOff(ctx, j, "filing history not read"); skip {
		return res
	}
	h, err := breaker.Call(w.cfg.Breaker, func() (api.FilingHistory, error) { return w.cfg.Client.FilingHistory(ctx, j.Company) })
	if err != nil {
		return w.settle(ctx, j, err)
	}
	w.answered()
	s := company.DecideStrikeOff(h.Filings)
	now := w.cfg.Now()
	var res company.StrikeOffResult
	recheck := false
	err = w.commit(ctx, j, max(h.Pages, 1), func(ctx context.Context, tx db.Tx, seq *db.Seq) (err error) {
		res, err = company.ApplyStrikeOffTx(ctx, tx, seq, j.Company, s, now)
		return err
	}, func(ctx context.Context, tx db.Tx) error {
		if recheck = res.Written && !s.HasNotice(); recheck {
			return w.cfg.Queue.DeferTx(ctx, tx, j, now.Add(w.cfg.NoticeRecheck), "no first-Gazette notice filed yet: read again after a day")
		}
		return w.cfg.Queue.CompleteTx(ctx, tx, j)
	})
	if err != nil {
		return w.unwritten(ctx, j, err)
	}
	log := w.log.With("company", j.Company, "job", string(j.Kind))
	if res.Unknown > 0 {
		log.Warn("filing history holds descriptions chwatch does not know: kept in filing_unknowns (see chwatch status)", "items", res.Unknown)
	}
	switch {
	case !res.Written:
		log.Info("strike-off not recorded: the company left strike-off while its filing history was read")
		return Done
	case recheck:
		log.Debug("no first-Gazette notice yet: read again later", "kind", s.Kind, "pages", h.Pages)
		return Recheck
	}
	log.Debug("strike-off recorded", "kind", s.Kind, "notice", s.NoticeOn, "due", s.DueOn, "suspended", s.SuspendedAt, "pages", h.Pages)
	return Done
}

// skipUnlessInStrikeOff completes job j without a request when its company
// is not in strike-off (it left, or was never seen): an answer would be
// thrown away. skip is false when the job should go on.
func (w *Workers) skipUnlessInStrikeOff(ctx context.Context, j queue.Job, what string) (result string, skip bool) {
	recs, err := company.LoadMany(ctx, w.cfg.DB.R, []string{j.Company})
	if err != nil {
		if ctx.Err() != nil {
			return Stopped, true
		}
		return w.unwritten(ctx, j, err), true
	}
	if recs[j.Company].InStrikeOff() {
		return "", false
	}
	wctx := context.WithoutCancel(ctx)
	if err := w.cfg.DB.WriteTx(wctx, func(tx db.Tx) error { return w.cfg.Queue.CompleteTx(wctx, tx, j) }); err != nil {
		return w.unwritten(ctx, j, err), true
	}
	w.log.Info(what+": the company is not in strike-off", "company", j.Company, "job", string(j.Kind))
	return Done, true
}
