// Package status gathers what `chwatch status` reports from the database
// alone (it runs as another process, often as another user) and decides the
// verdict, with monitoring-plugin exit codes.
package status

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/gaps"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/queue"
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
	return map[string]string{
		"pid": strconv.Itoa(s.PID), "version": s.Version, "started_at": t(s.StartedAt),
		"heartbeat_at": t(s.HeartbeatAt), "stopped_at": t(s.StoppedAt),
		"stream_state": s.StreamState, "stream_since": t(s.StreamSince), "stream_error": s.StreamError,
		"stream_url": s.StreamURL, "stream_reconnects": strconv.FormatInt(s.Reconnects, 10),
		"stream_lag_seconds": strconv.FormatFloat(s.LagSeconds, 'f', 3, 64), "last_event_at": t(s.LastEventAt),
		"breaker_state": s.BreakerState, "api_unauthorized": b(s.APIUnauthorized),
		"api_budget_remaining": strconv.FormatInt(s.APIBudget, 10), "disk_full": b(s.DiskFull),
		"last_error": s.LastError, "sweep": s.Sweep,
	}
}

// ParseService reads service_state rows.
func ParseService(kv map[string]string) Service {
	t := func(k string) time.Time { x, _ := time.Parse(time.RFC3339Nano, kv[k]); return x }
	i := func(k string) int64 { n, _ := strconv.ParseInt(kv[k], 10, 64); return n }
	f, _ := strconv.ParseFloat(kv["stream_lag_seconds"], 64)
	return Service{
		PID: int(i("pid")), Version: kv["version"], StartedAt: t("started_at"), HeartbeatAt: t("heartbeat_at"),
		StoppedAt: t("stopped_at"), StreamState: kv["stream_state"], StreamSince: t("stream_since"),
		StreamError: kv["stream_error"], StreamURL: kv["stream_url"], Reconnects: i("stream_reconnects"),
		LagSeconds: f, LastEventAt: t("last_event_at"), BreakerState: kv["breaker_state"],
		APIUnauthorized: kv["api_unauthorized"] == "1", APIBudget: budget(kv["api_budget_remaining"]),
		DiskFull: kv["disk_full"] == "1", LastError: kv["last_error"], Sweep: kv["sweep"],
	}
}

// Thresholds are the status.* keys, and where the free space beside the
// database comes from.
type Thresholds struct {
	StaleAfter, DownWarn, DownCrit time.Duration
	// DiskFree returns the bytes an unprivileged user may still write on
	// the filesystem holding dir; nil asks statfs(2).
	DiskFree func(dir string) (int64, error)
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

// Report is everything status shows.
type Report struct {
	Verdict  Verdict  `json:"verdict"`
	Reasons  []string `json:"reasons"`
	Now      string   `json:"now"`
	Database struct {
		Path          string `json:"path"`
		Bytes         int64  `json:"bytes"`
		WALBytes      int64  `json:"wal_bytes"`
		SchemaVersion int    `json:"schema_version"`
		FreeBytes     int64  `json:"disk_free_bytes"` // -1 when unknown
		// DiskFull: nothing can be written beside the database (almost no
		// bytes free, or the service's commits fail with SQLITE_FULL).
		DiskFull bool `json:"disk_full"`
	} `json:"database"`
	Service Service `json:"service"`
	Running bool    `json:"running"`
	Cursor  struct {
		Timepoint   int64  `json:"timepoint"`
		URL         string `json:"url,omitempty"`
		PublishedAt string `json:"published_at,omitempty"`
		UpdatedAt   string `json:"updated_at,omitempty"`
	} `json:"cursor"`
	LastEventAgeSeconds float64          `json:"last_event_age_seconds"`
	Events              map[string]int64 `json:"events"`
	Rejects             int64            `json:"rejects"`
	Companies           int64            `json:"companies"`
	StrikeOff           int64            `json:"strike_off"`
	EnteredToday        int64            `json:"entered_today"`
	LeftToday           int64            `json:"left_today"`
	Recent              []Transition     `json:"recent_transitions"`
	Gaps                []Gap            `json:"open_gaps"`
	Queue               struct {
		Pending int64 `json:"pending"`
		Dead    int64 `json:"dead"`
		// StatusChecks are pending REST status checks (hybrid exits, gap
		// sweeps, oversized lines): until they run, those companies keep
		// their stored status.
		StatusChecks int64 `json:"status_checks_pending"`
		Refused      int64 `json:"refused"`
	} `json:"queue"`
}

// Gather reads the report from d (read pool only) at now.
func Gather(ctx context.Context, d *db.DB, th Thresholds, now time.Time) (*Report, error) {
	r := &Report{Events: map[string]int64{}, Now: db.FormatTime(now)}
	r.Database.Path = d.Path
	if st, err := os.Stat(d.Path); err == nil {
		r.Database.Bytes = st.Size()
	}
	if st, err := os.Stat(d.Path + "-wal"); err == nil {
		r.Database.WALBytes = st.Size()
	}
	r.Database.FreeBytes = freeBytes(d.Path, th.DiskFree)
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
	kv, err := db.State(ctx, tx)
	if err != nil {
		return nil, err
	}
	r.Service = ParseService(kv)
	counters, err := db.Counters(ctx, tx)
	if err != nil {
		return nil, err
	}
	for k, n := range counters {
		if o, ok := strings.CutPrefix(k, ingest.CounterEventsPrefix); ok {
			r.Events[o] = n
		}
	}
	r.Rejects, r.Companies, r.StrikeOff = counters[ingest.CounterRejects], counters[company.CounterCompanies], counters[company.CounterStrikeOff]
	r.Queue.Pending, r.Queue.Refused = counters[queue.CounterPending], counters[queue.CounterRefused]

	var url, pub, upd sql.NullString
	err = tx.QueryRowContext(ctx, "SELECT timepoint, url, published_at, updated_at FROM stream_cursor WHERE stream = 'companies'").
		Scan(&r.Cursor.Timepoint, &url, &pub, &upd)
	if err != nil && err != sql.ErrNoRows {
		return nil, fmt.Errorf("read cursor: %w", err)
	}
	r.Cursor.URL, r.Cursor.PublishedAt, r.Cursor.UpdatedAt = url.String, pub.String, upd.String
	if !r.Service.LastEventAt.IsZero() {
		r.LastEventAgeSeconds = now.Sub(r.Service.LastEventAt).Seconds()
	}

	midnight := db.FormatTime(now.UTC().Truncate(24 * time.Hour))
	err = tx.QueryRowContext(ctx, `SELECT
		coalesce(sum(change = 'entered_strike_off' AND first_seen = 0), 0),
		coalesce(sum(change = 'left_strike_off'), 0)
		FROM status_changes WHERE detected_at >= ?`, midnight).Scan(&r.EnteredToday, &r.LeftToday)
	if err != nil {
		return nil, fmt.Errorf("count today's transitions: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT s.company_number, coalesce(c.company_name, ''), s.change, s.first_seen, s.source, s.source_time
		FROM status_changes s LEFT JOIN companies c USING (company_number)
		WHERE s.change != 'status_changed' ORDER BY s.id DESC LIMIT 5`)
	if err != nil {
		return nil, fmt.Errorf("read recent transitions: %w", err)
	}
	for rows.Next() {
		var t Transition
		if err := rows.Scan(&t.Company, &t.Name, &t.Change, &t.FirstSeen, &t.Source, &t.SourceTime); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read recent transitions: %w", err)
		}
		r.Recent = append(r.Recent, t)
	}
	rows.Close()
	open, err := gaps.OpenGaps(ctx, tx)
	if err != nil {
		return nil, err
	}
	for _, g := range open {
		r.Gaps = append(r.Gaps, Gap{ID: g.ID, FromTimepoint: g.FromTimepoint, ToTimepoint: g.ToTimepoint, FromTime: g.FromTime, ToTime: g.ToTime, DetectedAt: g.DetectedAt})
	}
	depths, err := queue.Depths(ctx, tx)
	if err != nil {
		return nil, err
	}
	checks := []queue.Kind{queue.StatusCheck, queue.SweepCheck}
	r.Queue.StatusChecks = depths.Sum(queue.StateQueued, checks...) + depths.Sum(queue.StateRunning, checks...)
	r.Queue.Dead = depths.Sum(queue.StateDead)
	r.decide(th, now)
	return r, nil
}

// diskLow is the free space under which status warns; under diskFull
// SQLite cannot grow the WAL by a batch, and nothing commits.
const (
	diskLow  = 512 << 20
	diskFull = 1 << 20
)

// decide applies SPEC.md's verdict table.
func (r *Report) decide(th Thresholds, now time.Time) {
	add := func(v Verdict, reason string) {
		if v > r.Verdict {
			r.Verdict = v
		}
		r.Reasons = append(r.Reasons, reason)
	}
	s := r.Service
	free := r.Database.FreeBytes
	r.Database.DiskFull = free >= 0 && free < diskFull
	fix := fmt.Sprintf("free space on the filesystem holding %s (old backups, logs, the journal) or grow it; ingestion resumes by itself", dirOf(r.Database.Path))
	full := "disk full: the cursor holds until space returns"
	if free >= 0 {
		full += fmt.Sprintf(" (%s free)", bytesText(free))
	}
	stopped := !s.StoppedAt.Before(s.HeartbeatAt)
	switch {
	case s.HeartbeatAt.IsZero():
		add(Warning, "never run: no chwatch run has used this database yet")
		return
	case r.Database.DiskFull && !stopped && now.Sub(s.HeartbeatAt) > th.StaleAfter:
		// The service writes its heartbeat to this full disk: its age
		// says nothing about whether it runs.
		add(Critical, fmt.Sprintf("%s; the service cannot write its heartbeat (last one %s ago), so that is no sign it stopped: %s; then check it runs (systemctl status chwatch)", full, age(now.Sub(s.HeartbeatAt)), fix))
	case now.Sub(s.HeartbeatAt) > th.StaleAfter || stopped:
		why := fmt.Sprintf("service not running: last heartbeat %s ago", age(now.Sub(s.HeartbeatAt)))
		if !s.StoppedAt.IsZero() {
			why += fmt.Sprintf(" (stopped cleanly at %s)", db.FormatTime(s.StoppedAt))
		} else if s.DiskFull {
			why += " (it then reported a full disk; there is room now)"
		}
		add(Critical, why+": start it (systemctl start chwatch, or chwatch run) and check its log")
		if r.Database.DiskFull {
			add(Critical, full+": "+fix)
		}
	default:
		r.Running = true
		if r.Database.DiskFull || s.DiskFull {
			r.Database.DiskFull = true
			add(Critical, full+": "+fix)
		}
	}
	if r.Running {
		if s.StreamState == "unauthorized" {
			add(Critical, "the stream answers 401: the stream key is wrong or revoked (set CHWATCH_STREAM_KEY)")
		}
		if s.APIUnauthorized {
			add(Critical, "the REST API answers 401: the API key is wrong or revoked (set CHWATCH_API_KEY)")
		}
		if s.StreamState != "connected" && !s.StreamSince.IsZero() {
			down := now.Sub(s.StreamSince)
			why := fmt.Sprintf("stream down for %s", age(down))
			if s.StreamState == "stalled" {
				why = fmt.Sprintf("stream stalled for %s: lines arrive too slowly, and each connection is cut after stream.line_timeout", age(down))
			}
			if s.StreamError != "" {
				why += ": " + s.StreamError
			}
			why += " (check the network and the service log; it keeps reconnecting)"
			switch {
			case down > th.DownCrit:
				add(Critical, why)
			case down > th.DownWarn:
				add(Warning, why)
			}
		}
		if s.BreakerState == "open" {
			add(Warning, "REST breaker open: API requests are paused, jobs wait in the queue (check that the API is reachable and the last error; a successful probe closes it)")
		}
	}
	for _, g := range r.Gaps {
		add(Warning, fmt.Sprintf("unresolved stream gap %d (timepoints %d to %d): import a bulk file dated after it or run `chwatch gaps resolve %d --note TEXT`", g.ID, g.FromTimepoint, g.ToTimepoint, g.ID))
	}
	if r.Queue.Dead > 0 {
		add(Warning, fmt.Sprintf("%d dead jobs (see `chwatch queue status`, retry with `chwatch queue retry`)", r.Queue.Dead))
	}
	if !r.Database.DiskFull && free >= 0 && free < diskLow {
		add(Warning, fmt.Sprintf("disk nearly full: %d MB free beside the database (free space before the service stops)", free>>20))
	}
}

func age(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// freeBytes is what source (statfs when nil) says is free beside the
// database at path, or -1 when it cannot tell.
func freeBytes(path string, source func(dir string) (int64, error)) int64 {
	if source == nil {
		source = statfsFree
	}
	n, err := source(dirOf(path))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func dirOf(path string) string { return filepath.Dir(path) }

// statfsFree is the space an unprivileged user may still write (Bavail: a
// full filesystem keeps its reserved blocks for root).
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// bytesText is a byte count for a reason.
func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d kB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func budget(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
