package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/housekeep"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/sim"
	"github.com/chwatch/chwatch/status"
	"github.com/chwatch/chwatch/stream"
	"github.com/urfave/cli/v2"
)

// memoryLimit is the Go heap's soft limit in run unless GOMEMLIMIT is set.
const memoryLimit = 14 << 20

// heartbeatEvery is how often run refreshes service_state; status.stale_after
// must stay well above it.
const heartbeatEvery = 5 * time.Second

func (e *env) runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "stream into the database until SIGINT/SIGTERM (one run per database)",
		Description: `Connects to the companies stream, applies every event exactly once, detects
strike-off transitions, queues officer fetches and serves /metrics and /healthz
(http.listen). Stops gracefully on SIGINT or SIGTERM: the batch in flight
commits, then exit 0; a batch that cannot commit within 5s (a full disk) is left
for the next start (the cursor did not move) and the exit is 1. With --sim it
starts the built-in simulator in-process and needs no keys.

One run per database: while another chwatch process holds the database (a run,
or a schema change) it waits up to 10 s, then exits 1 naming that pid.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "sim", Usage: "start the built-in simulator in-process and use it (no keys needed)"},
			&cli.Int64Flag{Name: "sim-seed", Value: 1, Usage: "simulator seed (with --sim)"},
			&cli.IntFlag{Name: "sim-companies", Value: 5000, Usage: "simulated companies (with --sim)"},
			&cli.Float64Flag{Name: "sim-rate", Value: 50, Usage: "simulated live events per second (with --sim)"},
			&cli.IntFlag{Name: "sim-backlog", Value: 2000, Usage: "simulated events already published at start (with --sim)"},
			&cli.BoolFlag{Name: "reset-cursor", Usage: "when the stream URL changed: forget the old stream's cursor and event log and start live (companies and changes stay)"},
			&cli.Int64Flag{Name: "start-timepoint", Usage: "with no cursor yet, start at this timepoint instead of live (the stream keeps a few days)"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := e.loadConfig(c)
			if err != nil {
				return err
			}
			log := e.logger(cfg)
			defer flushLog(log)
			if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
				// A soft limit: the GC works harder near it instead of
				// letting the heap double between collections (peak RSS
				// target: 40 MB). Set here, not in runService: it is the
				// process's, and tests run many services in one.
				debug.SetMemoryLimit(memoryLimit)
			}
			if c.Bool("sim") {
				simCfg := sim.Config{Seed: c.Int64("sim-seed"), Companies: c.Int("sim-companies"), Rate: c.Float64("sim-rate"),
					Backlog: c.Int("sim-backlog"), Heartbeat: 5 * time.Second}
				url, stop, err := startSim(c.Context, simCfg, log)
				if err != nil {
					return err
				}
				defer stop()
				cfg.Stream.URL, cfg.API.URL = url, url
				// No API key: nothing runs REST jobs yet, so the stream
				// decides exits (strike_off.confirm_exit's default without one).
				cfg.Stream.Key, cfg.API.Key = "sim-stream-key", ""
				// The simulator's port changes every run but its log is a
				// function of its flags: the cursor belongs to those.
				return runService(c.Context, cfg, log, runOptions{
					resetCursor: c.Bool("reset-cursor"),
					cursorURL:   fmt.Sprintf("sim:seed=%d,companies=%d", simCfg.Seed, simCfg.Companies),
					startFrom:   sim.DefaultFirstTimepoint,
					lockWait:    e.lockWait,
				})
			}
			from := c.Int64("start-timepoint")
			if from < 0 || from == math.MaxInt64 {
				return usageErr("run: --start-timepoint %d: want a timepoint of the stream (a positive number; they are in the tens of millions), or leave it out to start live", from)
			}
			return runService(c.Context, cfg, log, runOptions{resetCursor: c.Bool("reset-cursor"), startFrom: from, lockWait: e.lockWait})
		},
	}
}

// startSim serves the simulator on a loopback port and returns its URL.
func startSim(ctx context.Context, cfg sim.Config, log *slog.Logger) (string, func(), error) {
	s, err := sim.New(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("start simulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start simulator: %w", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	log.Info("simulated Companies House started", "url", url, "companies", cfg.Companies, "rate", cfg.Rate)
	return url, func() { cancel(); <-done }, nil
}

type runOptions struct {
	resetCursor bool
	cursorURL   string            // what the cursor belongs to, when not stream.url
	startFrom   int64             // first timepoint to ask for without a cursor (0: live)
	lockWait    time.Duration     // how long to wait for the instance lock (0: defaultLockWait)
	onListen    func(addr string) // told the HTTP address once it listens (tests)
	beatEvery   time.Duration     // heartbeat interval (tests; default heartbeatEvery)
	alertEvery  time.Duration     // alert rate-limit window per kind (tests; default alert.DefaultEvery)
	stopTimeout time.Duration     // how long a stop waits on failing commits (tests; default ingest.DefaultStopTimeout)
}

// runService is `chwatch run` once the configuration is known.
func runService(ctx context.Context, cfg *config.Config, log *slog.Logger, opt runOptions) error {
	wait := lockBound(opt.lockWait)
	lock, err := db.Lock(ctx, cfg.Database.Path, wait, func(holder string) {
		log.Warn("another chwatch process holds the database: waiting for it", "pid", holder, "up_to", wait.String())
	})
	if err != nil {
		return err
	}
	defer lock.Unlock()
	fixed, err := db.TightenModes(cfg.Database.Path)
	for _, f := range fixed {
		log.Warn("database file was readable by other users (as `litestream restore` leaves it): mode set to 0660", "file", f.Path, "was", fmt.Sprintf("%04o", f.Was))
	}
	if err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.Database.Path, dbOptions(cfg)...)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := migrateUp(ctx, d, logWriter{log}); err != nil {
		return err
	}
	cur, err := ingest.LoadCursor(ctx, d.W)
	if err != nil {
		return err
	}
	streamID := cfg.Stream.URL
	if opt.cursorURL != "" {
		streamID = opt.cursorURL
	}
	if cur.Timepoint > 0 && cur.URL != streamID {
		if !opt.resetCursor {
			return withCode(ExitUsage, fmt.Errorf("the cursor (timepoint %d) belongs to stream %s, not %s: a timepoint means nothing on another stream; use the right --db, or pass --reset-cursor to start live on the new one", cur.Timepoint, cur.URL, streamID))
		}
		if err := ingest.ResetCursor(ctx, d); err != nil {
			return err
		}
		log.Warn("cursor reset: starting live", "old_url", cur.URL, "old_timepoint", cur.Timepoint)
		cur = ingest.Cursor{}
	}

	alertMetrics := metrics.NewSet()
	alerts := alert.New(alert.Config{URL: cfg.Alert.WebhookURL, Logger: log, Metrics: alertMetrics, Every: opt.alertEvery})
	streamMetrics, ingestMetrics := metrics.NewSet(), metrics.NewSet()
	client, err := stream.New(stream.Config{
		URL: cfg.Stream.URL, Key: cfg.Stream.Key, IdleTimeout: cfg.Stream.IdleTimeout.Duration, LineTimeout: cfg.Stream.LineTimeout.Duration,
		BackoffMin: cfg.Stream.BackoffMin.Duration, BackoffMax: cfg.Stream.BackoffMax.Duration,
		RateLimitedWait: cfg.Stream.RateLimitedWait.Duration, UnauthorizedWait: cfg.Stream.UnauthorizedWait.Duration,
		MaxLineBytes: cfg.Stream.MaxLineBytes, Logger: log, Metrics: streamMetrics,
	})
	if err != nil {
		return withCode(ExitUsage, err)
	}
	applier := &company.Applier{
		Policy:   company.Policy{ConfirmExit: cfg.ConfirmExit(), KeepOfficers: cfg.StrikeOff.OnExit == "keep", OfficersOnFirstSight: true},
		MaxDepth: int64(cfg.Queue.MaxDepth),
	}
	proc := ingest.New(d, ingest.Config{
		BatchMaxEvents: cfg.Stream.BatchMaxEvents, BatchMaxWait: cfg.Stream.BatchMaxWait.Duration,
		Applier: applier, StreamURL: streamID, OnGap: cfg.Stream.OnGap, StopTimeout: opt.stopTimeout,
		Logger: log.With("component", "ingest"), Metrics: ingestMetrics,
	})
	hk := housekeep.New(d, housekeep.Config{
		EventPayload: cfg.Retention.EventPayload.Duration, Events: cfg.Retention.Events.Duration,
		JobsDone: cfg.Retention.JobsDone.Duration, Logger: log.With("component", "housekeep"),
		ExternalCheckpoints: cfg.Database.Checkpoints == "external",
	})
	queueMetrics := metrics.NewSet()
	hb := &heartbeat{d: d, client: client, proc: proc, log: log, streamURL: cfg.Stream.URL, queueMetrics: queueMetrics, every: cmp.Or(opt.beatEvery, heartbeatEvery),
		watch: &watch{alerts: alerts, downWarn: cfg.Status.DownWarn.Duration, downCrit: cfg.Status.DownCrit.Duration, onGap: cfg.Stream.OnGap, log: log}}
	if err := hb.beat(ctx, time.Now()); err != nil {
		return fmt.Errorf("write service_state: %w", err)
	}

	var srv *http.Server
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return withCode(ExitUsage, fmt.Errorf("http.listen %s: %w (choose a free address, or set it empty to disable)", cfg.HTTP.Listen, err))
		}
		srv = &http.Server{Handler: handler(hb, streamMetrics, ingestMetrics, queueMetrics, alertMetrics), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
		if opt.onListen != nil {
			opt.onListen(ln.Addr().String())
		}
	}

	// A small hand-over buffer: the batch itself holds up to
	// batch_max_events, and memory is the budget on a Raspberry Pi.
	items := make(chan stream.Item, 256)
	var wg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	wg.Add(3)
	go func() { defer wg.Done(); alerts.Run(bgCtx) }()
	go func() { defer wg.Done(); hk.Run(bgCtx) }()
	go func() { defer wg.Done(); hb.run(bgCtx) }()

	start := stream.Start{Cursor: cur.Timepoint, From: opt.startFrom, LastPublished: cur.PublishedAt}
	log.Info("chwatch run started", "db", d.Path, "stream", cfg.Stream.URL, "cursor", cur.Timepoint, "start_at", startAt(start), "pid", os.Getpid())
	if cfg.Database.Checkpoints == "external" {
		log.Info("database.checkpoints = external: chwatch runs no WAL checkpoint; Litestream must be replicating this database, or the WAL grows")
	}
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		defer close(items)
		client.Run(ctx, start, items)
	}()
	// The processor drains everything the client handed over, even after
	// the signal: the batch in flight commits, unless it cannot within the
	// stop timeout (a full disk); every step after it is bounded too, so a
	// stop takes well under systemd's patience.
	procErr := proc.Run(ctx, items)
	<-clientDone
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		srv.Shutdown(shutdownCtx)
		cancel()
	}
	stopBg()
	wg.Wait()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), time.Second)
	if err := hb.stopped(stopCtx); err != nil {
		log.Warn("could not record the stop in service_state", "err", err)
	}
	cancelStop()
	if procErr != nil {
		return procErr
	}
	log.Info("chwatch run stopped", "timepoint", proc.State().Timepoint)
	return nil
}

func startAt(start stream.Start) string {
	next, ok := start.Resume()
	switch {
	case !ok:
		return "live (the cursor cannot be resumed from: a gap is recorded)"
	case next == 0:
		return "live"
	}
	return strconv.FormatInt(next, 10)
}

// heartbeat publishes the service's state to service_state and answers /healthz.
type heartbeat struct {
	d         *db.DB
	client    *stream.Client
	proc      *ingest.Processor
	watch     *watch
	log       *slog.Logger
	streamURL string
	started   time.Time
	every     time.Duration // between heartbeats
	// queueMetrics holds chwatch_queue_depth, refreshed with the progress
	// line.
	queueMetrics *metrics.Set

	mu        sync.Mutex
	lastState string
	since     time.Time
}

func (h *heartbeat) streamState(now time.Time) (state string, since time.Time, errText string) {
	s := h.client.State()
	switch {
	case s.Stalled && !s.Unauthorized:
		state = "stalled"
	case s.Connected:
		state = "connected"
	case s.Unauthorized:
		state = "unauthorized"
	case !s.NextTry.IsZero() && s.NextTry.After(now):
		state = "backoff"
	default:
		state = "connecting"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	up := state == "connected"
	wasUp := h.lastState == "connected"
	if h.lastState == "" || up != wasUp {
		h.since = now
		if up && !s.Since.IsZero() {
			h.since = s.Since
		}
		if state == "stalled" && !s.StalledSince.IsZero() {
			h.since = s.StalledSince
		}
	}
	h.lastState = state
	return state, h.since, s.LastError
}

func (h *heartbeat) service(now time.Time) status.Service {
	if h.started.IsZero() {
		h.started = now
	}
	v, _ := version()
	state, since, errText := h.streamState(now)
	ps := h.proc.State()
	cs := h.client.State()
	svc := status.Service{
		PID: os.Getpid(), Version: v, StartedAt: h.started, HeartbeatAt: now,
		StreamState: state, StreamSince: since, StreamError: errText, StreamURL: h.streamURL,
		Reconnects: cs.Reconnects, LagSeconds: ps.Lag.Seconds(), LastEventAt: ps.LastEventAt,
		BreakerState: "closed", APIBudget: -1, DiskFull: ps.DiskFull, LastError: ps.LastError,
	}
	return svc
}

func (h *heartbeat) beat(ctx context.Context, now time.Time) error {
	svc := h.service(now)
	h.watch.check(ctx, h.d, now, svc)
	kv := svc.KV()
	return h.d.WriteTx(ctx, func(tx db.Tx) error { return db.SetState(ctx, tx, db.FormatTime(now), kv) })
}

// progressEvery is how often run logs a one-line summary of its work.
const progressEvery = 30 * time.Second

func (h *heartbeat) run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	lastLog, lastEvents := time.Now(), int64(0)
	h.refreshQueueDepth(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := h.beat(ctx, now); err != nil && !errors.Is(err, context.Canceled) {
				h.log.Warn("heartbeat not written", "err", err)
			}
			if now.Sub(lastLog) >= progressEvery {
				ps := h.proc.State()
				state, _, _ := h.streamState(now)
				n := ps.Events - lastEvents
				h.log.Info("progress", "stream", state, "timepoint", ps.Timepoint, "events", n,
					"per_second", int(float64(n)/now.Sub(lastLog).Seconds()), "lag", ps.Lag.Round(time.Millisecond).String())
				lastLog, lastEvents = now, ps.Events
				h.refreshQueueDepth(ctx)
			}
		}
	}
}

// refreshQueueDepth sets chwatch_queue_depth{kind,state} from the job counters.
func (h *heartbeat) refreshQueueDepth(ctx context.Context) {
	depths, err := queue.Depths(ctx, h.d.R)
	if err != nil {
		h.log.Warn("queue depth not read", "err", err)
		return
	}
	for _, kind := range queue.Kinds() {
		for _, state := range queue.States() {
			h.queueMetrics.GetOrCreateGauge(fmt.Sprintf(`chwatch_queue_depth{kind=%q,state=%q}`, kind, state), nil).Set(float64(depths.Count(kind, state)))
		}
	}
	h.watch.deadJobs(depths.Sum(queue.StateDead))
}

func (h *heartbeat) stopped(ctx context.Context) error {
	now := time.Now()
	svc := h.service(now)
	svc.StoppedAt, svc.StreamState = now, "stopped"
	kv := svc.KV()
	return h.d.WriteTx(ctx, func(tx db.Tx) error { return db.SetState(ctx, tx, db.FormatTime(now), kv) })
}

// health is /healthz: 200 while the stream is connected or reconnecting
// within its backoff and the database is writable; 503 otherwise.
func (h *heartbeat) health() (int, map[string]any) {
	now := time.Now()
	state, since, errText := h.streamState(now)
	ps := h.proc.State()
	body := map[string]any{"stream": state, "stream_since": since.UTC().Format(time.RFC3339), "database_writable": ps.Writable, "timepoint": ps.Timepoint}
	var why []string
	if state == "unauthorized" {
		why = append(why, "stream answers 401 (bad stream key)")
	}
	if state == "stalled" {
		why = append(why, "stream stalled: lines arrive too slowly (each connection is cut after stream.line_timeout and retried)")
	}
	if !ps.Writable {
		w := "database not writable"
		if ps.DiskFull {
			w = "disk full: the cursor holds until space returns"
		}
		why = append(why, w)
	}
	if errText != "" {
		body["stream_error"] = errText
	}
	code := http.StatusOK
	if len(why) > 0 {
		code = http.StatusServiceUnavailable
		body["reasons"] = why
	}
	body["ok"] = code == http.StatusOK
	return code, body
}

func handler(h *heartbeat, sets ...*metrics.Set) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, s := range sets {
			s.WritePrometheus(w)
		}
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		code, body := h.health()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
	return mux
}

// logWriter turns migrate's progress lines into log records.
type logWriter struct{ log *slog.Logger }

func (l logWriter) Write(p []byte) (int, error) {
	l.log.Info(string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	return p
}
