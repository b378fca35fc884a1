package status

import (
	"context"
	"fmt"

	"github.com/chwatch/chwatch/feed"
)

// FeedSink is one change feed sink (feed.webhook_url, feed.nats_url): where
// it stands in the outbox, read from the database.
type FeedSink struct {
	feed.SinkState
	// OldestAgeSeconds is now minus when the oldest undelivered message
	// was written (0 when none waits).
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// Behind: that message is older than status.down_warn (WARNING).
	Behind bool `json:"behind"`
}

// feedSchema is the migration that brought the feed's tables.
const feedSchema = 6

func (r *Report) readFeed(ctx context.Context, s source) error {
	r.Feed = []FeedSink{}
	if r.Database.SchemaVersion < feedSchema {
		return nil
	}
	sinks, err := feed.Read(ctx, s.tx)
	if err != nil {
		return err
	}
	for _, st := range sinks {
		fs := FeedSink{SinkState: st, Behind: st.Behind(s.now, s.th.DownWarn)}
		if !st.OldestAt.IsZero() {
			fs.OldestAgeSeconds = max(s.now.Sub(st.OldestAt).Seconds(), 0)
		}
		r.Feed = append(r.Feed, fs)
	}
	return nil
}

// judgeFeed: a sink behind by more than status.down_warn, whether or not
// the service runs (its messages wait either way).
func (r *Report) judgeFeed(add func(Verdict, string)) {
	for _, s := range r.Feed {
		if !s.Behind {
			continue
		}
		why := fmt.Sprintf("change feed sink %s behind: %d undelivered, the oldest written %s ago", s.Name, s.Backlog, Ago(r.now.Sub(s.OldestAt)))
		if s.LastError != "" && !s.FailingSince.IsZero() {
			why += fmt.Sprintf("; failing since %s ago: %s", Ago(r.now.Sub(s.FailingSince)), s.LastError)
		}
		add(Warning, why+" (nothing is lost: check the sink; see the runbook, \"feed backlog growing\")")
	}
}

// feed prints a row per sink.
func (p *printer) feed() {
	for _, s := range p.r.Feed {
		line := "delivering, nothing waiting"
		if s.Backlog > 0 {
			line = fmt.Sprintf("%s waiting, the oldest from %s ago", plural(s.Backlog, "message", "messages"), p.ago(s.OldestAt))
		}
		line += fmt.Sprintf("; last delivery %s ago", p.ago(s.DeliveredAt))
		if s.DeliveredAt.IsZero() {
			line = line[:len(line)-len(" ago")]
		}
		p.row("feed", "%s: %s", s.Name, line)
		if !s.FailingSince.IsZero() {
			p.row("", "failing since %s ago: %s", p.ago(s.FailingSince), s.LastError)
		}
	}
}
