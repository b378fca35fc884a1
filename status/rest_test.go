package status_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/status"
	"github.com/matryer/is"
)

// addJobs inserts n jobs of kind in state, created at created.
func addJobs(tb testing.TB, d *db.DB, kind queue.Kind, state queue.State, n int, created time.Time) {
	tb.Helper()
	at := db.FormatTime(created)
	exec(tb, d, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO jobs (kind, priority, company_number, state, run_after, created_at, updated_at)
		SELECT ?, ?, printf('%08d', (SELECT count(*) FROM jobs) + i), ?, ?, ?, ? FROM n`, n, string(kind), kind.Priority(), string(state), at, at, at)
}

// The REST section reads the jobs by kind and state, the oldest queued job
// of each kind, the budget row and the breaker, and estimates the drain.
func TestGatherREST(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	setService(t, d, running())
	addJobs(t, d, queue.Officers, queue.StateQueued, 3000, now.Add(-72*time.Hour))
	addJobs(t, d, queue.Officers, queue.StateQueued, 1, now.Add(-96*time.Hour)) // the oldest is what counts, not the first
	addJobs(t, d, queue.StatusCheck, queue.StateRunning, 2, now.Add(-time.Minute))
	addJobs(t, d, queue.SweepCheck, queue.StateDead, 4, now.Add(-time.Hour))
	addJobs(t, d, queue.PSCs, queue.StateDone, 5, now.Add(-time.Hour))
	budgetRow("", now.Add(-10*time.Second))(t, d)

	r, err := status.Gather(ctx, d, th, now)
	is.NoErr(err)
	rest := r.REST
	is.True(rest.WorkersRunning)
	is.Equal(rest.Breaker, "closed")
	is.Equal(rest.Jobs, queue.Depth{
		queue.Officers: {queue.StateQueued: 3001}, queue.StatusCheck: {queue.StateRunning: 2},
		queue.SweepCheck: {queue.StateDead: 4}, queue.PSCs: {queue.StateDone: 5},
	})
	is.Equal(rest.OldestQueued, map[queue.Kind]string{queue.Officers: "2026-11-24T23:41:36Z"})
	is.Equal(rest.OldestQueuedAgeSeconds, map[queue.Kind]float64{queue.Officers: 96 * 3600})
	is.Equal(rest.Budget.Limit, 600)
	is.Equal(rest.Budget.WindowSeconds, 300.0)
	is.Equal(rest.Budget.Remain, 400)
	is.Equal(rest.Budget.Requests, int64(1234))
	is.Equal(rest.Budget.UpdatedAt, "2026-11-28T23:41:26Z")
	is.Equal(*rest.Drain, status.Drain{Jobs: 3003, Requests: 3003, PerWindow: 600, WindowSeconds: 300, Seconds: 1502, LimitFrom: "api_budget"})
	is.Equal(r.Queue.Dead, int64(4))
	is.Equal(r.Queue.StatusChecks, int64(2))
	is.Equal(r.Verdict, status.Warning) // the dead jobs
}

// The drain estimate is jobs / limit * window, at the stored budget's
// limit when there is a row, the configured one otherwise.
func TestDrainEstimate(t *testing.T) {
	tests := []struct {
		name      string
		queued    int
		row       bool // an api_budget row: 600 per 300 s
		limit     int
		window    time.Duration
		want      *status.Drain
		wantText  string
		noWorkers bool
		measured  bool // officer lists finished at 1 and 2 requests
	}{
		{name: "Empty", row: true, want: nil},
		{
			// A first import --officers: about two days at 600 per 5 minutes.
			name: "FirstImport", queued: 400_000, limit: 600, window: 5 * time.Minute,
			want:     &status.Drain{Jobs: 400_000, Requests: 400_000, PerWindow: 600, WindowSeconds: 300, Seconds: 200_000, LimitFrom: "config"},
			wantText: "drain about 2.3 days at 600 per 5m (an estimate",
		},
		{
			name: "ConfiguredLimit", queued: 6000, limit: 60, window: time.Minute,
			want:     &status.Drain{Jobs: 6000, Requests: 6000, PerWindow: 60, WindowSeconds: 60, Seconds: 6000, LimitFrom: "config"},
			wantText: "drain about 100 minutes at 60 per 1m",
		},
		{
			name: "DefaultsWithoutConfig", queued: 1200,
			want: &status.Drain{Jobs: 1200, Requests: 1200, PerWindow: 600, WindowSeconds: 300, Seconds: 600, LimitFrom: "config"},
		},
		{
			name: "TheRowWins", queued: 30_000, row: true, limit: 60, window: time.Minute,
			want:     &status.Drain{Jobs: 30_000, Requests: 30_000, PerWindow: 600, WindowSeconds: 300, Seconds: 15_000, LimitFrom: "api_budget"},
			wantText: "drain about 4.2 hours at 600 per 5m",
		},
		{
			name: "AMinute", queued: 151, limit: 600, window: 5 * time.Minute,
			want:     &status.Drain{Jobs: 151, Requests: 151, PerWindow: 600, WindowSeconds: 300, Seconds: 76, LimitFrom: "config"},
			wantText: "drain about a minute at 600 per 5m",
		},
		{
			name: "UnderAMinute", queued: 50, limit: 600, window: 5 * time.Minute,
			want:     &status.Drain{Jobs: 50, Requests: 50, PerWindow: 600, WindowSeconds: 300, Seconds: 25, LimitFrom: "config"},
			wantText: "drain under a minute at 600 per 5m",
		},
		{
			// Lists measured at 1.5 requests each (status checks unmeasured: one).
			name: "Measured", queued: 400_000, measured: true, limit: 600, window: 5 * time.Minute,
			want: &status.Drain{Jobs: 400_000, Requests: 600_000, RequestsPerJob: map[queue.Kind]float64{queue.Officers: 1.5},
				PerWindow: 600, WindowSeconds: 300, Seconds: 300_000, LimitFrom: "config"},
			wantText: "drain about 3.5 days at 600 per 5m (an estimate: 600,000 requests, requests a job as measured: officers 1.50",
		},
		{
			// Workers or not, the backlog is what it is.
			name: "NoWorkers", queued: 600, noWorkers: true, limit: 600, window: 5 * time.Minute,
			want:     &status.Drain{Jobs: 600, Requests: 600, PerWindow: 600, WindowSeconds: 300, Seconds: 300, LimitFrom: "config"},
			wantText: "drain about 5 minutes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			d := dbtest.Open(t)
			svc := running()
			if tt.noWorkers {
				svc.APIBudget = -1
			}
			setService(t, d, svc)
			// The job counters, as the jobs triggers keep them: status
			// reads nothing else (TestGatherREST has real rows).
			exec(t, d, "INSERT INTO counters (name, value) VALUES (?, ?)", queue.CounterName(queue.Officers, queue.StateQueued), tt.queued)
			if tt.row {
				budgetRow("", now)(t, d)
			}
			if tt.measured {
				err := d.WriteTx(context.Background(), func(tx db.Tx) error {
					for _, n := range []int{1, 2} {
						if err := queue.RecordCostTx(context.Background(), tx, queue.Officers, n); err != nil {
							return err
						}
					}
					return nil
				})
				is.NoErr(err)
			}
			th := th
			th.RateLimit, th.RateWindow = tt.limit, tt.window
			r, err := status.Gather(context.Background(), d, th, now)
			is.NoErr(err)
			if tt.want == nil {
				is.True(r.REST.Drain == nil)
				return
			}
			is.Equal(*r.REST.Drain, *tt.want)
			var out strings.Builder
			status.Render(&out, r, "test")
			if tt.wantText != "" && !strings.Contains(out.String(), tt.wantText) {
				t.Errorf("screen lacks %q:\n%s", tt.wantText, out.String())
			}
			if tt.noWorkers && !strings.Contains(out.String(), "REST workers not running") {
				t.Errorf("screen does not say no REST worker runs:\n%s", out.String())
			}
		})
	}
}

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0s"}, {59 * time.Second, "59s"}, {time.Minute, "1m"}, {7*time.Minute + 59*time.Second, "7m"},
		{time.Hour, "1h"}, {time.Hour + 5*time.Minute, "1h5m"}, {47*time.Hour + 59*time.Minute, "47h59m"},
		{48 * time.Hour, "2d"}, {30*24*time.Hour + 4*time.Hour, "30d4h"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.d), func(t *testing.T) {
			is.New(t).Equal(status.Ago(tt.d), tt.want)
		})
	}
}
