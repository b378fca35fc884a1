package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Retention of the stream's log, for housekeep: each call deletes at most
// limit rows inside the caller's transaction, so a pass is many short
// transactions that never stall ingestion. Rows are visited in timepoint
// order from the oldest, which is receive order, a window of limit at a
// time: a call reads only what it deletes plus one window, and needs no
// index on received_at.

// DeletePayloadsTx deletes the raw JSON of events received before before.
func DeletePayloadsTx(ctx context.Context, tx db.Querier, before time.Time, limit int) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM event_payloads WHERE timepoint IN (
		SELECT p.timepoint FROM (SELECT stream, timepoint FROM event_payloads ORDER BY timepoint LIMIT ?2) p
		JOIN stream_events e USING (stream, timepoint) WHERE e.received_at < ?1)`, db.FormatTime(before), limit)
	if err != nil {
		return 0, fmt.Errorf("delete event payloads: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// DeleteEventsTx deletes the event rows received before before, and the
// payloads left without their event.
func DeleteEventsTx(ctx context.Context, tx db.Querier, before time.Time, limit int) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM stream_events WHERE (stream, timepoint) IN (
		SELECT stream, timepoint FROM (SELECT stream, timepoint, received_at FROM stream_events ORDER BY stream, timepoint LIMIT ?2)
		WHERE received_at < ?1)`, db.FormatTime(before), limit)
	if err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	n, _ := res.RowsAffected()
	// Payloads of deleted events cannot outlive them.
	_, err = tx.ExecContext(ctx, `DELETE FROM event_payloads WHERE NOT EXISTS (
		SELECT 1 FROM stream_events e WHERE e.stream = event_payloads.stream AND e.timepoint = event_payloads.timepoint)
		AND timepoint IN (SELECT timepoint FROM event_payloads ORDER BY timepoint LIMIT ?)`, limit)
	if err != nil {
		return n, fmt.Errorf("delete payloads of deleted events: %w", err)
	}
	return n, nil
}
