package budget_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// These tests run the budget and the client against the simulator over
// loopback, on the real clock with windows of a few seconds.

func serveSim(tb testing.TB, cfg sim.Config) (*sim.Sim, string) {
	tb.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	tb.Cleanup(srv.Close)
	return s, srv.URL
}

func TestRateLimitedWaitsForTheResetAgainstSim(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	const window = 2 * time.Second
	s, url := serveSim(t, sim.Config{Seed: 1, APIRateLimit: 5, APIRateWindow: window})
	b := open(t, dbtest.Open(t), budget.Config{Key: "shared-key", Limit: 5, Window: window, ResetGuard: 100 * time.Millisecond})
	c, err := api.New(api.Config{URL: url, Key: "shared-key", Limiter: b})
	is.NoErr(err)
	num := s.CompanyNumbers()[0]

	// Another program on the same key spends the whole window first.
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, url+"/company/"+num, nil)
		req.SetBasicAuth("shared-key", "")
		resp, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		resp.Body.Close()
		is.Equal(resp.StatusCode, 200)
	}
	_, err = c.Profile(ctx, num)
	is.True(errors.Is(err, api.ErrRateLimited))
	var ae *api.Error
	is.True(errors.As(err, &ae))
	is.True(ae.Wait > 0 && ae.Wait <= window)

	// Every worker now waits: nothing is sent until the reset.
	_, err = c.Profile(ctx, num)
	var pe *budget.PausedError
	is.True(errors.As(err, &pe))
	is.True(errors.Is(err, api.ErrNotSent))
	is.Equal(pe.Reason, budget.RateLimited)
	is.Equal(s.RESTStats().Requests, int64(6))

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	is.NoErr(b.Wait(wctx))
	is.True(!time.Now().Before(pe.Until))
	p, err := c.Profile(ctx, num)
	is.NoErr(err)
	is.True(p.Found)
	is.Equal(s.RESTStats().ByStatus[429], int64(1)) // one 429, never a second
}

// call retries a paused call after the budget's wait, as a worker does
// with its job; it reports the call's final error.
func call(ctx context.Context, b *budget.Budget, fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, budget.ErrPaused) {
			return err
		}
		if err := b.Wait(ctx); err != nil {
			return err
		}
	}
}

// Two chwatch instances, separate databases, one key, both draining a
// backlog: they follow the shared Remain.
func TestTwoInstancesShareAKey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for five budget windows")
	}
	is := is.New(t)
	const (
		limit   = 20
		window  = 2 * time.Second
		windows = 5
	)
	s, url := serveSim(t, sim.Config{Seed: 2, Companies: 5000, APIRateLimit: limit, APIRateWindow: window})
	numbers := s.CompanyNumbers()
	ctx, cancel := context.WithTimeout(context.Background(), windows*window)
	defer cancel()
	start := time.Now()
	var (
		mu       sync.Mutex
		limited  []time.Duration // when each 429 came, since the start
		answered int
		wg       sync.WaitGroup
	)
	for inst := range 2 {
		b := open(t, dbtest.Open(t), budget.Config{Key: "one-key", Limit: limit, Window: window, ResetGuard: 100 * time.Millisecond})
		c, err := api.New(api.Config{URL: url, Key: "one-key", Limiter: b})
		is.NoErr(err)
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(inst), uint64(w)))
				for ctx.Err() == nil {
					err := call(ctx, b, func() error {
						_, err := c.Profile(ctx, numbers[r.IntN(len(numbers))])
						return err
					})
					mu.Lock()
					switch {
					case errors.Is(err, api.ErrRateLimited):
						limited = append(limited, time.Since(start))
					case err == nil:
						answered++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	first := 0
	for _, at := range limited {
		if at < window+time.Second {
			first++
		} else {
			t.Errorf("429 at %s, after the first window", at.Round(time.Millisecond))
		}
	}
	is.True(first <= 3) // at most a few while the two learn of each other
	t.Logf("%d answered over %d windows of %d (%.0f%%), %d 429s in the first window", answered, windows, limit, 100*float64(answered)/(windows*limit), first)
	is.True(answered >= (windows-1)*limit*7/10) // the budget is used, not left idle
}
