package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/status"
	"github.com/chwatch/chwatch/stream"
)

// statusTarget is SPEC's "well under": status answers within it.
const statusTarget = 100 * time.Millisecond

// BenchmarkStatus measures `chwatch status` as the command runs it (open
// the database read-only, gather, render, close) on a database of 5
// million companies, 10 million events and a million queued jobs (built
// once and cached: cachedBig), while a writer commits event batches
// through the real processor as `run` does in a catch-up, and heartbeats.
// Each round times status and, as the baseline, the cheapest read there
// is on a fresh connection (open, BEGIN, SELECT 1, COMMIT, close), one
// after the other, so both see the same writer. It reports the median of
// each, status's ratio to the 100 ms target and to the baseline.
//
// CHWATCHTEST_BENCH_STATUS_SCALE (default 1) scales the database down for
// a quick look; CHWATCHTEST_BENCH_CACHE moves the cache. Each run adds the
// writer's few hundred thousand events to the cached database.
func BenchmarkStatus(b *testing.B) {
	sz := fullSize
	if s := os.Getenv("CHWATCHTEST_BENCH_STATUS_SCALE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1 {
			b.Fatalf("CHWATCHTEST_BENCH_STATUS_SCALE=%q: want a number in (0, 1]", s)
		}
		sz = bigSize{Companies: int(float64(sz.Companies) * f), Events: int(float64(sz.Events) * f), Jobs: int(float64(sz.Jobs) * f), Changes: int(float64(sz.Changes) * f)}
	}
	path := cachedBig(b, sz)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := startWriter(ctx, b, path, sz.Companies)
	// Measure once the writer is in its stride, for at least
	// measureFor and a hundred rounds.
	for deadline := time.Now().Add(time.Minute); w.commits.Load() < 2; {
		if time.Now().After(deadline) {
			b.Fatalf("the writer committed %d batches in a minute", w.commits.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	const measureFor, minRounds = 10 * time.Second, 101
	var gather, base []time.Duration
	var last *status.Report
	from, begin := w.commits.Load(), time.Now()
	for len(gather) < minRounds || time.Since(begin) < measureFor {
		start := time.Now()
		last = statusOnce(ctx, b, path)
		g := time.Since(start)
		start = time.Now()
		selectOne(ctx, b, path)
		gather, base = append(gather, g), append(base, time.Since(start))
	}
	elapsed := time.Since(begin)
	commits := w.commits.Load() - from
	w.stop()
	for b.Loop() {
		// Timed by hand above: make bench runs -benchtime 1x.
	}

	if last.Companies != int64(sz.Companies) || last.Queue.Pending < int64(sz.Jobs) || last.Today.Events["applied"] == 0 || !last.Running {
		j, _ := json.Marshal(last)
		b.Fatalf("status did not read the database it was given: %s", j)
	}
	if commits < 5 {
		b.Fatalf("the writer committed %d batches: status was not measured beside a writing run", commits)
	}
	med, p90, p99, worst := quantiles(gather)
	baseMed, baseP90, baseP99, baseWorst := quantiles(base)
	b.ReportMetric(ms(med), "median-ms")
	b.ReportMetric(ms(p90), "p90-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(baseMed), "select1-median-ms")
	b.ReportMetric(float64(med)/float64(statusTarget), "ratio-to-100ms")
	b.ReportMetric(float64(med)/float64(baseMed), "ratio-to-select1")
	b.ReportMetric(float64(commits*writerBatch)/elapsed.Seconds(), "writer-events/s")
	b.Logf("status on %d companies, %d events, %d queued jobs, %d rounds in %s beside a writer committing %.0f events/s (%d batches of %d): median %.1f ms (p90 %.1f, p99 %.1f, worst %.1f), ratio to the 100 ms target %.3f; baseline read transaction (SELECT 1) median %.1f ms (p90 %.1f, p99 %.1f, worst %.1f), status/baseline %.1f",
		sz.Companies, sz.Events, sz.Jobs, len(gather), elapsed.Round(time.Millisecond), float64(commits*writerBatch)/elapsed.Seconds(), commits, writerBatch,
		ms(med), ms(p90), ms(p99), ms(worst), float64(med)/float64(statusTarget), ms(baseMed), ms(baseP90), ms(baseP99), ms(baseWorst), float64(med)/float64(baseMed))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quantiles are the median, the 90th and 99th percentiles and the worst.
func quantiles(ds []time.Duration) (median, p90, p99, worst time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*9/10], s[len(s)*99/100], s[len(s)-1]
}

// statusOnce does what `chwatch status` does after reading its config.
func statusOnce(ctx context.Context, b *testing.B, path string) *status.Report {
	d, err := db.OpenReader(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	th := status.Thresholds{StaleAfter: time.Minute, DownWarn: 5 * time.Minute, DownCrit: 30 * time.Minute, RateLimit: 600, RateWindow: 5 * time.Minute}
	r, err := status.Gather(ctx, d, th, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	status.Render(io.Discard, r, "bench")
	return r
}

// selectOne is the baseline: the cheapest read transaction on a fresh
// read-only connection.
func selectOne(ctx context.Context, b *testing.B, path string) {
	d, err := db.OpenReader(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	tx, err := d.R.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	var one int
	if err := tx.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// writerBatch is the events per commit of the benchmark's writer: the
// size of a catch-up batch.
const writerBatch = 1000

type writer struct {
	commits atomic.Int64
	done    chan struct{}
	cancel  context.CancelFunc
}

func (w *writer) stop() int64 {
	w.cancel()
	<-w.done
	return w.commits.Load()
}

// startWriter commits batches of changed events for random existing
// companies through ingest.Processor, back to back, and the service's
// heartbeat every second, until stopped: `run` catching up.
func startWriter(ctx context.Context, b *testing.B, path string, companies int) *writer {
	d, err := db.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	var tp int64
	if err := d.R.QueryRowContext(ctx, "SELECT timepoint FROM stream_cursor WHERE stream = 'companies'").Scan(&tp); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &writer{done: make(chan struct{}), cancel: cancel}
	p := ingest.New(d, ingest.Config{BatchMaxEvents: writerBatch, BatchMaxWait: 10 * time.Millisecond,
		Applier: &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}, StreamURL: "bench"})
	started := time.Now()
	beat := func(now time.Time) error {
		ps := p.State()
		svc := status.Service{PID: os.Getpid(), Version: "bench", StartedAt: started, HeartbeatAt: now,
			StreamState: "connected", StreamSince: started, StreamURL: "bench", LagSeconds: ps.Lag.Seconds(),
			LastEventAt: ps.LastEventAt, BreakerState: "closed", APIBudget: 412}
		return d.WriteTx(ctx, func(tx db.Tx) error { return db.SetState(ctx, tx, db.FormatTime(now), svc.KV()) })
	}
	if err := beat(time.Now()); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(tp), 1))
	go func() {
		defer close(w.done)
		defer d.Close()
		lastBeat := time.Now()
		for ctx.Err() == nil {
			batch := make([]stream.Item, writerBatch)
			now := time.Now()
			for i := range batch {
				tp++
				batch[i] = benchEvent(tp, fmt.Sprintf("%08d", 1+rng.IntN(companies)), now)
			}
			if err := p.Commit(ctx, batch); err != nil {
				if ctx.Err() == nil {
					b.Error(err)
				}
				return
			}
			w.commits.Add(1)
			if time.Since(lastBeat) >= time.Second {
				if err := beat(time.Now()); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
				lastBeat = time.Now()
			}
		}
	}()
	return w
}

// benchEvent is a changed event with a new etag, published a second
// before it arrives.
func benchEvent(tp int64, number string, now time.Time) stream.Item {
	line := fmt.Sprintf(`{"resource_kind":"company-profile","resource_id":%q,"resource_uri":"/company/%s","data":{"company_number":%q,"company_name":"COMPANY %s LIMITED","company_status":"active","type":"ltd","etag":"bench-%d","registered_office_address":{"address_line_1":"1 High Street","locality":"LONDON","postal_code":"SW1 1AB"}},"event":{"timepoint":%d,"published_at":%q,"type":"changed"}}`,
		number, number, number, number, tp, tp, now.Add(-time.Second).UTC().Format("2006-01-02T15:04:05"))
	it, err := stream.Decode([]byte(line), now)
	if err != nil {
		panic(err)
	}
	return it
}
