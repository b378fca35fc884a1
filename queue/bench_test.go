package queue_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
)

// BenchmarkClaimComplete measures a worker's claim plus complete with 1,000
// officer jobs queued (the baseline) and with CHWATCHTEST_BENCH_JOBS (default
// 1,000,000) queued, in the same run. large/small close to 1 means the
// latency is flat: a claim walks jobs_claim to its first due row and a
// completion is a primary-key update, whatever the backlog. Each finished
// job is replaced (untimed), so the depth holds.
func BenchmarkClaimComplete(b *testing.B) {
	large := 1_000_000
	if s := os.Getenv("CHWATCHTEST_BENCH_JOBS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("CHWATCHTEST_BENCH_JOBS=%q: want a number of at least 1000", s)
		}
		large = n
	}
	const rounds = 2000
	smallNs := claimComplete(b, 1000, rounds)
	largeNs := claimComplete(b, large, rounds)
	for b.Loop() {
		// The figures are timed by hand above (b.Loop's own count would
		// be 1 under make bench's -benchtime 1x).
	}
	b.ReportMetric(smallNs/1e3, "µs/op@1k")
	b.ReportMetric(largeNs/1e3, fmt.Sprintf("µs/op@%dk", large/1000))
	b.ReportMetric(largeNs/smallNs, "large/small")
	b.Logf("claim+complete: %.0f µs with 1,000 jobs queued, %.0f µs with %d: ratio %.2f (flat is close to 1)", smallNs/1e3, largeNs/1e3, large, largeNs/smallNs)
}

// claimComplete fills a database with queued officer jobs and returns the
// mean time of a claim plus its completion over rounds rounds.
func claimComplete(b *testing.B, queued, rounds int) float64 {
	b.Helper()
	ctx := context.Background()
	d := dbtest.Open(b)
	fillOfficers(b, d, queued, now.Add(-time.Duration(queued)*time.Second))
	q := queue.New(d, queue.Options{Now: func() time.Time { return now }})
	var spent time.Duration
	for i := range rounds {
		start := time.Now()
		j, ok, err := q.Claim(ctx)
		if err != nil || !ok {
			b.Fatalf("claim: %v (found %v)", err, ok)
		}
		if err := q.Complete(ctx, j); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(start)
		if _, err := q.Enqueue(ctx, queue.Officers, fmt.Sprintf("R%07d", i)); err != nil {
			b.Fatal(err)
		}
	}
	return float64(spent.Nanoseconds()) / float64(rounds)
}
