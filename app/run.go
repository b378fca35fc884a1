package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
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
	"github.com/chwatch/chwatch/ops"
	"github.com/chwatch/chwatch/sim"
	"github.com/chwatch/chwatch/stream"
	"github.com/urfave/cli/v2"
)

// memoryLimit is the Go heap's soft limit in run unless GOMEMLIMIT is set:
// 14 MiB until the per-statement argument arrays got small (issue 10) left
// the room for 17 (docs/design.md).
const memoryLimit = 17 << 20

func (e *env) runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "stream into the database until SIGINT/SIGTERM (one run per database)",
		Description: `Connects to the companies stream, applies every event exactly once, detects
strike-off transitions, and serves /metrics and /healthz (http.listen). With an
API key (api.key, CHWATCH_API_KEY) its REST workers (api.workers) fetch the
officers of companies in strike-off (and, with enrich.pscs = true, their
persons with significant control) and run status checks and gap sweeps,
within the shared request budget (api.rate_limit per api.rate_window).
With feed.webhook_url or feed.nats_url set, it delivers every status change
and officer replacement to them, at least once and in order (the change
feed). Turning enrich.pscs on queues the companies already in strike-off without
PSCs once, at the next start; turning it off drops the queued PSC fetches. Stops
gracefully on SIGINT or SIGTERM: the batch in flight commits, the REST jobs in
hand go back to the queue, then exit 0; a batch that cannot commit within 5s (a
full disk) is left for the next start (the cursor did not move) and the exit is
1. With --sim it starts the built-in simulator (stream and REST) in-process and
needs no keys.

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
			// No heap profile is ever taken from run: its sampling's
			// table of stacks grew to about 1.4 MB over a catch-up,
			// RSS the heap limit can use instead.
			runtime.MemProfileRate = 0
			if c.Bool("sim") {
				simCfg := sim.Config{Seed: c.Int64("sim-seed"), Companies: c.Int("sim-companies"), Rate: c.Float64("sim-rate"),
					Backlog: c.Int("sim-backlog"), Heartbeat: 5 * time.Second, APIKey: simAPIKey,
					APIRateLimit: cfg.API.RateLimit, APIRateWindow: cfg.API.RateWindow.Duration}
				url, stop, err := startSim(c.Context, simCfg, log)
				if err != nil {
					return err
				}
				defer stop()
				cfg.Stream.URL, cfg.API.URL = url, url
				// The simulator's REST side checks its key as Companies
				// House does, so the REST workers run as in production, and
				// strike_off.confirm_exit defaults to api.
				cfg.Stream.Key, cfg.API.Key = "sim-stream-key", simAPIKey
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

// simAPIKey is the REST key of `run --sim`: the simulator answers 401 to
// any other.
const simAPIKey = "sim-api-key"

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
	onOpen      func(d *db.DB)    // told the database once it is open and migrated (tests)
	beatEvery   time.Duration     // heartbeat interval (tests; default ops.DefaultEvery)
	alertEvery  time.Duration     // alert rate-limit window per kind (tests; default alert.DefaultEvery)
	stopTimeout time.Duration     // how long a stop waits on failing commits (tests; default ingest.DefaultStopTimeout)
	restBackoff time.Duration     // a failed REST job's first backoff (tests; default the queue's)
	feedBackoff time.Duration     // a failed feed delivery's first backoff (tests; default feed's)
}

// runService is `chwatch run` once the configuration is known: the parts
// of the service, started in order and stopped in reverse.
func runService(ctx context.Context, cfg *config.Config, log *slog.Logger, opt runOptions) error {
	d, unlock, err := openForRun(ctx, cfg, log, opt.lockWait)
	if err != nil {
		return err
	}
	defer unlock()
	defer d.Close()
	if opt.onOpen != nil {
		opt.onOpen(d)
	}
	streamID := cmp.Or(opt.cursorURL, cfg.Stream.URL)
	cur, err := resumeCursor(ctx, d, streamID, opt.resetCursor, log)
	if err != nil {
		return err
	}

	alertMetrics, streamMetrics, ingestMetrics, opsMetrics := metrics.NewSet(), metrics.NewSet(), metrics.NewSet(), metrics.NewSet()
	alerts := alert.New(alert.Config{URL: cfg.Alert.WebhookURL, Logger: log, Metrics: alertMetrics, Every: opt.alertEvery})
	client, err := newStreamClient(cfg, log, streamMetrics)
	if err != nil {
		return err
	}
	applier := newApplier(cfg)
	applier.Transitions = company.NewTransitions(ingestMetrics)
	proc := newProcessor(d, cfg, applier, streamID, opt.stopTimeout, log, ingestMetrics)
	hk := newHousekeeper(d, cfg, log)
	// What runs beside the stream until the stop, what parts beyond the
	// stream and the database tell ops, and what /metrics serves: the
	// REST workers add theirs.
	beside := []func(context.Context){alerts.Run, hk.Run}
	var parts []ops.Part
	sets := []*metrics.Set{streamMetrics, ingestMetrics, opsMetrics, alertMetrics}
	if rest, err := newREST(ctx, cfg, d, applier, alerts, log, opt.restBackoff); err != nil {
		return err
	} else if rest != nil {
		beside, parts, sets = append(beside, rest.run), append(parts, rest.part()), append(sets, rest.m)
	}
	if err := setUpPSCs(ctx, cfg, d, log); err != nil {
		return err
	}
	if fd, err := newFeed(ctx, cfg, d, log, opt.feedBackoff); err != nil {
		return err
	} else if fd != nil {
		beside, parts, sets = append(beside, fd.run), append(parts, fd.part()), append(sets, fd.m)
	}

	v, _ := version()
	beat := ops.New(ops.Config{
		DB: d, Stream: client, Ingest: proc, StreamURL: cfg.Stream.URL, Version: v, Parts: parts,
		Alerts: alerts, DownWarn: cfg.Status.DownWarn.Duration, DownCrit: cfg.Status.DownCrit.Duration, OnGap: cfg.Stream.OnGap,
		Every: opt.beatEvery, Logger: log, Metrics: opsMetrics,
	})
	if err := beat.Beat(ctx); err != nil {
		return err
	}
	stopHTTP, err := serveHTTP(cfg.HTTP.Listen, ops.Handler(beat, sets...), log, opt.onListen)
	if err != nil {
		return err
	}
	stopBeside := runBeside(ctx, append(beside, beat.Run)...)

	procErr := ingestStream(ctx, cfg, d, client, proc, stream.Start{Cursor: cur.Timepoint, From: opt.startFrom, LastPublished: cur.PublishedAt}, log)
	// Every step of the stop is bounded, so it takes well under systemd's
	// patience.
	stopHTTP()
	stopBeside()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), time.Second)
	if err := beat.Stopped(stopCtx); err != nil {
		log.Warn("could not record the stop in service_state", "err", err)
	}
	cancelStop()
	if procErr != nil {
		return procErr
	}
	log.Info("chwatch run stopped", "timepoint", proc.State().Timepoint)
	return nil
}

// openForRun takes the instance lock, then opens and migrates the
// database; unlock releases the lock.
func openForRun(ctx context.Context, cfg *config.Config, log *slog.Logger, lockWait time.Duration) (d *db.DB, unlock func(), err error) {
	wait := lockBound(lockWait)
	lock, err := db.Lock(ctx, cfg.Database.Path, wait, func(holder string) {
		log.Warn("another chwatch process holds the database: waiting for it", "pid", holder, "up_to", wait.String())
	})
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			lock.Unlock()
		}
	}()
	fixed, err := db.TightenModes(cfg.Database.Path)
	for _, f := range fixed {
		log.Warn("database file was readable by other users (as `litestream restore` leaves it): mode set to 0660", "file", f.Path, "was", fmt.Sprintf("%04o", f.Was))
	}
	if err != nil {
		return nil, nil, err
	}
	d, err = db.Open(ctx, cfg.Database.Path, dbOptions(cfg)...)
	if err != nil {
		return nil, nil, err
	}
	if _, err := migrateUp(ctx, d, logWriter{log}); err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, func() { lock.Unlock() }, nil
}

// resumeCursor reads the cursor, refusing one of another stream unless
// reset says to forget it.
func resumeCursor(ctx context.Context, d *db.DB, streamID string, reset bool, log *slog.Logger) (ingest.Cursor, error) {
	cur, err := ingest.LoadCursor(ctx, d.W)
	if err != nil {
		return cur, err
	}
	if cur.Timepoint == 0 || cur.URL == streamID {
		return cur, nil
	}
	if !reset {
		return cur, withCode(ExitUsage, fmt.Errorf("the cursor (timepoint %d) belongs to stream %s, not %s: a timepoint means nothing on another stream; use the right --db, or pass --reset-cursor to start live on the new one", cur.Timepoint, cur.URL, streamID))
	}
	if err := ingest.ResetCursor(ctx, d); err != nil {
		return cur, err
	}
	log.Warn("cursor reset: starting live", "old_url", cur.URL, "old_timepoint", cur.Timepoint)
	return ingest.Cursor{}, nil
}

func newStreamClient(cfg *config.Config, log *slog.Logger, m *metrics.Set) (*stream.Client, error) {
	client, err := stream.New(stream.Config{
		URL: cfg.Stream.URL, Key: cfg.Stream.Key, IdleTimeout: cfg.Stream.IdleTimeout.Duration, LineTimeout: cfg.Stream.LineTimeout.Duration,
		BackoffMin: cfg.Stream.BackoffMin.Duration, BackoffMax: cfg.Stream.BackoffMax.Duration,
		RateLimitedWait: cfg.Stream.RateLimitedWait.Duration, UnauthorizedWait: cfg.Stream.UnauthorizedWait.Duration,
		MaxLineBytes: cfg.Stream.MaxLineBytes, Logger: log, Metrics: m,
	})
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	return client, nil
}

// newApplier is the company rule as cfg sets it, for the stream and the
// REST workers alike.
func newApplier(cfg *config.Config) *company.Applier {
	return &company.Applier{
		Policy: company.Policy{ConfirmExit: cfg.ConfirmExit(), KeepOfficers: cfg.StrikeOff.OnExit == "keep", OfficersOnFirstSight: true,
			PSCs: cfg.Enrich.PSCs},
		MaxDepth: int64(cfg.Queue.MaxDepth),
	}
}

func newProcessor(d *db.DB, cfg *config.Config, applier *company.Applier, streamID string, stopTimeout time.Duration, log *slog.Logger, m *metrics.Set) *ingest.Processor {
	return ingest.New(d, ingest.Config{
		BatchMaxEvents: cfg.Stream.BatchMaxEvents, BatchMaxWait: cfg.Stream.BatchMaxWait.Duration,
		Applier: applier, StreamURL: streamID, OnGap: cfg.Stream.OnGap, StopTimeout: stopTimeout,
		Logger: log.With("component", "ingest"), Metrics: m,
	})
}

func newHousekeeper(d *db.DB, cfg *config.Config, log *slog.Logger) *housekeep.Housekeeper {
	return housekeep.New(d, housekeep.Config{
		EventPayload: cfg.Retention.EventPayload.Duration, Events: cfg.Retention.Events.Duration,
		JobsDone: cfg.Retention.JobsDone.Duration, Logger: log.With("component", "housekeep"),
		ExternalCheckpoints: cfg.Database.Checkpoints == "external",
	})
}

// serveHTTP serves h on listen (nothing when it is empty) until stop.
func serveHTTP(listen string, h http.Handler, log *slog.Logger, onListen func(string)) (stop func(), err error) {
	if listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("http.listen %s: %w (choose a free address, or set it empty to disable)", listen, err))
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
	if onListen != nil {
		onListen(ln.Addr().String())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// runBeside runs each of run in its own goroutine until stop. They outlive
// ctx: the stop's last batch commits first, and they see it.
func runBeside(ctx context.Context, run ...func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, r := range run {
		wg.Go(func() { r(ctx) })
	}
	return func() { cancel(); wg.Wait() }
}

// ingestStream streams from start into the processor until ctx is done,
// and returns once the processor drained everything the client handed
// over: the batch in flight commits, unless it cannot within the stop
// timeout (a full disk).
func ingestStream(ctx context.Context, cfg *config.Config, d *db.DB, client *stream.Client, proc *ingest.Processor, start stream.Start, log *slog.Logger) error {
	log.Info("chwatch run started", "db", d.Path, "stream", cfg.Stream.URL, "cursor", start.Cursor, "start_at", startAt(start), "pid", os.Getpid())
	if cfg.Database.Checkpoints == "external" {
		log.Info("database.checkpoints = external: chwatch runs no WAL checkpoint; Litestream must be replicating this database, or the WAL grows")
	}
	// A small hand-over buffer: the batch itself holds up to
	// batch_max_events, and memory is the budget on a Raspberry Pi.
	items := make(chan stream.Item, 256)
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		defer close(items)
		client.Run(ctx, start, items)
	}()
	err := proc.Run(ctx, items)
	<-clientDone
	return err
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
