// Package status is `chwatch status`, the operator's one screen: it gathers
// the service's state from the database alone (it runs as another process,
// often as another user, beside a writing `run`), decides the verdict with
// monitoring-plugin exit codes, and renders it for a human or as JSON.
// Everything it reads is a counter, a few rows or an index range bounded by
// the result, never a count over a big table: it answers in milliseconds on
// millions of rows (BenchmarkStatus).
package status

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/chwatch/chwatch/db"
)

// Verdict is a monitoring-plugin state; its value is the exit code.
type Verdict int

// Verdicts, in order of severity.
const (
	OK       Verdict = 0
	Warning  Verdict = 1
	Critical Verdict = 2
	Unknown  Verdict = 3
)

func (v Verdict) String() string {
	if v < OK || v > Unknown {
		return "UNKNOWN"
	}
	return [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}[v]
}

// MarshalText writes the verdict's name.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Service is what a running chwatch publishes in service_state every few
// seconds; run writes it, status reads it.
type Service struct {
	PID             int       `json:"pid,omitempty"`
	Version         string    `json:"version,omitempty"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	HeartbeatAt     time.Time `json:"heartbeat_at,omitzero"`
	StoppedAt       time.Time `json:"stopped_at,omitzero"`
	StreamState     string    `json:"stream_state,omitempty"` // connected | connecting | backoff | unauthorized | stalled | stopped
	StreamSince     time.Time `json:"stream_since,omitzero"`  // when StreamState began (connected: since; otherwise: down since)
	StreamError     string    `json:"stream_error,omitempty"`
	StreamURL       string    `json:"stream_url,omitempty"`
	Reconnects      int64     `json:"reconnects"`
	LagSeconds      float64   `json:"lag_seconds"`
	LastEventAt     time.Time `json:"last_event_at,omitzero"` // receive time of the latest event
	BreakerState    string    `json:"breaker_state,omitempty"`
	APIUnauthorized bool      `json:"api_unauthorized,omitempty"`
	APIBudget       int64     `json:"api_budget_remaining"` // -1 when no REST worker runs
	DiskFull        bool      `json:"disk_full,omitempty"`
	LastError       string    `json:"last_error,omitempty"`
	Sweep           string    `json:"sweep,omitempty"` // gap sweep progress
	RESTService
}

// KV renders the service state as service_state rows.
func (s Service) KV() map[string]string {
	t := func(x time.Time) string {
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(time.RFC3339Nano)
	}
	b := func(x bool) string {
		if x {
			return "1"
		}
		return "0"
	}
	m := map[string]string{
		"pid": strconv.Itoa(s.PID), "version": s.Version, "started_at": t(s.StartedAt),
		"heartbeat_at": t(s.HeartbeatAt), "stopped_at": t(s.StoppedAt),
		"stream_state": s.StreamState, "stream_since": t(s.StreamSince), "stream_error": s.StreamError,
		"stream_url": s.StreamURL, "stream_reconnects": strconv.FormatInt(s.Reconnects, 10),
		"stream_lag_seconds": strconv.FormatFloat(s.LagSeconds, 'f', 3, 64), "last_event_at": t(s.LastEventAt),
		"breaker_state": s.BreakerState, "api_unauthorized": b(s.APIUnauthorized),
		"api_budget_remaining": strconv.FormatInt(s.APIBudget, 10), "disk_full": b(s.DiskFull),
		"last_error": s.LastError, "sweep": s.Sweep,
	}
	s.RESTService.kv(m)
	return m
}

// ParseService reads service_state rows.
func ParseService(kv map[string]string) Service {
	t := func(k string) time.Time { x, _ := time.Parse(time.RFC3339Nano, kv[k]); return x }
	i := func(k string) int64 { n, _ := strconv.ParseInt(kv[k], 10, 64); return n }
	f, _ := strconv.ParseFloat(kv["stream_lag_seconds"], 64)
	svc := Service{
		PID: int(i("pid")), Version: kv["version"], StartedAt: t("started_at"), HeartbeatAt: t("heartbeat_at"),
		StoppedAt: t("stopped_at"), StreamState: kv["stream_state"], StreamSince: t("stream_since"),
		StreamError: kv["stream_error"], StreamURL: kv["stream_url"], Reconnects: i("stream_reconnects"),
		LagSeconds: f, LastEventAt: t("last_event_at"), BreakerState: kv["breaker_state"],
		APIUnauthorized: kv["api_unauthorized"] == "1", APIBudget: budgetRemaining(kv["api_budget_remaining"]),
		DiskFull: kv["disk_full"] == "1", LastError: kv["last_error"], Sweep: kv["sweep"],
	}
	svc.RESTService = parseREST(kv)
	return svc
}

// Thresholds are the status.* keys, where the free space beside the
// database comes from, and the configured REST budget.
type Thresholds struct {
	StaleAfter, DownWarn, DownCrit time.Duration
	// DiskFree returns the bytes an unprivileged user may still write on
	// the filesystem holding dir; nil asks statfs(2).
	DiskFree func(dir string) (int64, error)
	// RateLimit per RateWindow is api.rate_limit / api.rate_window: the
	// drain estimate's pace until the shared budget has the server's word
	// (zero: the defaults, 600 per 5m).
	RateLimit  int
	RateWindow time.Duration
}

// Transition is a recent status_changes row.
type Transition struct {
	Company    string `json:"company_number"`
	Name       string `json:"company_name"`
	Change     string `json:"change"`
	FirstSeen  bool   `json:"first_seen"`
	Source     string `json:"source"`
	SourceTime string `json:"source_time"`
}

// Gap is an unresolved stream gap.
type Gap struct {
	ID            int64  `json:"id"`
	FromTimepoint int64  `json:"from_timepoint"`
	ToTimepoint   int64  `json:"to_timepoint"`
	FromTime      string `json:"from_time"`
	ToTime        string `json:"to_time"`
	DetectedAt    string `json:"detected_at"`
}

// Database is the file and the disk it lives on.
type Database struct {
	Path          string `json:"path"`
	Bytes         int64  `json:"bytes"`
	WALBytes      int64  `json:"wal_bytes"`
	SchemaVersion int    `json:"schema_version"`
	FreeBytes     int64  `json:"disk_free_bytes"` // -1 when unknown
	// DiskFull: nothing can be written beside the database (almost no
	// bytes free, or the service's commits fail with SQLITE_FULL).
	DiskFull bool `json:"disk_full"`
}

// Cursor is where the stream resumes.
type Cursor struct {
	Timepoint   int64  `json:"timepoint"`
	URL         string `json:"url,omitempty"`
	PublishedAt string `json:"published_at,omitempty"`
	UpdatedAt   string `json:"updated_at,omitempty"`
}

// Today is the current UTC day's counts, from day counters kept in the
// same transactions as the rows.
type Today struct {
	Date    string           `json:"date"`    // YYYY-MM-DD, UTC
	Events  map[string]int64 `json:"events"`  // by outcome, by receive time
	Rejects int64            `json:"rejects"` // lines that were not events
	// Entered excludes first sightings (SPEC.md: the day a company first
	// seen in strike-off entered is unknown); FirstSeen counts them.
	Entered   int64 `json:"entered_strike_off"`
	FirstSeen int64 `json:"first_seen_in_strike_off"`
	Left      int64 `json:"left_strike_off"`
}

// Queue is the REST work waiting, in short; REST has it by kind.
type Queue struct {
	Pending int64 `json:"pending"`
	Dead    int64 `json:"dead"`
	// StatusChecks are pending REST status checks (hybrid exits, gap
	// sweeps, oversized lines): until they run, those companies keep
	// their stored status.
	StatusChecks int64 `json:"status_checks_pending"`
	Refused      int64 `json:"refused"`
}

// Report is everything status shows. Its JSON keys are a contract
// (TestJSONKeys): add, never rename.
type Report struct {
	Verdict  Verdict  `json:"verdict"`
	Reasons  []string `json:"reasons"`
	Now      string   `json:"now"`
	Database Database `json:"database"`
	Service  Service  `json:"service"`
	Running  bool     `json:"running"`
	// UptimeSeconds and HeartbeatAgeSeconds are now minus the service's
	// start and last heartbeat (0 when it never ran).
	UptimeSeconds       float64          `json:"uptime_seconds"`
	HeartbeatAgeSeconds float64          `json:"heartbeat_age_seconds"`
	Cursor              Cursor           `json:"cursor"`
	LastEventAgeSeconds float64          `json:"last_event_age_seconds"`
	Events              map[string]int64 `json:"events"` // by outcome, since the database began
	Rejects             int64            `json:"rejects"`
	Today               Today            `json:"today"`
	Companies           int64            `json:"companies"`
	StrikeOff           int64            `json:"strike_off"`
	// PSCs is the persons with significant control stored (the pscs
	// table's counter); PSCsSince is when enrich.pscs was turned on, ""
	// while it is off.
	PSCs         int64        `json:"pscs"`
	PSCsSince    string       `json:"pscs_since,omitempty"`
	EnteredToday int64        `json:"entered_today"` // Today.Entered
	LeftToday    int64        `json:"left_today"`    // Today.Left
	Recent       []Transition `json:"recent_transitions"`
	Gaps         []Gap        `json:"open_gaps"`
	Queue        Queue        `json:"queue"`
	REST         REST         `json:"rest"`
	Feed         []FeedSink   `json:"feed"` // the change feed's sinks; empty when none is configured
	Filings      Filings      `json:"filings"`

	now time.Time // Now, to the nanosecond, for the ages on the screen
}

// source is what each part of Gather reads: one read transaction, so every
// part sees the same snapshot, at one now.
type source struct {
	tx  *sql.Tx
	th  Thresholds
	now time.Time
}

// Gather reads the report from d (read pool only) at now.
func Gather(ctx context.Context, d *db.DB, th Thresholds, now time.Time) (*Report, error) {
	r := &Report{Events: map[string]int64{}, Now: db.FormatTime(now), now: now}
	r.Today = Today{Date: db.Day(now), Events: map[string]int64{}}
	r.readFiles(d.Path, th.DiskFree)
	tx, err := d.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read database %s: %w", d.Path, err)
	}
	defer tx.Rollback()
	v, err := db.Version(ctx, d.R)
	if err != nil {
		return nil, err
	}
	r.Database.SchemaVersion = v
	if v == 0 {
		r.Verdict, r.Reasons = Warning, []string{"never run: the database has no schema yet (run `chwatch migrate up` or `chwatch run`)"}
		return r, nil
	}
	if v > db.Latest() {
		return nil, fmt.Errorf("database %s is at schema version %d, newer than this chwatch knows (%d): %w", d.Path, v, db.Latest(), db.ErrSchemaTooNew)
	}
	src := source{tx: tx, th: th, now: now}
	for _, read := range []func(context.Context, source) error{
		r.readService, r.readTotals, r.readCursor, r.readToday, r.readRecent, r.readGaps, r.readQueue, r.readREST, r.readFeed, r.readFilings,
	} {
		if err := read(ctx, src); err != nil {
			return nil, err
		}
	}
	r.decide(th, now)
	return r, nil
}

func budgetRemaining(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
