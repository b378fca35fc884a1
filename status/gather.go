package status

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/gaps"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/queue"
)

// The parts of Gather, in screen order. Each reads what it shows and
// nothing more; none counts rows of a big table.

// readFiles: the database's size, its WAL's, and the free space beside
// them, from the file system.
func (r *Report) readFiles(path string, diskFree func(string) (int64, error)) {
	r.Database.Path = path
	if st, err := os.Stat(path); err == nil {
		r.Database.Bytes = st.Size()
	}
	if st, err := os.Stat(path + "-wal"); err == nil {
		r.Database.WALBytes = st.Size()
	}
	r.Database.FreeBytes = freeBytes(path, diskFree)
}

// readService: what the running service last published in service_state.
func (r *Report) readService(ctx context.Context, s source) error {
	kv, err := db.State(ctx, s.tx)
	if err != nil {
		return err
	}
	r.Service = ParseService(kv)
	r.PSCsSince = kv[db.StatePSCsSince]
	if sv := r.Service; !sv.HeartbeatAt.IsZero() {
		r.HeartbeatAgeSeconds = s.now.Sub(sv.HeartbeatAt).Seconds()
		if !sv.StartedAt.IsZero() {
			r.UptimeSeconds = s.now.Sub(sv.StartedAt).Seconds()
		}
	}
	if !r.Service.LastEventAt.IsZero() {
		r.LastEventAgeSeconds = s.now.Sub(r.Service.LastEventAt).Seconds()
	}
	return nil
}

// readTotals: the running totals, each a counter.
func (r *Report) readTotals(ctx context.Context, s source) error {
	events, err := db.CountersPrefix(ctx, s.tx, ingest.CounterEventsPrefix)
	if err != nil {
		return err
	}
	for o, n := range events {
		r.Events[o] = n
	}
	c, err := db.CountersNamed(ctx, s.tx, ingest.CounterRejects, company.CounterCompanies, company.CounterStrikeOff, company.CounterPSCs,
		queue.CounterPending, queue.CounterRefused)
	if err != nil {
		return err
	}
	r.Rejects, r.Companies, r.StrikeOff = c[ingest.CounterRejects], c[company.CounterCompanies], c[company.CounterStrikeOff]
	r.PSCs = c[company.CounterPSCs]
	r.Queue.Pending, r.Queue.Refused = c[queue.CounterPending], c[queue.CounterRefused]
	return nil
}

// readCursor: the stream cursor, one row.
func (r *Report) readCursor(ctx context.Context, s source) error {
	var url, pub, upd sql.NullString
	err := s.tx.QueryRowContext(ctx, "SELECT timepoint, url, published_at, updated_at FROM stream_cursor WHERE stream = ?", ingest.StreamName).
		Scan(&r.Cursor.Timepoint, &url, &pub, &upd)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read cursor: %w", err)
	}
	r.Cursor.URL, r.Cursor.PublishedAt, r.Cursor.UpdatedAt = url.String, pub.String, upd.String
	return nil
}

// readToday: the current UTC day's counters.
func (r *Report) readToday(ctx context.Context, s source) error {
	c, err := db.DayCounters(ctx, s.tx, r.Today.Date)
	if err != nil {
		return err
	}
	for name, n := range c {
		switch name {
		case ingest.CounterRejects:
			r.Today.Rejects = n
		case company.DayEntered:
			r.Today.Entered = n
		case company.DayFirstSeen:
			r.Today.FirstSeen = n
		case company.DayLeft:
			r.Today.Left = n
		default:
			if o, ok := strings.CutPrefix(name, ingest.CounterEventsPrefix); ok {
				r.Today.Events[o] = n
			}
		}
	}
	r.EnteredToday, r.LeftToday = r.Today.Entered, r.Today.Left
	return nil
}

// recentTransitions is how many strike-off transitions the screen lists.
const recentTransitions = 5

// readRecent: the last few strike-off transitions, walking status_changes
// back from its newest row (entries and exits are a good share of its
// rows, so the walk is short).
func (r *Report) readRecent(ctx context.Context, s source) error {
	rows, err := s.tx.QueryContext(ctx, `SELECT s.company_number, coalesce(c.company_name, ''), s.change, s.first_seen, s.source, s.source_time
		FROM status_changes s LEFT JOIN companies c USING (company_number)
		WHERE s.change != 'status_changed' ORDER BY s.id DESC LIMIT ?`, recentTransitions)
	if err != nil {
		return fmt.Errorf("read recent transitions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t Transition
		if err := rows.Scan(&t.Company, &t.Name, &t.Change, &t.FirstSeen, &t.Source, &t.SourceTime); err != nil {
			return fmt.Errorf("read recent transitions: %w", err)
		}
		r.Recent = append(r.Recent, t)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read recent transitions: %w", err)
	}
	return nil
}

// readGaps: the unresolved gaps, from their partial index.
func (r *Report) readGaps(ctx context.Context, s source) error {
	open, err := gaps.OpenGaps(ctx, s.tx)
	if err != nil {
		return err
	}
	for _, g := range open {
		r.Gaps = append(r.Gaps, Gap{ID: g.ID, FromTimepoint: g.FromTimepoint, ToTimepoint: g.ToTimepoint, FromTime: g.FromTime, ToTime: g.ToTime, DetectedAt: g.DetectedAt})
	}
	return nil
}

// readQueue: the queue in short, from the job counters (REST has them by
// kind).
func (r *Report) readQueue(ctx context.Context, s source) error {
	depths, err := queue.Depths(ctx, s.tx)
	if err != nil {
		return err
	}
	checks := []queue.Kind{queue.StatusCheck, queue.SweepCheck}
	r.Queue.StatusChecks = depths.Sum(queue.StateQueued, checks...) + depths.Sum(queue.StateRunning, checks...)
	r.Queue.Dead = depths.Sum(queue.StateDead)
	r.REST.Jobs = depths
	return nil
}

// freeBytes is what source (statfs when nil) says is free beside the
// database at path, or -1 when it cannot tell.
func freeBytes(path string, source func(dir string) (int64, error)) int64 {
	if source == nil {
		source = db.FreeBytes
	}
	n, err := source(dirOf(path))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func dirOf(path string) string { return filepath.Dir(path) }
