package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/feed"
	"github.com/chwatch/chwatch/ops"
	"github.com/chwatch/chwatch/status"
)

// changeFeed is the change feed's side of run: its sinks' delivery beside
// the stream (run), its alert through an ops.Part (part), its metrics (m).
type changeFeed struct {
	feed     *feed.Feed
	m        *metrics.Set
	downWarn time.Duration
}

// newFeed makes feed_sinks match the configured sinks, before the first
// batch (from then on each change writes the outbox while a sink is
// configured), and returns their delivery; nil when none is configured.
// backoff, when not 0, is the first wait after a failed delivery (tests).
func newFeed(ctx context.Context, cfg *config.Config, d *db.DB, log *slog.Logger, backoff time.Duration) (*changeFeed, error) {
	var sinks []feed.Sink
	if cfg.Feed.WebhookURL != "" {
		sinks = append(sinks, feed.NewWebhook(cfg.Feed.WebhookURL, "chwatch/"+Version))
	}
	if cfg.Feed.NATSURL != "" {
		sinks = append(sinks, feed.NewNATS(cfg.Feed.NATSURL, cfg.Feed.NATSSubject, "chwatch"))
	}
	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name()
	}
	added, removed, err := feed.Sync(ctx, d, names, time.Now())
	if err != nil {
		return nil, err
	}
	for _, n := range added {
		log.Info("feed sink added: it receives the changes from now on (no backfill)", "sink", n)
	}
	for _, n := range removed {
		log.Warn("feed sink no longer configured: its undelivered messages are dropped", "sink", n)
	}
	if len(sinks) == 0 {
		return nil, nil
	}
	m := metrics.NewSet()
	cf := &changeFeed{m: m, downWarn: cfg.Status.DownWarn.Duration}
	fc := feed.Config{DB: d, Sinks: sinks, Logger: log, Metrics: m}
	if backoff > 0 {
		fc.BackoffMin, fc.BackoffMax = backoff, 10*backoff
	}
	cf.feed = feed.New(fc)
	return cf, nil
}

// run delivers until ctx is done.
func (f *changeFeed) run(ctx context.Context) { f.feed.Run(ctx) }

// part raises feed_backlog while a sink is behind by more than
// status.down_warn (the condition status warns on), and resolves it.
func (f *changeFeed) part() ops.Part {
	return ops.Part{Alert: func(_ context.Context, now time.Time, _ status.Service, alerts *alert.Alerter) {
		var behind []map[string]any
		for _, s := range f.feed.States() {
			if s.Behind(now, f.downWarn) {
				behind = append(behind, map[string]any{"sink": s.Name, "backlog": s.Backlog,
					"oldest": s.OldestAt.UTC().Format(time.RFC3339), "last_error": s.LastError})
			}
		}
		if len(behind) == 0 {
			alerts.Resolve(alert.FeedBacklog)
			return
		}
		alerts.Raise(alert.FeedBacklog, alert.Warning,
			"change feed behind: a sink has not delivered for longer than status.down_warn; messages wait in the outbox, nothing is lost and ingestion goes on (see chwatch status)",
			map[string]any{"sinks": behind})
	}}
}
