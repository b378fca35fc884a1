package budget_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// fakeClock moves only when the budget sleeps on it (or a test says so),
// so every wait is exact and costs no real time.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
	block bool // After never fires: for cancellation tests
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if c.block {
		return ch
	}
	c.now = c.now.Add(d)
	c.slept += d
	ch <- c.now
	return ch
}

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// server is Companies House's budget as samples show it: a fixed window
// anchored at its first request, in whole seconds, on a clock of its own
// (skew from the local one: a Raspberry Pi's can be hours off).
type server struct {
	limit  int
	window time.Duration
	skew   time.Duration
	end    time.Time // server clock
	count  int
}

// answer is what the server says to a request arriving at local time at,
// with others requests of other programs counted before it.
func (s *server) answer(at time.Time, others int) api.Observation {
	now := at.Add(s.skew).Truncate(time.Second)
	if !now.Before(s.end) {
		s.end, s.count = now.Add(s.window), 0
	}
	s.count += 1 + others
	o := api.Observation{Status: 200, Date: now, Limit: s.limit, Remain: max(s.limit-s.count, 0), Reset: s.end.Unix(), Window: s.window}
	if s.count > s.limit {
		o.Status = 429
	}
	return o
}

func open(tb testing.TB, d *db.DB, cfg budget.Config) *budget.Budget {
	tb.Helper()
	b, err := budget.New(context.Background(), d, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestPacingSpreadsTheWindow(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	clk := &fakeClock{now: t0}
	b := open(t, dbtest.Open(t), budget.Config{Limit: 10, Window: 10 * time.Second, Clock: clk})
	srv := &server{limit: 10, window: 10 * time.Second, skew: -3 * time.Hour}
	var sent []time.Time
	for range 12 {
		tk, err := b.Acquire(ctx)
		is.NoErr(err)
		sent = append(sent, clk.Now())
		o := srv.answer(clk.Now(), 0)
		is.Equal(o.Status, 200) // never answered 429
		b.Observe(tk, o)
	}
	// The first window's ten requests one second apart, not burst at its
	// start; the eleventh after the reset plus the guard.
	for i := 1; i < 10; i++ {
		is.Equal(sent[i].Sub(sent[i-1]), time.Second)
	}
	is.Equal(sent[10], t0.Add(11*time.Second))
	is.Equal(sent[11], t0.Add(12*time.Second))
	s := b.State()
	is.Equal(s.Limit, 10)
	is.Equal(s.Remain, 8)
	is.Equal(s.WindowEnd, t0.Add(21*time.Second)) // Reset minus Date, on the local clock
	is.Equal(s.Requests, int64(12))
}

func TestFollowsTheServersRemain(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	clk := &fakeClock{now: t0}
	b := open(t, dbtest.Open(t), budget.Config{Limit: 600, Window: 5 * time.Minute, Clock: clk})
	srv := &server{limit: 100, window: 100 * time.Second}
	tk, err := b.Acquire(ctx)
	is.NoErr(err)
	b.Observe(tk, srv.answer(clk.Now(), 0))
	s := b.State()
	is.Equal(s.Limit, 100) // the server's limit and window beat the configuration
	is.Equal(s.Window, 100*time.Second)
	is.Equal(s.Remain, 99)
	is.True(!s.Shared)

	// Another program spends 60 of the key's requests meanwhile.
	tk, err = b.Acquire(ctx)
	is.NoErr(err)
	b.Observe(tk, srv.answer(clk.Now(), 60))
	s = b.State()
	is.Equal(s.Remain, 38) // the server's word, not chwatch's count
	is.True(s.Shared)      // and a reserve is kept from now on
	sent := 2
	for {
		tk, err := b.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o := srv.answer(clk.Now(), 0)
		is.Equal(o.Status, 200)
		b.Observe(tk, o)
		sent++
		if clk.Now().After(t0.Add(100 * time.Second)) {
			break // into the next window
		}
	}
	is.Equal(sent, 2+38-2+1) // the reserve of two held back, then one in the new window
}

// Two workers share one Budget: answers arrive out of order, and a late
// one never raises Remain over what later answers said.
func TestAnswersOutOfOrder(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	clk := &fakeClock{now: t0}
	b := open(t, dbtest.Open(t), budget.Config{Limit: 10, Window: 10 * time.Second, Clock: clk})
	srv := &server{limit: 10, window: 10 * time.Second}
	t1, _ := b.Acquire(ctx)
	o1 := srv.answer(clk.Now(), 0)
	t2, _ := b.Acquire(ctx)
	o2 := srv.answer(clk.Now(), 0)
	t3, _ := b.Acquire(ctx) // in flight: the server has not counted it
	b.Observe(t2, o2)
	is.Equal(b.State().Remain, 7) // 8 left after t2, less t3 in flight
	b.Observe(t1, o1)
	is.Equal(b.State().Remain, 7) // the older answer changes nothing
	b.Observe(t3, srv.answer(clk.Now(), 0))
	is.Equal(b.State().Remain, 7)
	is.True(!b.State().Shared)
}

func TestRateLimitedPausesEveryWorker(t *testing.T) {
	tests := []struct {
		name string
		obs  func(now time.Time) api.Observation
		wait time.Duration // from the 429 to the end of the pause
	}{
		{"UntilTheReset", func(now time.Time) api.Observation {
			// The server's clock is years off: only Reset minus Date counts.
			date := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
			return api.Observation{Status: 429, Date: date, Remain: 0, Reset: date.Add(40 * time.Second).Unix()}
		}, 41 * time.Second},
		{"AWholeWindowWithoutHeaders", func(time.Time) api.Observation { return api.Observation{Status: 429, Remain: -1} }, 5*time.Minute + time.Second},
		{"RetryAfterWithoutReset", func(time.Time) api.Observation {
			return api.Observation{Status: 429, Remain: -1, RetryAfter: 20 * time.Second}
		}, 21 * time.Second},
		{"NeverMoreThanAWindow", func(now time.Time) api.Observation {
			return api.Observation{Status: 429, Date: now, Remain: 0, Reset: now.Add(24 * time.Hour).Unix()}
		}, 5*time.Minute + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			clk := &fakeClock{now: t0}
			d := dbtest.Open(t)
			b := open(t, d, budget.Config{Key: "k", Clock: clk})
			other := open(t, d, budget.Config{Key: "k", Clock: clk}) // another process on the database
			tk, err := b.Acquire(ctx)
			is.NoErr(err)
			b.Observe(tk, tt.obs(clk.Now()))
			until := t0.Add(tt.wait)

			_, err = b.Acquire(ctx)
			var pe *budget.PausedError
			is.True(errors.As(err, &pe))
			is.True(errors.Is(err, budget.ErrPaused))
			is.Equal(pe.Reason, budget.RateLimited)
			is.Equal(pe.Until, until)
			is.Equal(b.State().Remain, 0)

			clk.Advance(time.Second) // the other process reads the row at most once a second
			_, err = other.Acquire(ctx)
			is.True(errors.As(err, &pe))
			is.Equal(pe.Reason, budget.RateLimited)
			is.Equal(pe.Until, until)

			is.NoErr(b.Wait(ctx)) // blocks until the pause ends
			is.True(!clk.Now().Before(until))
			_, err = b.Acquire(ctx)
			is.NoErr(err)
			is.Equal(b.State().RateLimited, int64(1))
		})
	}
}

func TestUnauthorizedStopsUntilTheKeyChanges(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	clk := &fakeClock{now: t0}
	d := dbtest.Open(t)
	b := open(t, d, budget.Config{Key: "old", UnauthorizedWait: 5 * time.Minute, Clock: clk})
	tk, _ := b.Acquire(ctx)
	b.Observe(tk, api.Observation{Status: 401, Remain: -1})
	_, err := b.Acquire(ctx)
	var pe *budget.PausedError
	is.True(errors.As(err, &pe))
	is.Equal(*pe, budget.PausedError{Reason: budget.Unauthorized, Until: t0.Add(5 * time.Minute)})
	is.Equal(b.State().Refused, budget.Unauthorized)
	is.NoErr(b.Close(ctx))

	// A restart with the same key does not probe again at once...
	clk.Advance(time.Minute)
	again := open(t, d, budget.Config{Key: "old", UnauthorizedWait: 5 * time.Minute, Clock: clk})
	_, err = again.Acquire(ctx)
	is.True(errors.As(err, &pe))
	is.Equal(pe.Reason, budget.Unauthorized)
	is.Equal(pe.Until, t0.Add(5*time.Minute))
	st, ok, err := budget.Read(ctx, d.R)
	is.NoErr(err)
	is.True(ok)
	is.Equal(st.Refused, budget.Unauthorized) // CRITICAL in status

	// ...one with a new key starts at once.
	fresh := open(t, d, budget.Config{Key: "new", Clock: clk})
	tk, err = fresh.Acquire(ctx)
	is.NoErr(err)
	fresh.Observe(tk, api.Observation{Status: 200, Remain: -1})
	is.Equal(fresh.State().Refused, "")

	// Past the wait, the old key is tried once more, and a success clears it.
	clk.Advance(4 * time.Minute)
	tk, err = again.Acquire(ctx)
	is.NoErr(err)
	again.Observe(tk, api.Observation{Status: 404, Remain: -1})
	is.Equal(again.State().Refused, "")
}

func TestForbiddenPausesAndSurvivesAClockJump(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	clk := &fakeClock{now: t0}
	d := dbtest.Open(t)
	b := open(t, d, budget.Config{ForbiddenWait: 15 * time.Minute, Clock: clk})
	tk, _ := b.Acquire(ctx)
	b.Observe(tk, api.Observation{Status: 403, Remain: -1})
	_, err := b.Acquire(ctx)
	var pe *budget.PausedError
	is.True(errors.As(err, &pe))
	is.Equal(*pe, budget.PausedError{Reason: budget.Forbidden, Until: t0.Add(15 * time.Minute)})
	is.NoErr(b.Close(ctx))

	// The wall clock jumped back three days before the restart (a Pi
	// without a real-time clock): the stored pause is capped at its length.
	clk.Advance(-72 * time.Hour)
	again := open(t, d, budget.Config{ForbiddenWait: 15 * time.Minute, Clock: clk})
	_, err = again.Acquire(ctx)
	is.True(errors.As(err, &pe))
	is.Equal(pe.Reason, budget.Forbidden)
	is.Equal(pe.Until, clk.Now().Add(15*time.Minute))
}

func TestExhaustedWindowRefusesRatherThanHoldAJob(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	clk := &fakeClock{now: t0}
	b := open(t, dbtest.Open(t), budget.Config{MaxWait: 30 * time.Second, Clock: clk})
	tk, _ := b.Acquire(ctx)
	// Another program left nothing; the window resets in four minutes.
	b.Observe(tk, api.Observation{Status: 200, Date: t0, Remain: 0, Reset: t0.Add(4 * time.Minute).Unix(), Limit: 600})
	_, err := b.Acquire(ctx)
	var pe *budget.PausedError
	is.True(errors.As(err, &pe))
	is.Equal(*pe, budget.PausedError{Reason: budget.Exhausted, Until: t0.Add(4*time.Minute + time.Second)})
	is.Equal(clk.slept, time.Duration(0)) // refused at once

	is.NoErr(b.Wait(ctx)) // until the slot is within MaxWait
	is.Equal(clk.Now(), t0.Add(4*time.Minute+time.Second-30*time.Second))
	_, err = b.Acquire(ctx)
	is.NoErr(err)
	is.Equal(clk.Now(), t0.Add(4*time.Minute+time.Second))
}

func TestCancelledWaitGivesTheRequestBack(t *testing.T) {
	is := is.New(t)
	clk := &fakeClock{now: t0}
	b := open(t, dbtest.Open(t), budget.Config{Limit: 10, Window: 10 * time.Second, Clock: clk})
	_, err := b.Acquire(context.Background()) // at once
	is.NoErr(err)
	clk.block = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := b.Acquire(ctx); done <- err }()
	cancel()
	is.True(errors.Is(<-done, context.Canceled))
	is.Equal(b.State().Remain, 9)
	is.Equal(b.State().Requests, int64(1))
}

func TestRestartKeepsTheWindow(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	clk := &fakeClock{now: t0}
	d := dbtest.Open(t)
	cfg := budget.Config{Key: "k", Limit: 10, Window: time.Minute, Clock: clk}
	b := open(t, d, cfg)
	srv := &server{limit: 10, window: time.Minute}
	for range 4 {
		tk, _ := b.Acquire(ctx)
		b.Observe(tk, srv.answer(clk.Now(), 0))
	}
	is.NoErr(b.Close(ctx))
	st, ok, err := budget.Read(ctx, d.R)
	is.NoErr(err)
	is.True(ok)
	is.Equal(st.Remain, 6)
	is.Equal(st.Requests, int64(4))
	is.Equal(st.WindowEnd, t0.Add(time.Minute))

	again := open(t, d, cfg)
	is.Equal(again.State().Remain, 6) // the same window goes on
	is.Equal(again.State().WindowEnd, t0.Add(time.Minute))
	clk.Advance(time.Hour)
	later := open(t, d, cfg)
	_, err = later.Acquire(ctx)
	is.NoErr(err)
	is.Equal(later.State().Remain, 9) // that window is long over
}

func TestMetrics(t *testing.T) {
	is := is.New(t)
	set := metrics.NewSet()
	clk := &fakeClock{now: t0}
	b := open(t, dbtest.Open(t), budget.Config{Limit: 50, Window: time.Minute, Clock: clk, Metrics: set})
	tk, _ := b.Acquire(context.Background())
	b.Observe(tk, api.Observation{Status: 429, Remain: -1})
	var out bytes.Buffer
	set.WritePrometheus(&out)
	is.True(strings.Contains(out.String(), "chwatch_api_budget_remaining 0\n"))
	is.True(strings.Contains(out.String(), "chwatch_api_budget_paused 1\n"))
}

func TestKeyIDRevealsNothing(t *testing.T) {
	is := is.New(t)
	id := budget.KeyID("0a1b2c3d-secret")
	is.Equal(len(id), 16)
	is.True(!strings.Contains(id, "0a1b2c3d"))
	is.True(id != budget.KeyID("0a1b2c3d-secreT"))
}
