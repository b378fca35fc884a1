package enrich

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// rewriteWait is how long a job whose answer could not be written (a full
// disk, a busy database) waits before it is tried again. Not the job's
// fault: no attempt is spent.
const rewriteWait = 30 * time.Second

// Alert texts: one per condition, constant, so that the alerter sends a
// condition once; what varies goes in the details.
const (
	unauthorizedText = "the REST API answers 401: the API key is wrong or revoked (set CHWATCH_API_KEY and restart chwatch); REST work pauses for api.unauthorized_wait between single tries, the stream keeps flowing"
	forbiddenText    = "the REST API answers 403: Companies House refuses this machine's address; all REST work pauses for api.forbidden_wait, then one request tries again (see the runbook: do not restart in a loop)"
)

// profile runs a status_check or sweep_check: the company's profile,
// applied as source api through the company rule.
func (w *Workers) profile(ctx context.Context, j queue.Job) string {
	if !api.ValidNumber(j.Company) {
		return w.bury(ctx, j, badNumber(j))
	}
	p, err := breaker.Call(w.cfg.Breaker, func() (api.Profile, error) { return w.cfg.Client.Profile(ctx, j.Company) })
	if err != nil {
		return w.settle(ctx, j, err)
	}
	w.answered()
	now := w.cfg.Now()
	var d company.Decision
	// A profile is one request, always: only lists' costs are measured.
	err = w.commit(ctx, j, 0, func(ctx context.Context, tx db.Tx, seq *db.Seq) (err error) {
		d, err = w.cfg.Applier.Apply(ctx, tx, seq, p.Version, now)
		return err
	}, nil)
	if err != nil {
		return w.unwritten(ctx, j, err)
	}
	w.cfg.Applier.Transitions.Add(d.Change, 1)
	log := w.log.With("company", j.Company, "job", string(j.Kind))
	switch {
	case d.Change == company.EnteredStrikeOff || d.Change == company.LeftStrikeOff:
		log.Info(strings.ReplaceAll(d.Change, "_", " "), "name", d.Write.Name, "first_seen", d.FirstSeen, "source", "api")
	case !p.Found:
		log.Info("the API does not know the company (404): recorded as deleted")
	default:
		log.Debug("profile applied", "outcome", d.Outcome)
	}
	if d.OfficersRefused {
		log.Warn("officers fetch refused: the queue is past queue.max_depth (counted in status as refused)")
	}
	return Done
}

// officers runs an officers job: every page of the list, then the
// company's officers replaced in one transaction (nothing is written when
// the company left strike-off meanwhile: ReplaceOfficersTx checks inside
// the transaction).
func (w *Workers) officers(ctx context.Context, j queue.Job) string {
	if res, skip := w.skipList(ctx, j, "officers"); skip {
		return res
	}
	list, err := breaker.Call(w.cfg.Breaker, func() (api.OfficerList, error) { return w.cfg.Client.Officers(ctx, j.Company) })
	if err != nil {
		return w.settle(ctx, j, err)
	}
	w.answered()
	now := w.cfg.Now()
	var res company.OfficersResult
	err = w.commit(ctx, j, max(list.Pages, 1), func(ctx context.Context, tx db.Tx, seq *db.Seq) (err error) {
		res, err = company.ReplaceOfficersTx(ctx, tx, seq, j.Company, list.Officers, now)
		return err
	}, nil)
	if err != nil {
		return w.unwritten(ctx, j, err)
	}
	if !res.Written {
		w.log.Info("officers not stored: the company left strike-off while its list was read", "company", j.Company)
		return Done
	}
	w.stored.Add(int64(res.Stored))
	w.log.Debug("officers stored", "company", j.Company, "officers", res.Stored, "removed", res.Removed, "pages", list.Pages)
	return Done
}

// skipList settles a list job (officers, pscs) that must send nothing: a
// bad company number (dead at once), or a company no longer in strike-off
// (or never seen), whose list would be thrown away, so no request is spent
// on it (done). skip is false when the list is to be fetched.
func (w *Workers) skipList(ctx context.Context, j queue.Job, what string) (res string, skip bool) {
	if !api.ValidNumber(j.Company) {
		return w.bury(ctx, j, badNumber(j)), true
	}
	return w.skipUnlessInStrikeOff(ctx, j, what+" not fetched")
}

// settle puts a job whose call failed where it belongs. Only a failure of
// the job itself spends an attempt; when the API could not be asked (the
// budget paused or spent, the breaker open or probing, a 401 or 403 pause,
// a 429) it goes back to the queue until REST work may resume.
func (w *Workers) settle(ctx context.Context, j queue.Job, err error) string {
	now := w.cfg.Now()
	var paused *budget.PausedError
	switch {
	case ctx.Err() != nil:
		return Stopped // its lease is released with the others
	case errors.Is(err, api.ErrBadNumber):
		return w.bury(ctx, j, err)
	case errors.Is(err, breaker.ErrOpen):
		return w.requeue(ctx, j, w.probeAt(now), "waiting: the REST breaker is open")
	case errors.Is(err, breaker.ErrProbing):
		return w.requeue(ctx, j, now.Add(w.cfg.ProbeWait), "waiting: the REST breaker's half-open probe is in flight")
	case errors.As(err, &paused):
		return w.requeue(ctx, j, paused.Until, "waiting: "+paused.Error())
	case errors.Is(err, api.ErrUnauthorized):
		w.noteError(err)
		w.raise(alert.APIUnauthorized, unauthorizedText, err)
		return w.requeue(ctx, j, w.pausedUntil(now), "waiting: "+err.Error())
	case errors.Is(err, api.ErrForbidden):
		w.noteError(err)
		w.raise(alert.APIForbidden, forbiddenText, err)
		return w.requeue(ctx, j, w.pausedUntil(now), "waiting: "+err.Error())
	case errors.Is(err, api.ErrRateLimited):
		w.noteError(err)
		return w.requeue(ctx, j, w.pausedUntil(now), "waiting: "+err.Error())
	case api.Failure(err) && w.cfg.Breaker.State() != breaker.Closed:
		// The failure that opened the breaker, or a failed probe: the
		// API's, not the job's. A long outage kills no job.
		w.noteError(err)
		w.log.Warn("REST call failed; the breaker is open: the job waits for the API", "job", string(j.Kind), "company", j.Company, "err", err)
		return w.requeue(ctx, j, w.probeAt(now), "waiting for the API: "+err.Error())
	}
	w.noteError(err)
	w.log.Warn("REST job failed", "job", string(j.Kind), "company", j.Company, "attempt", j.Attempts+1, "err", err)
	if ferr := w.cfg.Queue.Fail(context.WithoutCancel(ctx), j, err); ferr != nil {
		return w.lost(j, ferr)
	}
	return Failed
}

// probeAt is when the breaker lets a probe through (soon, when it is not open).
func (w *Workers) probeAt(now time.Time) time.Time {
	if at := w.cfg.Breaker.ProbeAt(); at.After(now) {
		return at
	}
	return now.Add(w.cfg.ProbeWait)
}

// pausedUntil is when the budget's pause ends (soon, when none holds).
func (w *Workers) pausedUntil(now time.Time) time.Time {
	if st := w.cfg.Budget.State(); st.PausedUntil.After(now) {
		return st.PausedUntil
	}
	return now.Add(w.cfg.ProbeWait)
}

// requeue puts the job back until until without spending an attempt.
func (w *Workers) requeue(ctx context.Context, j queue.Job, until time.Time, reason string) string {
	if err := w.cfg.Queue.Defer(context.WithoutCancel(ctx), j, until, reason); err != nil {
		return w.lost(j, err)
	}
	return Deferred
}

// bury makes a job that can never succeed dead at once.
func (w *Workers) bury(ctx context.Context, j queue.Job, cause error) string {
	w.log.Warn("REST job cannot succeed: dead at once (see `chwatch queue status`)", "job", string(j.Kind), "company", j.Company, "err", cause)
	if err := w.cfg.Queue.Bury(context.WithoutCancel(ctx), j, cause); err != nil {
		return w.lost(j, err)
	}
	return Dead
}

// unwritten handles a result that could not be written with the job's
// completion: rolled back, the job goes back to the queue for a while.
func (w *Workers) unwritten(ctx context.Context, j queue.Job, err error) string {
	if errors.Is(err, queue.ErrLeaseLost) {
		return w.lost(j, err)
	}
	err = fmt.Errorf("write the answer for %s %s: %w", j.Kind, j.Company, err)
	w.noteError(err)
	w.log.Warn("REST answer not written: the job is tried again later", "err", err)
	return w.requeue(ctx, j, w.cfg.Now().Add(rewriteWait), err.Error())
}

func (w *Workers) lost(j queue.Job, err error) string {
	if errors.Is(err, queue.ErrLeaseLost) {
		w.log.Info("REST job dropped: its lease was lost (the job went back to the queue)", "job", string(j.Kind), "company", j.Company)
	} else {
		// The lease runs out and the job comes back by itself.
		w.noteError(err)
		w.log.Warn("REST job not put back: it comes back when its lease expires", "job", string(j.Kind), "company", j.Company, "err", err)
	}
	return Lost
}

// answered is called after every answer the API gave: the key and the
// address are fine again.
func (w *Workers) answered() {
	if a := w.cfg.Alerts; a != nil {
		a.Resolve(alert.APIUnauthorized)
		a.Resolve(alert.APIForbidden)
	}
}

func (w *Workers) raise(kind, text string, err error) {
	if a := w.cfg.Alerts; a != nil {
		a.Raise(kind, alert.Critical, text, map[string]any{"last_error": err.Error()})
	} else {
		w.log.Error(text, "err", err)
	}
}

func badNumber(j queue.Job) error {
	return fmt.Errorf("%q is not a company number (8 characters of A-Z and 0-9): nothing was sent; delete it with `chwatch queue purge --dead`", j.Company)
}

// commit writes a job's answer in one transaction with the job's end:
// write stores it (change_seq values from seq), a list's cost in pages is
// recorded (pages > 0; a profile passes 0: only lists' costs are measured), and end
// settles the job (nil: Complete). An answer that arrived is written, stop
// or not.
func (w *Workers) commit(ctx context.Context, j queue.Job, pages int, write func(context.Context, db.Tx, *db.Seq) error, end func(context.Context, db.Tx) error) error {
	ctx = context.WithoutCancel(ctx)
	return w.cfg.DB.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		if err := write(ctx, tx, seq); err != nil {
			return err
		}
		if err := seq.Save(ctx, tx); err != nil {
			return err
		}
		if pages > 0 {
			if err := queue.RecordCostTx(ctx, tx, j.Kind, pages); err != nil {
				return err
			}
		}
		if end != nil {
			return end(ctx, tx)
		}
		return w.cfg.Queue.CompleteTx(ctx, tx, j)
	})
}
