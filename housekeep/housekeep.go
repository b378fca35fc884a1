// Package housekeep keeps a long-running database small and healthy: it
// deletes payloads, events and finished jobs past their retention, and the
// superseded entries of the company change log, in small transactions that
// never stall ingestion, reclaims the space with an incremental vacuum, and
// checkpoints the WAL unless another program (Litestream) owns checkpoints.
// It owns no table: the deletions are ingest's, queue's, company's and db's
// (day counters), run at its pace.
package housekeep

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/queue"
)

// Config is the retention.* keys and the pace.
type Config struct {
	EventPayload, Events, JobsDone time.Duration
	Every                          time.Duration // retention pass interval (default 1m)
	CheckpointEvery                time.Duration // WAL checkpoint interval (default 30s)
	BatchRows                      int           // rows per delete transaction (default 2000)
	Now                            func() time.Time
	Logger                         *slog.Logger
	// ExternalCheckpoints: another program checkpoints (database.checkpoints
	// = "external"); the housekeeper never does.
	ExternalCheckpoints bool
}

// Housekeeper runs the passes.
type Housekeeper struct {
	db  *db.DB
	cfg Config
	// seqSeen is counters.change_seq at the last walk of the change log:
	// the entries appended since set the next walk's length.
	seqSeen int64
}

// New builds a housekeeper for d.
func New(d *db.DB, cfg Config) *Housekeeper {
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 30 * time.Second
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 2000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Housekeeper{db: d, cfg: cfg}
}

// Run loops until ctx is done.
func (h *Housekeeper) Run(ctx context.Context) {
	retain := time.NewTicker(h.cfg.Every)
	defer retain.Stop()
	var ckptC <-chan time.Time
	if !h.cfg.ExternalCheckpoints {
		ckpt := time.NewTicker(h.cfg.CheckpointEvery)
		defer ckpt.Stop()
		ckptC = ckpt.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-retain.C:
			if n, err := h.Retain(ctx); err != nil {
				h.cfg.Logger.Warn("retention pass failed", "err", err)
			} else if n > 0 {
				h.cfg.Logger.Info("retention pass", "rows_deleted", n)
			}
		case <-ckptC:
			if err := h.Checkpoint(ctx); err != nil {
				h.cfg.Logger.Warn("checkpoint failed", "err", err)
			}
		}
	}
}

// Retain deletes what is past retention, a batch per transaction, then
// vacuums incrementally. It returns the rows deleted. The statements are
// their tables' owners' (ingest, queue, db); the pace is this package's.
func (h *Housekeeper) Retain(ctx context.Context) (int64, error) {
	now := h.cfg.Now()
	steps := []struct {
		name   string
		del    func(ctx context.Context, tx db.Querier, before time.Time, limit int) (int64, error)
		cutoff time.Time
	}{
		{"event payloads", ingest.DeletePayloadsTx, now.Add(-h.cfg.EventPayload)},
		{"events", ingest.DeleteEventsTx, now.Add(-h.cfg.Events)},
		{"finished jobs", queue.DeleteDoneTx, now.Add(-h.cfg.JobsDone)},
		// Day counters (today's events, entries and exits) live as long
		// as the event rows.
		{"day counters", db.DeleteDayCountersTx, now.Add(-h.cfg.Events)},
	}
	var total int64
	for _, s := range steps {
		for {
			var n int64
			err := h.db.WriteTx(ctx, func(tx db.Tx) error {
				var err error
				n, err = s.del(ctx, tx, s.cutoff, h.cfg.BatchRows)
				return err
			})
			if err != nil {
				return total, fmt.Errorf("delete %s: %w", s.name, err)
			}
			total += n
			if n < int64(h.cfg.BatchRows) {
				break
			}
			if err := pause(ctx); err != nil {
				return total, err
			}
		}
	}
	n, err := h.PruneChanges(ctx)
	total += n
	if err != nil {
		return total, err
	}
	if total > 0 {
		if _, err := h.db.W.ExecContext(ctx, "PRAGMA incremental_vacuum(2000)"); err != nil {
			return total, fmt.Errorf("incremental vacuum: %w", err)
		}
	}
	return total, nil
}

// pause lets ingestion take the write lock between two batches.
func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Millisecond):
		return nil
	}
}

// walkFactor is how many log entries a pass looks at for each change_seq
// taken since the last pass (at most one entry each). A superseded entry is
// deleted within two walks of being superseded, and a walk of a log of L
// entries takes L/(walkFactor*A) passes when A entries are appended a pass,
// so at most 2*A*L/(walkFactor*A) = L/2 superseded entries wait: the log
// stays within twice the companies' count.
const walkFactor = 4

// maxWalkBatches caps a pass: a catch-up appends hundreds of thousands of
// entries a minute, most of them superseded only later, and walking four
// times that would take the write lock from the catch-up for seconds. 50
// batches of 2000 keep the log's bound up to about 400 changes a second
// sustained, far above the stream's.
const maxWalkBatches = 50

// PruneChanges goes on with the walk over the company change log
// (company_changes) that deletes its superseded entries, a batch per
// transaction. A pass looks at walkFactor entries for each change_seq taken
// since the last one, and at least the companies' count spread over a
// day's passes (a quiet stream still has the whole log walked daily) and
// one batch, at most maxWalkBatches batches. The walk's position is the counter
// company.CounterChangesPruned, so a restart resumes it; at the log's end
// the next pass starts again from its beginning. It returns the entries
// deleted.
func (h *Housekeeper) PruneChanges(ctx context.Context) (int64, error) {
	c, err := db.CountersNamed(ctx, h.db.R, "change_seq", company.CounterCompanies)
	if err != nil {
		return 0, fmt.Errorf("prune company changes: %w", err)
	}
	appended := c["change_seq"] - h.seqSeen
	if h.seqSeen == 0 || appended < 0 {
		appended = 0 // the first pass since the start: the floors below
	}
	h.seqSeen = c["change_seq"]
	passesPerDay := max(int64(24*time.Hour/h.cfg.Every), 1)
	batch := int64(h.cfg.BatchRows)
	budget := min(max(walkFactor*appended, c[company.CounterCompanies]/passesPerDay, batch), maxWalkBatches*batch)
	var total int64
	for walked := int64(0); walked < budget; walked += batch {
		var next, n int64
		err := h.db.WriteTx(ctx, func(tx db.Tx) error {
			pos, err := db.CountersNamed(ctx, tx, company.CounterChangesPruned)
			if err != nil {
				return err
			}
			from := pos[company.CounterChangesPruned]
			next, n, err = company.PruneChangesTx(ctx, tx, from, h.cfg.BatchRows)
			if err != nil {
				return err
			}
			return db.AddCounter(ctx, tx, company.CounterChangesPruned, next-from)
		})
		if err != nil {
			return total, fmt.Errorf("prune company changes: %w", err)
		}
		total += n
		if next == 0 { // the log's end: the next pass starts again
			break
		}
		if err := pause(ctx); err != nil {
			return total, err
		}
	}
	return total, nil
}

// Checkpoint copies the WAL back into the database without waiting for
// readers (PASSIVE), so the WAL stays bounded once readers leave. With
// ExternalCheckpoints it does nothing: a checkpoint Litestream did not run
// can race its replication.
func (h *Housekeeper) Checkpoint(ctx context.Context) error {
	if h.cfg.ExternalCheckpoints {
		return nil
	}
	_, err := h.db.W.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	return err
}
