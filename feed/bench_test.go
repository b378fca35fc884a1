package feed_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/feed"
	"github.com/chwatch/chwatch/feed/feedtest"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/sim"
	"github.com/chwatch/chwatch/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// setup is the feed's state in a benchmark round.
type setup int

const (
	before   setup = iota // the trigger dropped: the schema as it was before the feed
	noSink                // the feed's schema, no sink configured (every user who sets none)
	withSink              // a sink configured: every status change writes the outbox
)

func (s setup) open(b *testing.B) *db.DB {
	d := dbtest.Open(b)
	switch s {
	case before:
		// What migration 0006 undone leaves, whatever migrations came
		// after it.
		if _, err := d.W.Exec("DROP TABLE feed_outbox; DROP TABLE feed_sinks"); err != nil {
			b.Fatal(err)
		}
	case withSink:
		if _, _, err := feed.Sync(context.Background(), d, []string{feed.Webhook}, t0); err != nil {
			b.Fatal(err)
		}
	}
	return d
}

// BenchmarkIngestNoSink is the cost of the feed's trigger for a user who
// configures no sink: stream events through the processor (the hot
// path), and new companies all in strike-off applied in bulk-sized
// transactions (the worst case: every row a status change), each against
// the schema of before the feed. Rounds are interleaved, each
// setup first in turn, and the fastest round of each counts: other load on
// the machine only ever adds time, so the minimum is the figure that
// compares. A ratio of 1 is no cost. Run it with -benchtime 1x (15 rounds).
func BenchmarkIngestNoSink(b *testing.B) {
	n := envInt("CHWATCHTEST_BENCH_EVENTS", 5000)
	items := collect(b, n, 3000)
	var ingestT, applyT [3][]time.Duration
	rounds := 15 * b.N
	for r := range rounds {
		for k := range 3 {
			s := setup((r + k) % 3)
			d := s.open(b)
			ingestT[s] = append(ingestT[s], ingestRound(b, d, items))
			d.Close()
			d = s.open(b)
			applyT[s] = append(applyT[s], applyRound(b, d, n))
			d.Close()
		}
	}
	best := func(ts []time.Duration) float64 { return slices.Min(ts).Seconds() }
	b.ReportMetric(float64(n)/best(ingestT[noSink]), "ingest-events/s")
	b.ReportMetric(best(ingestT[before])/best(ingestT[noSink]), "ingest-nosink-vs-before")
	b.ReportMetric(best(ingestT[before])/best(ingestT[withSink]), "ingest-sink-vs-before")
	b.ReportMetric(float64(n)/best(applyT[noSink]), "changes/s")
	b.ReportMetric(best(applyT[before])/best(applyT[noSink]), "changes-nosink-vs-before")
	b.ReportMetric(best(applyT[before])/best(applyT[withSink]), "changes-sink-vs-before")
	b.ReportMetric((best(applyT[noSink])-best(applyT[before]))/float64(n)*1e6, "nosink-us/change")
}

func ingestRound(b *testing.B, d *db.DB, items []stream.Item) time.Duration {
	p := ingest.New(d, ingest.Config{BatchMaxEvents: 5000, BatchMaxWait: 20 * time.Millisecond,
		Applier: &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}, StreamURL: "bench"})
	in := make(chan stream.Item, len(items))
	for _, it := range items {
		in <- it
	}
	close(in)
	start := time.Now()
	if err := p.Run(context.Background(), in); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// applyRound applies n new companies in strike-off, 5000 a transaction,
// through a statement cache as import does.
func applyRound(b *testing.B, d *db.DB, n int) time.Duration {
	ctx := context.Background()
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	start := time.Now()
	for i := 0; i < n; i += 5000 {
		err := d.WriteTx(ctx, func(tx db.Tx) error {
			q := db.NewStmtCache(tx) // as the importer's transactions
			seq, err := db.BeginSeq(ctx, q)
			if err != nil {
				return err
			}
			batch := a.Begin(q, seq)
			for j := i; j < min(i+5000, n); j++ {
				v := company.Version{Number: fmt.Sprintf("%08d", j), Name: "BENCH LTD", Status: "active", Detail: company.StrikeOffDetail,
					Source: company.Bulk, SourceTime: t0}
				if _, err := batch.Apply(ctx, v, t0); err != nil {
					return err
				}
			}
			if err := batch.Flush(ctx); err != nil {
				return err
			}
			return seq.Save(ctx, q)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// collect reads n events from a simulator over loopback, as run does.
func collect(b *testing.B, n, companies int) []stream.Item {
	b.Helper()
	s, err := sim.New(sim.Config{Seed: 7, Companies: companies, Events: n, Backlog: n, Heartbeat: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c, err := stream.New(stream.Config{URL: srv.URL, Key: "k"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan stream.Item, 1024)
	go c.Run(ctx, stream.Start{From: sim.DefaultFirstTimepoint}, out)
	items := make([]stream.Item, 0, n)
	for len(items) < n {
		if it := <-out; it.Event != nil {
			items = append(items, it)
		}
	}
	return items
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// arrivals records when each identity first reached a consumer.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (a *arrivals) add(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.at[id]; !ok {
		a.at[id] = time.Now()
	}
}

func (a *arrivals) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// BenchmarkFeed measures, per sink (the webhook on an httptest server;
// NATS when CHWATCHTEST_NATS_SERVER names a nats-server), the latency from
// a change's commit to its arrival (p50, p99; changes committed one at a
// time, 20 ms apart, as a quiet stream does) and the delivery rate of a
// backlog (messages/s, what a catch-up or a sink back after an outage
// sees), beside the rate changes are written with the sink on.
func BenchmarkFeed(b *testing.B) {
	sinks := map[string]func(b *testing.B, a *arrivals) feed.Sink{
		"webhook": func(b *testing.B, a *arrivals) feed.Sink {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				a.add(r.Header.Get(feed.IdentityHeader))
			}))
			b.Cleanup(srv.Close)
			return feed.NewWebhook(srv.URL, "bench")
		},
		"nats": func(b *testing.B, a *arrivals) feed.Sink {
			url := feedtest.NATSServer(b)
			nc, err := nats.Connect(url)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			js, _ := jetstream.New(nc)
			sink := feed.NewNATS(url, "bench.changes", "bench")
			if err := sink.Open(context.Background()); err != nil { // creates the stream
				b.Fatal(err)
			}
			sink.Close()
			cons, err := js.OrderedConsumer(context.Background(), feed.StreamName, jetstream.OrderedConsumerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			cc, err := cons.Consume(func(m jetstream.Msg) { a.add(m.Headers().Get(jetstream.MsgIDHeader)) })
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(cc.Stop)
			return feed.NewNATS(url, "bench.changes", "bench")
		},
	}
	for _, name := range []string{"webhook", "nats"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				benchSink(b, sinks[name])
			}
		})
	}
}

func benchSink(b *testing.B, mk func(*testing.B, *arrivals) feed.Sink) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := dbtest.Open(b)
	a := &arrivals{at: map[string]time.Time{}}
	sink := mk(b, a)
	if _, _, err := feed.Sync(ctx, d, []string{sink.Name()}, t0); err != nil {
		b.Fatal(err)
	}
	f := feed.New(feed.Config{DB: d, Sinks: []feed.Sink{sink}})
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()

	// Latency: one change at a time.
	const quiet = 200
	committed := map[string]time.Time{}
	for i := range quiet {
		change(b, d, fmt.Sprintf("L%07d", i), true, t0)
		committed[fmt.Sprintf("change-%d", i+1)] = time.Now()
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(b, "the quiet changes", func() bool { return a.len() >= quiet })
	var lat []time.Duration
	a.mu.Lock()
	for id, c := range committed {
		lat = append(lat, a.at[id].Sub(c))
	}
	a.mu.Unlock()
	slices.Sort(lat)

	// Throughput: a backlog written at once, then delivered.
	const backlog = 5000
	cancel()
	<-done
	wstart := time.Now()
	applyRound(b, d, backlog)
	write := time.Since(wstart)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	f = feed.New(feed.Config{DB: d, Sinks: []feed.Sink{sink}}) // opened again
	done = make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	start := time.Now()
	waitFor(b, "the backlog", func() bool { return a.len() >= quiet+backlog })
	deliver := time.Since(start)
	cancel()
	<-done

	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(backlog/deliver.Seconds(), "delivered-msgs/s")
	b.ReportMetric(backlog/write.Seconds(), "changes-written/s")
}
