// Package housekeep keeps a long-running database small and healthy: it
// deletes payloads, events and finished jobs past their retention in small
// transactions that never stall ingestion, reclaims the space with an
// incremental vacuum, and checkpoints the WAL unless another program
// (Litestream) owns checkpoints.
package housekeep

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/chwatch/chwatch/db"
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
// vacuums incrementally. It returns the rows deleted.
func (h *Housekeeper) Retain(ctx context.Context) (int64, error) {
	now := h.cfg.Now()
	// Payloads and events are visited in timepoint order from the oldest,
	// which is receive order, a window of BatchRows at a time: a pass reads
	// only what it deletes plus one window, and needs no index on
	// received_at. Done jobs use the jobs_state index (state, updated_at).
	steps := []struct {
		name, sql string
		cutoff    time.Time
	}{
		{"event payloads", `DELETE FROM event_payloads WHERE rowid IN (
			SELECT p.rowid FROM (SELECT rowid, stream, timepoint FROM event_payloads ORDER BY stream, timepoint LIMIT ?2) p
			JOIN stream_events e USING (stream, timepoint) WHERE e.received_at < ?1)`, now.Add(-h.cfg.EventPayload)},
		{"events", `DELETE FROM stream_events WHERE (stream, timepoint) IN (
			SELECT stream, timepoint FROM (SELECT stream, timepoint, received_at FROM stream_events ORDER BY stream, timepoint LIMIT ?2)
			WHERE received_at < ?1)`, now.Add(-h.cfg.Events)},
		{"finished jobs", `DELETE FROM jobs WHERE id IN (
			SELECT id FROM jobs WHERE state = 'done' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)`, now.Add(-h.cfg.JobsDone)},
	}
	var total int64
	for _, s := range steps {
		for {
			var n int64
			err := h.db.WriteTx(ctx, func(tx db.Tx) error {
				res, err := tx.ExecContext(ctx, s.sql, db.FormatTime(s.cutoff), h.cfg.BatchRows)
				if err != nil {
					return err
				}
				n, _ = res.RowsAffected()
				if s.name == "events" {
					// Payloads of deleted events cannot outlive them.
					_, err = tx.ExecContext(ctx, `DELETE FROM event_payloads WHERE NOT EXISTS (
						SELECT 1 FROM stream_events e WHERE e.stream = event_payloads.stream AND e.timepoint = event_payloads.timepoint)
						AND rowid IN (SELECT rowid FROM event_payloads ORDER BY stream, timepoint LIMIT ?)`, h.cfg.BatchRows)
				}
				return err
			})
			if err != nil {
				return total, fmt.Errorf("delete %s: %w", s.name, err)
			}
			total += n
			if n < int64(h.cfg.BatchRows) {
				break
			}
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(10 * time.Millisecond): // let ingestion take the lock between batches
			}
		}
	}
	if total > 0 {
		if _, err := h.db.W.ExecContext(ctx, "PRAGMA incremental_vacuum(2000)"); err != nil {
			return total, fmt.Errorf("incremental vacuum: %w", err)
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
