package budget_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/db/dbtest"
)

// recording is a Limiter that notes every answer on its way to the budget.
type recording struct {
	*budget.Budget
	mu   *sync.Mutex
	seen *[]seen
}

type seen struct {
	at     time.Time
	status int
	reset  int64
}

func (r recording) Observe(t api.Ticket, o api.Observation) {
	r.mu.Lock()
	*r.seen = append(*r.seen, seen{time.Now(), o.Status, o.Reset})
	r.mu.Unlock()
	r.Budget.Observe(t, o)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestBudgetUse drives INSTANCES chwatch budgets (each on its own
// database, all with one key) with WORKERS goroutines each, calling the
// REST API through budget, breaker and client as fast as they are let,
// against a simulator that scripts/bench-budget starts with a scaled-down
// window. It prints the share of the budget used over complete server
// windows after the first, and the 429s after the first window. Every time
// constant of the budget is scaled with the window (the reset guard is 1s
// per 5 minutes).
func TestBudgetUse(t *testing.T) {
	url := os.Getenv("CHWATCHTEST_BUDGET_BENCH_URL")
	if url == "" {
		t.Skip("set CHWATCHTEST_BUDGET_BENCH_URL (scripts/bench-budget does)")
	}
	limit := envInt("CHWATCHTEST_BUDGET_BENCH_LIMIT", 60)
	window := time.Duration(envInt("CHWATCHTEST_BUDGET_BENCH_WINDOW_SECONDS", 10)) * time.Second
	windows := envInt("CHWATCHTEST_BUDGET_BENCH_WINDOWS", 12)
	instances := envInt("CHWATCHTEST_BUDGET_BENCH_INSTANCES", 1)
	workers := envInt("CHWATCHTEST_BUDGET_BENCH_WORKERS", 2)
	companies := envInt("CHWATCHTEST_BUDGET_BENCH_COMPANIES", 2000)
	guard := time.Duration(float64(budget.DefaultResetGuard) * window.Seconds() / budget.DefaultWindow.Seconds())

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(windows+2)*window)
	defer cancel()
	var (
		mu   sync.Mutex
		obs  []seen
		wg   sync.WaitGroup
		nums = make([]string, 0, companies)
	)
	// Numbers the register may not hold answer 404 company-profile-not-found:
	// an answer the budget pays for like any other.
	for i := range companies {
		nums = append(nums, fmt.Sprintf("%08d", i))
	}
	for inst := range instances {
		b, err := budget.New(ctx, dbtest.Open(t), budget.Config{Key: "bench-key", Limit: limit, Window: window, ResetGuard: guard, MaxWait: window})
		if err != nil {
			t.Fatal(err)
		}
		lim := recording{Budget: b, mu: &mu, seen: &obs}
		c, err := api.New(api.Config{URL: url, Key: "bench-key", Limiter: lim})
		if err != nil {
			t.Fatal(err)
		}
		brk := breaker.New(breaker.Config{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(inst), uint64(w)))
				for ctx.Err() == nil {
					if err := b.Wait(ctx); err != nil {
						return
					}
					_, err := breaker.Call(brk, func() (api.Profile, error) { return c.Profile(ctx, nums[r.IntN(len(nums))]) })
					if err != nil && !errors.Is(err, budget.ErrPaused) && !errors.Is(err, api.ErrRateLimited) && ctx.Err() == nil {
						t.Logf("call failed: %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()

	// Server windows, in order of their Reset; the first is where the
	// instances learn the budget, the last is cut short.
	var resets []int64
	for _, o := range obs {
		if o.reset != 0 && (len(resets) == 0 || o.reset > resets[len(resets)-1]) {
			resets = append(resets, o.reset)
		}
	}
	if len(resets) < 4 {
		t.Fatalf("only %d server windows seen", len(resets))
	}
	from, to := resets[1], resets[len(resets)-1] // complete windows: [from, to)
	var start, end time.Time
	answered, late429 := 0, 0
	for _, o := range obs {
		switch {
		case o.reset == from && start.IsZero():
			start = o.at
		case o.reset == to && end.IsZero():
			end = o.at
		}
		if o.reset >= from && o.reset < to && o.status != 429 && o.status < 500 {
			answered++
		}
		if o.status == 429 && o.reset > resets[0] {
			late429++
		}
	}
	full := float64(limit) * float64(end.Sub(start)) / float64(window)
	fmt.Printf("budget use: %d instance(s) x %d workers, %d requests per %s (reset guard %s): %d answered over %d complete windows (%.1fs): %.1f%% of the budget (target >= 95%%)\n",
		instances, workers, limit, window, guard, answered, len(resets)-2, end.Sub(start).Seconds(), 100*float64(answered)/full)
	fmt.Printf("429s after the first window: %d (target 0)\n", late429)
}
