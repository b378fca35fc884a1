// Package ingest applies stream items to the database in group-committed
// batches: each event is recorded in stream_events, applied through the
// company transition rule and moves the cursor, all in one transaction, so a
// crash at any instant loses nothing and applies nothing twice.
//
// It owns the tables stream_events, event_payloads, stream_rejects and
// stream_cursor (their retention included); companies, jobs and gaps are
// written through their own packages.
package ingest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/gaps"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/stream"
)

// StreamName is the only stream chwatch consumes.
const StreamName = "companies"

// Counter names this package keeps in the counters table: running totals,
// and the same names as day counters (db.DayCounter) by the UTC day the
// lines arrived.
const (
	CounterEventsPrefix = "events_" // + an outcome: events recorded with it
	CounterRejects      = "rejects" // lines that were not events
)

// preloadChunk is how many events' companies are read in one query.
const preloadChunk = 200

// DefaultBatchMaxBytes bounds a batch's lines: about 1,500 typical events,
// and memory stays within a Raspberry Pi's budget even when events are large.
const DefaultBatchMaxBytes = 2 << 20

// DefaultStopTimeout is how long a stop waits for the batches in flight to
// commit. systemd's stop must not have to SIGKILL: the whole stop of `run`
// stays under 10 s.
const DefaultStopTimeout = 5 * time.Second

// ErrUncommitted is returned by Run when it stopped with a batch it could
// not commit within the stop timeout. Nothing is lost: the cursor did not
// move past the batch, so the next start fetches it again.
var ErrUncommitted = errors.New("batch left uncommitted")

// Config is what the processor needs.
type Config struct {
	BatchMaxEvents int
	BatchMaxWait   time.Duration
	// BatchMaxBytes also closes a batch, so memory stays bounded whatever
	// the size of the lines (default DefaultBatchMaxBytes).
	BatchMaxBytes int
	Applier       *company.Applier
	StreamURL     string // recorded with the cursor
	OnGap         string // "sweep" | "bulk"
	Now           func() time.Time
	After         func(time.Duration) <-chan time.Time // injectable batch timer
	// StopTimeout bounds the commits after ctx is done (default
	// DefaultStopTimeout).
	StopTimeout time.Duration
	Logger      *slog.Logger
	Metrics     *metrics.Set
}

// Processor applies items from the stream client.
type Processor struct {
	db  *db.DB
	cfg Config
	log *slog.Logger

	events      map[string]*metrics.Counter
	duplicates  *metrics.Counter
	rejects     *metrics.Counter
	batches     *metrics.Counter
	batchTime   *metrics.Histogram
	latency     *metrics.Summary
	transitions *company.Transitions
	commitFails *metrics.Counter

	// recorded is the highest timepoint in stream_events as of the last
	// commit; -1 until read. A timepoint above it cannot be
	// in the table, so its primary-key check is skipped.
	recorded int64
	// seen, events and payloads are batchResult's arrays, kept from one
	// batch to the next instead of grown again for each.
	seenBuf                []int64
	eventsBuf, payloadsBuf []any

	// afterGap is set once a gap committed and until an event after it
	// moves the cursor (they may fall in different batches).
	afterGap bool

	mu    sync.Mutex
	state State
}

// State is what the processor reports to run's heartbeat and /healthz.
type State struct {
	Timepoint   int64
	Events      int64 // events committed by this process (duplicates included)
	PublishedAt time.Time
	LastEventAt time.Time // receive time of the latest event
	Lag         time.Duration
	Writable    bool   // false while commits fail (disk full)
	LastError   string // the last commit failure
	DiskFull    bool
}

// New builds a processor writing to d.
func New(d *db.DB, cfg Config) *Processor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.BatchMaxEvents < 1 {
		cfg.BatchMaxEvents = 1
	}
	if cfg.BatchMaxBytes <= 0 {
		cfg.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	p := &Processor{db: d, cfg: cfg, log: cfg.Logger, recorded: -1, events: map[string]*metrics.Counter{}}
	m := cfg.Metrics
	for _, o := range []string{"applied", "unchanged", "stale", "deleted", "invalid", "duplicate"} {
		p.events[o] = m.NewCounter(`chwatch_stream_events_total{outcome="` + o + `"}`)
	}
	p.duplicates = p.events["duplicate"]
	p.rejects = m.NewCounter("chwatch_stream_rejects_total")
	p.batches = m.NewCounter("chwatch_apply_batches_total")
	p.commitFails = m.NewCounter("chwatch_apply_commit_failures_total")
	p.batchTime = m.NewHistogram("chwatch_apply_batch_seconds")
	// From an event's arrival to its commit: what "committed within
	// milliseconds" means to an operator.
	p.latency = m.NewSummaryExt("chwatch_apply_latency_seconds", 5*time.Minute, []float64{0.5, 0.9, 0.99, 1})
	// The Applier's, shared with the REST workers; its own when alone.
	if p.transitions = cfg.Applier.Transitions; p.transitions == nil {
		p.transitions = company.NewTransitions(m)
	}
	m.NewGauge("chwatch_stream_timepoint", func() float64 { return float64(p.State().Timepoint) })
	m.NewGauge("chwatch_stream_lag_seconds", func() float64 { return p.State().Lag.Seconds() })
	p.state.Writable = true
	return p
}

// State returns a snapshot of the processor's state.
func (p *Processor) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Cursor is the stored resume point.
type Cursor struct {
	Timepoint   int64
	URL         string
	PublishedAt time.Time
}

// LoadCursor reads the cursor (zero when none).
func LoadCursor(ctx context.Context, q db.Querier) (Cursor, error) {
	var c Cursor
	var pub sql.NullString
	err := q.QueryRowContext(ctx, "SELECT timepoint, url, published_at FROM stream_cursor WHERE stream = ?", StreamName).Scan(&c.Timepoint, &c.URL, &pub)
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{}, nil
	}
	if err != nil {
		return c, fmt.Errorf("read cursor: %w", err)
	}
	c.PublishedAt, _ = db.ParseTime(pub.String)
	return c, nil
}

// ResetCursor forgets the cursor and the event log of the stream it
// belonged to, so the next run starts live on another stream: that stream's
// timepoints mean something else, and old rows would pass its events off as
// duplicates. Companies, changes and jobs stay.
func ResetCursor(ctx context.Context, d *db.DB) error {
	return d.WriteTx(ctx, func(tx db.Tx) error {
		for _, q := range []string{
			"DELETE FROM stream_cursor WHERE stream = ?",
			"DELETE FROM event_payloads WHERE stream = ?",
			"DELETE FROM stream_events WHERE stream = ?",
		} {
			if _, err := tx.ExecContext(ctx, q, StreamName); err != nil {
				return fmt.Errorf("reset cursor: %w", err)
			}
		}
		return nil
	})
}

// Run applies items from in until in is closed. Commits that fail (a full
// disk) are retried with the same batch: the client blocks meanwhile, so
// nothing is lost, and the cursor holds. Once ctx is done (a stop), Run
// still commits what it was handed until in is closed, but for no longer
// than the stop timeout: a batch that cannot commit by then is left for the
// next start and Run returns an error wrapping ErrUncommitted.
func (p *Processor) Run(ctx context.Context, in <-chan stream.Item) error {
	// grace is ctx without its cancellation, ending StopTimeout after it.
	grace, endGrace := context.WithCancel(context.WithoutCancel(ctx))
	defer endGrace()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(p.cfg.StopTimeout, endGrace) })()
	batch := make([]stream.Item, 0, p.cfg.BatchMaxEvents)
	for {
		batch = batch[:0]
		var first stream.Item
		var ok bool
		select {
		case first, ok = <-in:
			if !ok {
				return nil
			}
		case <-grace.Done():
			return nil // nothing in hand; the client never closed in
		}
		batch = append(batch, first)
		size := itemBytes(first)
		timer := p.cfg.After(p.cfg.BatchMaxWait)
		closed := false
	fill:
		for len(batch) < p.cfg.BatchMaxEvents && size < p.cfg.BatchMaxBytes {
			var it stream.Item
			var ok bool
			// Items already waiting go in before the timer is looked at:
			// a select with both ready would pick at random.
			select {
			case it, ok = <-in:
			default:
				select {
				case it, ok = <-in:
				case <-timer:
					break fill
				case <-ctx.Done():
					break fill
				}
			}
			if !ok {
				closed = true
				break fill
			}
			batch = append(batch, it)
			size += itemBytes(it)
		}
		if err := p.commitRetrying(ctx, grace, batch); err != nil {
			return err
		}
		clear(batch) // drop the lines now, not when the slots are reused
		if closed {
			return nil
		}
	}
}

// itemBytes is what an item holds in memory, near enough.
func itemBytes(it stream.Item) int {
	if it.Event != nil {
		return len(it.Event.Raw) + 512
	}
	return 512
}

// commitRetrying commits batch, retrying on failure until it succeeds. The
// commits run under grace, not ctx: a batch in flight commits on a stop.
// A stop retries at once, then gives up when grace ends; the batch was never
// committed then, so the cursor did not move and the next start replays it.
func (p *Processor) commitRetrying(ctx, grace context.Context, batch []stream.Item) error {
	wait := 100 * time.Millisecond
	stopping := ctx.Done()
	var last error // why commits failed, not the stop that cut the last try short
	for {
		err := p.Commit(grace, batch)
		if err == nil {
			return nil
		}
		if grace.Err() == nil || last == nil {
			last = err
			p.commitFails.Inc()
			full := db.IsFull(err)
			p.mu.Lock()
			p.state.Writable, p.state.DiskFull, p.state.LastError = false, full, err.Error()
			p.mu.Unlock()
		}
		if grace.Err() != nil {
			p.log.Error("stopping with a batch that could not commit; the cursor did not move, the next start fetches it again", "items", len(batch), "err", last)
			return fmt.Errorf("stop after %s: %w: %d items could not commit (%v); the cursor did not move past them, so the next start fetches them again", p.cfg.StopTimeout, ErrUncommitted, len(batch), last)
		}
		full := db.IsFull(err)
		p.log.Error("commit batch failed; holding the cursor and retrying", "events", len(batch), "disk_full", full, "err", err, "retry_in", wait)
		select {
		case <-grace.Done():
		case <-stopping:
			stopping, wait = nil, 0 // a stop: one more try now, then the usual waits within grace
		case <-p.cfg.After(wait):
		}
		wait = min(max(wait*2, 100*time.Millisecond), 30*time.Second)
	}
}

// Commit applies one batch in one transaction, then publishes what it did
// (metrics, the state /healthz and the heartbeat read, the gaps' log
// lines): nothing is published for a batch that did not commit.
func (p *Processor) Commit(ctx context.Context, batch []stream.Item) error {
	start := time.Now()
	now := p.cfg.Now()
	var res *batchResult
	err := p.db.WriteTx(ctx, func(tx db.Tx) error {
		var err error
		res, err = p.apply(ctx, db.NewStmtCache(tx), batch, now)
		return err
	})
	if err != nil {
		return err
	}
	p.publish(res, start)
	return nil
}

// apply records and applies batch in tx, counts it and moves the cursor.
func (p *Processor) apply(ctx context.Context, tx db.Querier, batch []stream.Item, now time.Time) (*batchResult, error) {
	seq, err := db.BeginSeq(ctx, tx)
	if err != nil {
		return nil, err
	}
	res := &batchResult{outcomes: map[string]int64{}, changes: map[string]int64{}, recorded: p.recorded,
		seen: p.seenBuf[:0], events: p.eventsBuf[:0], payloads: p.payloadsBuf[:0]}
	defer func() {
		// Kept for the next batch: the arrays, not what they point to.
		clear(res.events)
		clear(res.payloads)
		p.seenBuf, p.eventsBuf, p.payloadsBuf = res.seen[:0], res.events[:0], res.payloads[:0]
	}()
	if res.recorded < 0 {
		var hi sql.NullInt64
		err := tx.QueryRowContext(ctx, "SELECT max(timepoint) FROM stream_events WHERE stream = ?", StreamName).Scan(&hi)
		if err != nil {
			return nil, fmt.Errorf("read the highest timepoint: %w", err)
		}
		res.recorded = hi.Int64
	}
	res.companies = p.cfg.Applier.Begin(tx, seq)
	if err := p.applyItems(ctx, tx, batch, now, res); err != nil {
		return nil, err
	}
	if err := res.companies.Flush(ctx); err != nil {
		return nil, err
	}
	if err := res.flush(ctx, tx); err != nil {
		return nil, err
	}
	for o, n := range res.outcomes {
		seq.Count(CounterEventsPrefix+o, n)
	}
	seq.Count(CounterRejects, res.rejects)
	for k, n := range res.daily {
		seq.Count(db.DayCounter(k[0], k[1]), n)
	}
	if err := seq.Save(ctx, tx); err != nil {
		return nil, err
	}
	return res, p.moveCursor(ctx, tx, res, now)
}

// applyItems applies each item of batch in turn, reading each chunk's
// companies with one query just before applying them, while their pages
// are still in the small cache.
func (p *Processor) applyItems(ctx context.Context, tx db.Querier, batch []stream.Item, now time.Time, res *batchResult) error {
	for i, it := range batch {
		if i%preloadChunk == 0 {
			var numbers []string
			for _, next := range batch[i:min(i+preloadChunk, len(batch))] {
				if next.Event != nil && next.Event.ResourceID != "" {
					numbers = append(numbers, next.Event.ResourceID)
				}
			}
			if err := res.companies.Preload(ctx, numbers); err != nil {
				return err
			}
		}
		switch {
		case it.Event != nil:
			if err := p.applyEvent(ctx, tx, it.Event, now, res); err != nil {
				return err
			}
		case it.Reject != nil:
			if err := p.reject(ctx, tx, it.Reject, now, res); err != nil {
				return err
			}
		case it.Gap != nil:
			res.gap()
			// The sweep reads companies: write the new ones first.
			if err := res.companies.Flush(ctx); err != nil {
				return err
			}
			if err := p.recordGap(ctx, tx, it.Gap, now); err != nil {
				return err
			}
			res.gaps = append(res.gaps, it.Gap)
		}
	}
	return nil
}

// moveCursor moves the cursor to the batch's cursorTP. The cursor only
// moves forward, except to the first events after a gap: the stream went on
// from there, even when that is below a cursor no resume could follow (set
// by a corrupt timepoint before they were rejected).
func (p *Processor) moveCursor(ctx context.Context, tx db.Querier, res *batchResult, now time.Time) error {
	if res.cursorTP <= 0 {
		return nil
	}
	res.reset = res.afterGap || (p.afterGap && !res.gapped)
	_, err := tx.ExecContext(ctx, `INSERT INTO stream_cursor (stream, timepoint, url, published_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (stream) DO UPDATE SET timepoint = excluded.timepoint, url = excluded.url,
		published_at = coalesce(excluded.published_at, published_at), updated_at = excluded.updated_at
		WHERE excluded.timepoint > stream_cursor.timepoint OR ?`,
		StreamName, res.cursorTP, p.cfg.StreamURL, db.NullTime(res.cursorPub), db.FormatTime(now), res.reset)
	if err != nil {
		return fmt.Errorf("move cursor to %d: %w", res.cursorTP, err)
	}
	return nil
}

// publish tells metrics, the state and the log what a committed batch did.
func (p *Processor) publish(res *batchResult, start time.Time) {
	p.recorded = max(res.recorded, res.maxTP)
	switch {
	case res.gapped && !res.afterGap:
		p.afterGap = true // the gap's first event is in the next batch
	case res.cursorTP > 0:
		p.afterGap = false
	}
	p.batches.Inc()
	p.batchTime.UpdateDuration(start)
	if !res.firstRecv.IsZero() {
		p.latency.UpdateDuration(res.firstRecv)
	}
	for o, n := range res.outcomes {
		p.events[o].AddInt64(n)
	}
	p.duplicates.AddInt64(res.duplicates)
	p.rejects.AddInt64(res.rejects)
	for c, n := range res.changes {
		p.transitions.Add(c, n)
	}
	p.mu.Lock()
	p.state.Events += res.duplicates
	for _, n := range res.outcomes {
		p.state.Events += n
	}
	if res.cursorTP > p.state.Timepoint || (res.cursorTP > 0 && res.reset) {
		p.state.Timepoint, p.state.PublishedAt = res.cursorTP, res.cursorPub
	}
	if !res.lastRecv.IsZero() {
		p.state.LastEventAt = res.lastRecv
		p.state.Lag = res.lastLag
	}
	p.state.Writable, p.state.DiskFull, p.state.LastError = true, false, ""
	p.mu.Unlock()
	// The alert comes from the open gap itself (package ops), raised until
	// it is resolved.
	for _, g := range res.gaps {
		p.log.Warn(fmt.Sprintf("stream gap: timepoints %d to %d could not be replayed (%s); on_gap=%s", g.FromTimepoint, g.ToTimepoint, g.Reason, p.cfg.OnGap))
	}
}

type batchResult struct {
	companies  *company.Batch // the batch's companies
	seen       []int64        // timepoints recorded in this batch, sorted
	events     []any          // stream_events rows not inserted yet, 7 values each
	payloads   []any          // event_payloads rows not inserted yet, 2 values each
	recorded   int64          // the cursor before this batch
	outcomes   map[string]int64
	changes    map[string]int64
	duplicates int64
	rejects    int64
	maxTP      int64 // the highest timepoint recorded in this batch
	// cursorTP is where the batch moves the cursor: its highest timepoint,
	// or after a gap the highest one after it. afterGap says an event
	// followed the batch's gap.
	cursorTP  int64
	cursorPub time.Time
	gapped    bool
	afterGap  bool
	reset     bool          // the cursor may move down: see moveCursor
	gaps      []*stream.Gap // recorded, logged once committed
	firstRecv time.Time     // arrival of the batch's first event
	lastRecv  time.Time
	lastLag   time.Duration
	// daily counts the batch's events by outcome and its rejects, by
	// the UTC day they arrived: {day, counter name} (db.DayCounter).
	daily    map[[2]string]int64
	day      string    // the day of dayStart
	dayStart time.Time // the UTC midnight starting day
}

// countDay adds one to name's day counter for the day of t (now when t is
// zero).
func (r *batchResult) countDay(t, now time.Time, name string) {
	if t.IsZero() {
		t = now
	}
	if r.day == "" || t.Before(r.dayStart) || !t.Before(r.dayStart.Add(24*time.Hour)) {
		r.dayStart = t.UTC().Truncate(24 * time.Hour)
		r.day = db.Day(r.dayStart)
	}
	if r.daily == nil {
		r.daily = map[[2]string]int64{}
	}
	r.daily[[2]string{r.day, name}]++
}

// flush inserts the event rows and payloads not inserted yet, many rows
// per statement. The stream's name is in the statement, not bound: fewer
// values to bind per event.
func (r *batchResult) flush(ctx context.Context, tx db.Querier) error {
	if err := insertRows(ctx, tx, "INSERT INTO stream_events (stream, timepoint, resource_id, event_type, published_at, received_at, outcome, reason) VALUES ", "('"+StreamName+"',", 7, r.events); err != nil {
		return fmt.Errorf("record events: %w", err)
	}
	if err := insertRows(ctx, tx, "INSERT INTO event_payloads (stream, timepoint, payload) VALUES ", "('"+StreamName+"',", 2, r.payloads); err != nil {
		return fmt.Errorf("store payloads: %w", err)
	}
	clear(r.events)
	clear(r.payloads)
	r.events, r.payloads = r.events[:0], r.payloads[:0]
	return nil
}

// rowsPerInsert is the event rows per INSERT: few enough that the
// per-statement arrays database/sql and the driver build over the values
// stay small objects (see company.rowsPerInsert).
const rowsPerInsert = 50

// insertRows runs insert ("INSERT INTO t (cols) VALUES ") with vals, cols
// values a row after open ("(" and any literal values), many rows per
// statement.
func insertRows(ctx context.Context, tx db.Querier, insert, open string, cols int, vals []any) error {
	for len(vals) > 0 {
		n := min(len(vals)/cols, rowsPerInsert)
		row := open + strings.Repeat("?,", cols-1) + "?)"
		q := insert + strings.Repeat(row+",", n-1) + row
		if _, err := tx.ExecContext(ctx, q, vals[:n*cols]...); err != nil {
			return err
		}
		vals = vals[n*cols:]
	}
	return nil
}

func (r *batchResult) saw(tp int64, pub, recv time.Time) {
	r.maxTP = max(r.maxTP, tp)
	if tp > r.cursorTP {
		r.cursorTP, r.cursorPub = tp, pub
	}
	r.afterGap = r.gapped

	if !recv.IsZero() && !pub.IsZero() {
		r.lastRecv, r.lastLag = recv, recv.Sub(pub)
	}
	if r.firstRecv.IsZero() {
		r.firstRecv = recv
	}
}

// gap starts the cursor afresh: the events after it are where the stream
// went on.
func (r *batchResult) gap() {
	r.gapped, r.afterGap = true, false
	r.cursorTP, r.cursorPub = 0, time.Time{}
}

// applyEvent records one event and applies it. A timepoint already in
// stream_events is a duplicate: counted, nothing written.
func (p *Processor) applyEvent(ctx context.Context, tx db.Querier, ev *stream.Event, now time.Time, res *batchResult) error {
	if _, dup := slices.BinarySearch(res.seen, ev.Timepoint); dup {
		res.duplicates++
		return nil
	}
	if ev.Timepoint <= max(res.recorded, res.maxTP) {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM stream_events WHERE stream = ? AND timepoint = ?", StreamName, ev.Timepoint).Scan(&one)
		if err == nil {
			res.duplicates++
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check timepoint %d: %w", ev.Timepoint, err)
		}
	}
	outcome, reason := "", ev.Invalid
	if reason == "" {
		in, err := toVersion(ev)
		if err != nil {
			reason = err.Error()
		} else {
			d, err := res.companies.Apply(ctx, in, now)
			if err != nil {
				return fmt.Errorf("apply timepoint %d: %w", ev.Timepoint, err)
			}
			outcome = string(d.Outcome)
			if d.Change != "" {
				res.changes[d.Change]++
			}
			switch {
			case d.Change == company.EnteredStrikeOff || d.Change == company.LeftStrikeOff:
				p.log.Info(strings.ReplaceAll(d.Change, "_", " "), "company", in.Number, "name", d.Write.Name, "first_seen", d.FirstSeen, "timepoint", ev.Timepoint)
			case d.QueueStatusCheck:
				p.log.Info("strike-off company's event lacks the detail: status check queued", "company", in.Number, "timepoint", ev.Timepoint)
			}
			if d.OfficersRefused {
				p.log.Warn("officers fetch refused: the queue is past queue.max_depth (counted in status as refused)", "company", in.Number, "timepoint", ev.Timepoint)
			}
		}
	}
	if reason != "" {
		outcome = "invalid"
		p.log.Warn("invalid event recorded and skipped", "timepoint", ev.Timepoint, "reason", reason)
	}
	tp := any(ev.Timepoint) // boxed once for both rows
	res.events = append(res.events, tp, db.NullString(ev.ResourceID), db.NullString(ev.Type), db.NullTime(ev.PublishedAt), db.FormatTime(ev.ReceivedAt), outcomeValue(outcome), db.NullString(reason))
	if len(ev.Raw) > 0 {
		// Raw is never written after decoding: share its bytes rather
		// than copy a few kilobytes per event (the driver copies them
		// into SQLite anyway).
		res.payloads = append(res.payloads, tp, unsafe.String(unsafe.SliceData(ev.Raw), len(ev.Raw)))
	}
	if len(res.events) >= rowsPerInsert*7 {
		// A statement's worth: insert it now, so the batch holds one
		// statement of rows, not thousands.
		if err := res.flush(ctx, tx); err != nil {
			return err
		}
	}
	// Timepoints mostly arrive in order: appending keeps the list sorted.
	if i, _ := slices.BinarySearch(res.seen, ev.Timepoint); i == len(res.seen) {
		res.seen = append(res.seen, ev.Timepoint)
	} else {
		res.seen = slices.Insert(res.seen, i, ev.Timepoint)
	}
	res.outcomes[outcome]++
	res.countDay(ev.ReceivedAt, now, CounterEventsPrefix+outcome)
	res.saw(ev.Timepoint, ev.PublishedAt, ev.ReceivedAt)
	p.checkZone(ev)
	return nil
}

// outcomeValue is outcome as a column value: a constant in an interface
// is not allocated, a string variable is, for every event.
func outcomeValue(outcome string) any {
	switch outcome {
	case string(company.Applied):
		return string(company.Applied)
	case string(company.Unchanged):
		return string(company.Unchanged)
	case string(company.Stale):
		return string(company.Stale)
	case string(company.Deleted):
		return string(company.Deleted)
	case "invalid":
		return "invalid"
	}
	return outcome
}

// toVersion turns an event into the company version it describes.
func toVersion(ev *stream.Event) (company.Version, error) {
	switch ev.Type {
	case "deleted":
		if ev.ResourceID == "" {
			return company.Version{}, fmt.Errorf("deleted event without resource_id")
		}
		return company.Version{Number: ev.ResourceID, Deleted: true, Source: company.Stream, SourceTime: ev.PublishedAt, Timepoint: ev.Timepoint}, nil
	case "changed":
		v, err := company.ParseProfile(ev.Data, company.Stream, ev.PublishedAt)
		if err != nil {
			return v, err
		}
		if ev.ResourceID != "" && ev.ResourceID != v.Number {
			return v, fmt.Errorf("resource_id %q differs from data.company_number %q", ev.ResourceID, v.Number)
		}
		v.Timepoint = ev.Timepoint
		return v, nil
	}
	return company.Version{}, fmt.Errorf("unknown event type %q", ev.Type)
}

// reject records a line that is not an event. Such a line never counts as
// an event and never moves the cursor, even when its timepoint could be
// recovered from its tail (SPEC.md: it carries no usable timepoint). When
// the company it was about can be read from its head, a REST status check is
// queued, so a change carried only by an oversized line is not lost.
func (p *Processor) reject(ctx context.Context, tx db.Querier, r *stream.Reject, now time.Time, res *batchResult) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO stream_rejects (stream, received_at, reason, bytes, excerpt, timepoint) VALUES (?, ?, ?, ?, ?, ?)`,
		StreamName, db.FormatTime(r.ReceivedAt), r.Reason, r.Bytes, r.Excerpt, db.NullInt(r.Timepoint))
	if err != nil {
		return fmt.Errorf("record rejected line: %w", err)
	}
	res.rejects++
	res.countDay(r.ReceivedAt, now, CounterRejects)
	number := resourceID(r.Excerpt)
	attrs := []any{"reason", r.Reason, "bytes", r.Bytes, "timepoint", r.Timepoint, "company", number}
	if r.After > 0 {
		attrs = append(attrs, "after_timepoint", r.After)
	}
	p.log.Warn("rejected stream line", attrs...)
	if number != "" {
		if _, err := queue.EnqueueTx(ctx, tx, queue.StatusCheck, number, now, 0); err != nil {
			return err
		}
	}
	return nil
}

// resourceID finds "resource_id":"X" in a line's head.
func resourceID(head []byte) string {
	s := string(head)
	i := strings.Index(s, `"resource_id":"`)
	if i < 0 {
		return ""
	}
	s = s[i+len(`"resource_id":"`):]
	j := strings.IndexByte(s, '"')
	if j < 0 || j > 16 {
		return ""
	}
	return s[:j]
}

// recordGap writes a gap and, with on_gap = sweep, queues a sweep check for
// every company in strike-off, in the same transaction.
func (p *Processor) recordGap(ctx context.Context, tx db.Querier, g *stream.Gap, now time.Time) error {
	if _, err := gaps.RecordTx(ctx, tx, StreamName, g.FromTimepoint, g.ToTimepoint, g.FromTime, g.ToTime, now, g.Reason); err != nil {
		return err
	}
	if p.cfg.OnGap != "sweep" {
		return nil
	}
	n, err := queue.EnqueueSweepTx(ctx, tx, now)
	if err != nil {
		return err
	}
	p.log.Warn("gap sweep queued", "companies", n)
	return nil
}

// checkZone logs when published_at and the receive time disagree by about
// an hour: published_at carries no zone and treating it as UTC is an
// inference (it would be UK local time in summer).
func (p *Processor) checkZone(ev *stream.Event) {
	if ev.PublishedAt.IsZero() || ev.ReceivedAt.IsZero() {
		return
	}
	d := ev.ReceivedAt.Sub(ev.PublishedAt)
	if d < 0 {
		d = -d
	}
	if d > 55*time.Minute && d < 65*time.Minute {
		p.log.Warn("published_at is about an hour from the receive time: is it UK local time rather than UTC?", "timepoint", ev.Timepoint, "published_at", ev.PublishedAt, "received_at", ev.ReceivedAt)
	}
}
