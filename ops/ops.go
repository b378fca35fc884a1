// Package ops is what the running service tells its operator about
// itself: a heartbeat that writes the service's state to service_state
// every few seconds (what `chwatch status` reads), /metrics and /healthz,
// the alerts raised and resolved as that state changes, and the progress
// line in the log.
//
// It only reads the parts run starts (the stream client, the processor,
// the queue's and the gaps' own read functions) and owns no table:
// service_state is written through db.SetState. A part added later (the
// REST workers) joins with a Part: its facts for service_state and
// /healthz, and the rule for its alerts.
package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/status"
	"github.com/chwatch/chwatch/stream"
)

// DefaultEvery is how often the heartbeat refreshes service_state;
// status.stale_after must stay well above it.
const DefaultEvery = 5 * time.Second

// ProgressEvery is how often the heartbeat logs a one-line summary of the
// work and refreshes the queue's depth (metrics and the dead-jobs alert).
const ProgressEvery = 30 * time.Second

// Stream is the stream client as the heartbeat reads it (*stream.Client).
type Stream interface{ State() stream.State }

// Ingest is the processor as the heartbeat reads it (*ingest.Processor).
type Ingest interface{ State() ingest.State }

// Part is a component of the running service beyond the stream and the
// database, with facts of its own (the REST workers: breaker, budget, a 401
// or 403 from the API). Any of its funcs may be nil; each is called with
// the heartbeat's clock.
type Part struct {
	// Report adds the part's facts to the state each heartbeat writes to
	// service_state (status.Service's REST fields, for the workers).
	Report func(ctx context.Context, now time.Time, svc *status.Service)
	// Health returns the part's facts for the /healthz body and the
	// reasons, if any, the service is unhealthy (a 503).
	Health func(ctx context.Context, now time.Time) (facts map[string]any, reasons []string)
	// Alert raises and resolves the part's alerts from the state just
	// reported, on every heartbeat.
	Alert func(ctx context.Context, now time.Time, svc status.Service, alerts *alert.Alerter)
}

// Config is what a heartbeat reads and where it reports.
type Config struct {
	DB        *db.DB
	Stream    Stream
	Ingest    Ingest
	StreamURL string // shown in status; the stream key is never part of it
	Version   string
	Parts     []Part
	// Alerts receives the conditions; DownWarn and DownCrit are
	// status.down_warn and status.down_crit; OnGap is stream.on_gap (the
	// gap alert says what chwatch does about it).
	Alerts             *alert.Alerter
	DownWarn, DownCrit time.Duration
	OnGap              string
	Every              time.Duration    // between heartbeats (default DefaultEvery)
	Now                func() time.Time // default time.Now
	Logger             *slog.Logger
	// Metrics receives chwatch_queue_depth{kind,state}.
	Metrics *metrics.Set
}

// Heartbeat publishes the service's state: to service_state on every beat,
// to the alerts as it changes, and to /healthz when asked.
type Heartbeat struct {
	cfg    Config
	log    *slog.Logger
	stream streamState
	watch  *watch

	mu         sync.Mutex
	started    time.Time
	lastLog    time.Time // the last progress line (zero before the first beat)
	lastEvents int64
}

// New returns a heartbeat; nothing is written until Beat or Run.
func New(cfg Config) *Heartbeat {
	cfg.Every = cmp.Or(cfg.Every, DefaultEvery)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Alerts == nil {
		cfg.Alerts = alert.New(alert.Config{Logger: cfg.Logger})
	}
	return &Heartbeat{cfg: cfg, log: cfg.Logger, stream: streamState{client: cfg.Stream},
		watch: &watch{alerts: cfg.Alerts, downWarn: cfg.DownWarn, downCrit: cfg.DownCrit, onGap: cfg.OnGap, log: cfg.Logger}}
}

// Service is the state a beat at now writes.
func (h *Heartbeat) Service(ctx context.Context, now time.Time) status.Service {
	h.mu.Lock()
	if h.started.IsZero() {
		h.started = now
	}
	started := h.started
	h.mu.Unlock()
	st := h.stream.at(now)
	ps := h.cfg.Ingest.State()
	svc := status.Service{
		PID: os.Getpid(), Version: h.cfg.Version, StartedAt: started, HeartbeatAt: now,
		StreamState: st.state, StreamSince: st.since, StreamError: st.err, StreamURL: h.cfg.StreamURL,
		Reconnects: st.reconnects, LagSeconds: ps.Lag.Seconds(), LastEventAt: ps.LastEventAt,
		// No REST part: nothing is sent, so nothing can trip.
		BreakerState: "closed", APIBudget: -1, DiskFull: ps.DiskFull, LastError: ps.LastError,
	}
	for _, p := range h.cfg.Parts {
		if p.Report != nil {
			p.Report(ctx, now, &svc)
		}
	}
	return svc
}

// Beat writes the service's state now, raises and resolves the alerts that
// follow from it, and every ProgressEvery logs the progress line and
// refreshes the queue's depth. It returns the error of the write.
func (h *Heartbeat) Beat(ctx context.Context) error {
	now := h.cfg.Now()
	svc := h.Service(ctx, now)
	h.watch.check(ctx, h.cfg.DB, now, svc)
	for _, p := range h.cfg.Parts {
		if p.Alert != nil {
			p.Alert(ctx, now, svc, h.cfg.Alerts)
		}
	}
	err := h.write(ctx, now, svc)
	h.progress(ctx, now, svc)
	return err
}

// Run beats every Config.Every until ctx is done.
func (h *Heartbeat) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.Beat(ctx); err != nil && !errors.Is(err, context.Canceled) {
				h.log.Warn("heartbeat not written", "err", err)
			}
		}
	}
}

// Stopped records in service_state that the service stopped.
func (h *Heartbeat) Stopped(ctx context.Context) error {
	now := h.cfg.Now()
	svc := h.Service(ctx, now)
	svc.StoppedAt, svc.StreamState = now, "stopped"
	return h.write(ctx, now, svc)
}

func (h *Heartbeat) write(ctx context.Context, now time.Time, svc status.Service) error {
	kv := svc.KV()
	err := h.cfg.DB.WriteTx(ctx, func(tx db.Tx) error { return db.SetState(ctx, tx, db.FormatTime(now), kv) })
	if err != nil {
		return fmt.Errorf("write service_state: %w", err)
	}
	return nil
}

// progress logs what was done since the last line and refreshes the queue's
// depth; the first beat only refreshes.
func (h *Heartbeat) progress(ctx context.Context, now time.Time, svc status.Service) {
	h.mu.Lock()
	first, due := h.lastLog.IsZero(), now.Sub(h.lastLog) >= ProgressEvery
	if !first && !due {
		h.mu.Unlock()
		return
	}
	ps := h.cfg.Ingest.State()
	if !first {
		n := ps.Events - h.lastEvents
		h.log.Info("progress", "stream", svc.StreamState, "timepoint", ps.Timepoint, "events", n,
			"per_second", int(float64(n)/now.Sub(h.lastLog).Seconds()), "lag", ps.Lag.Round(time.Millisecond).String())
	}
	h.lastLog, h.lastEvents = now, ps.Events
	h.mu.Unlock()
	h.refreshQueueDepth(ctx)
}

// refreshQueueDepth sets chwatch_queue_depth{kind,state} from the job
// counters and follows the dead jobs.
func (h *Heartbeat) refreshQueueDepth(ctx context.Context) {
	depths, err := queue.Depths(ctx, h.cfg.DB.R)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			h.log.Warn("queue depth not read", "err", err)
		}
		return
	}
	for _, kind := range queue.Kinds() {
		for _, state := range queue.States() {
			h.cfg.Metrics.GetOrCreateGauge(fmt.Sprintf(`chwatch_queue_depth{kind=%q,state=%q}`, kind, state), nil).Set(float64(depths.Count(kind, state)))
		}
	}
	h.watch.deadJobs(depths.Sum(queue.StateDead))
}

// streamState is the stream's state as the operator sees it, with the
// moment it began: a connected stream is up since it connected, a stalled
// one since it stalled, anything else down since it was last up.
type streamState struct {
	client Stream

	mu        sync.Mutex
	lastState string
	since     time.Time
}

type streamView struct {
	state      string // connected | connecting | backoff | unauthorized | stalled
	since      time.Time
	err        string
	reconnects int64
}

func (s *streamState) at(now time.Time) streamView {
	cs := s.client.State()
	var state string
	switch {
	case cs.Stalled && !cs.Unauthorized:
		state = "stalled"
	case cs.Connected:
		state = "connected"
	case cs.Unauthorized:
		state = "unauthorized"
	case !cs.NextTry.IsZero() && cs.NextTry.After(now):
		state = "backoff"
	default:
		state = "connecting"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	up, wasUp := state == "connected", s.lastState == "connected"
	if s.lastState == "" || up != wasUp {
		s.since = now
		if up && !cs.Since.IsZero() {
			s.since = cs.Since
		}
		if state == "stalled" && !cs.StalledSince.IsZero() {
			s.since = cs.StalledSince
		}
	}
	s.lastState = state
	return streamView{state: state, since: s.since, err: cs.LastError, reconnects: cs.Reconnects}
}
