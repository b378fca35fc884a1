package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// manualClock is a settable Config.Now.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *manualClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// restGet sends GET path with key as the Basic-auth user name.
func restGet(tb testing.TB, base, path, key string) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestRESTBudgetBelongsToTheKey(t *testing.T) {
	is := is.New(t)
	clock := &manualClock{now: t0.Add(700 * time.Millisecond)} // mid-second
	s := mustSim(t, Config{Seed: 1, APIRateLimit: 3, APIRateWindow: 10 * time.Second, Now: clock.Now})
	srv := serve(t, s)
	path := "/company/" + s.statics[0].num()

	first := restGet(t, srv.URL, path, "key-a")
	is.Equal(first.Header.Get("X-Ratelimit-Remain"), "2")
	// The window is anchored at its first request, in whole seconds.
	is.Equal(first.Header.Get("X-Ratelimit-Reset"), strconv.FormatInt(t0.Add(10*time.Second).Unix(), 10))
	is.Equal(first.Header.Get("Date"), t0.Format(http.TimeFormat))
	is.Equal(first.Header.Get("X-Ratelimit-Window"), "10s")

	// A second client with the same key spends the same window...
	is.Equal(restGet(t, srv.URL, path, "key-a").Header.Get("X-Ratelimit-Remain"), "1")
	// ...another key has its own.
	is.Equal(restGet(t, srv.URL, path, "key-b").Header.Get("X-Ratelimit-Remain"), "2")
	is.Equal(restGet(t, srv.URL, path, "key-a").StatusCode, 200)
	over := restGet(t, srv.URL, path, "key-a")
	is.Equal(over.StatusCode, 429)
	is.Equal(over.Header.Get("X-Ratelimit-Remain"), "0")

	clock.Add(9300 * time.Millisecond) // exactly Reset
	again := restGet(t, srv.URL, path, "key-a")
	is.Equal(again.StatusCode, 200)
	is.Equal(again.Header.Get("X-Ratelimit-Remain"), "2")
	is.Equal(s.RESTStats().ByStatus[429], int64(1))
}

func TestRESTFaults(t *testing.T) {
	tests := []struct {
		name  string
		api   APIFaults
		codes []int
	}{
		{"5xxBurst", APIFaults{Status5xxEvery: 4, Status5xxBurst: 2}, []int{200, 200, 200, 503, 502, 200, 200, 504, 503, 200}},
		{"5xxSingle", APIFaults{Status5xxEvery: 3}, []int{200, 200, 503, 200, 200, 502}},
		{"403", APIFaults{Status403Every: 2}, []int{200, 403, 200, 403}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			s := mustSim(t, Config{Seed: 1, API: tt.api})
			srv := serve(t, s)
			spent := 0
			for i, want := range tt.codes {
				resp := restGet(t, srv.URL, "/company/"+s.statics[0].num(), "")
				if resp.StatusCode != want {
					t.Fatalf("request %d: status %d, want %d", i+1, resp.StatusCode, want)
				}
				if want != 200 {
					// A gateway or firewall answered: no budget spent, no headers.
					is.Equal(resp.Header.Get("X-Ratelimit-Remain"), "")
					is.Equal(resp.Header.Get("Content-Type"), "text/html")
					continue
				}
				spent++
				is.Equal(resp.Header.Get("X-Ratelimit-Remain"), strconv.Itoa(DefaultAPIRateLimit-spent))
			}
		})
	}
}

func TestRESTOutage(t *testing.T) {
	is := is.New(t)
	clock := &manualClock{now: t0}
	s := mustSim(t, Config{Seed: 1, Now: clock.Now, API: APIFaults{OutageAfter: time.Minute, OutageFor: 30 * time.Second}})
	srv := serve(t, s)
	path := "/company/" + s.statics[0].num()
	is.Equal(restGet(t, srv.URL, path, "").StatusCode, 200)
	clock.Add(time.Minute)
	is.Equal(restGet(t, srv.URL, path, "").StatusCode, 503)
	is.Equal(restGet(t, srv.URL, path+"/officers", "").StatusCode, 502)
	clock.Add(30 * time.Second)
	is.Equal(restGet(t, srv.URL, path, "").StatusCode, 200) // over
	s.Outage(5 * time.Second)
	is.Equal(restGet(t, srv.URL, path, "").StatusCode, 504)
	clock.Add(5 * time.Second)
	is.Equal(restGet(t, srv.URL, path, "").StatusCode, 200)
}

func TestRESTSlowAnswer(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, API: APIFaults{SlowEvery: 2, SlowFor: time.Hour}})
	srv := serve(t, s)
	path := "/company/" + s.statics[0].num()
	is.Equal(restGet(t, srv.URL, path, "").StatusCode, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	_, err := http.DefaultClient.Do(req)
	is.True(errors.Is(err, context.DeadlineExceeded)) // the client's timeout, not an answer
	is.Equal(restGet(t, srv.URL, path, "").StatusCode, 200)
}

func TestRESTRemainingHeader(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, API: APIFaults{RemainingHeader: true}})
	srv := serve(t, s)
	resp := restGet(t, srv.URL, "/company/"+s.statics[0].num(), "")
	is.Equal(resp.Header.Get("X-Ratelimit-Remaining"), strconv.Itoa(DefaultAPIRateLimit-1))
	is.Equal(resp.Header.Get("X-Ratelimit-Remain"), "")
}

// readAll pages through a list as a careful client does, and returns every
// item page by page.
func readAll(tb testing.TB, base, num string) (pages [][]officer, code int, l officerList) {
	tb.Helper()
	for start := 0; ; {
		resp, err := http.Get(base + "/company/" + num + "/officers?items_per_page=100&start_index=" + strconv.Itoa(start))
		if err != nil {
			tb.Fatal(err)
		}
		code = resp.StatusCode
		if code != 200 {
			resp.Body.Close()
			return pages, code, l
		}
		l = officerList{}
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err != nil {
			tb.Fatal(err)
		}
		if len(l.Items) == 0 {
			return pages, code, l
		}
		pages = append(pages, l.Items)
		start += l.ItemsPerPage
		if (l.TotalResults != nil && start >= *l.TotalResults) || len(l.Items) < l.ItemsPerPage {
			return pages, code, l
		}
	}
}

func TestOfficerListsMatchTruth(t *testing.T) {
	for _, api := range []APIFaults{{}, {PageCap: 35, OverlapPages: true}} {
		t.Run(strconv.Itoa(api.PageCap), func(t *testing.T) {
			is := is.New(t)
			s := mustSim(t, Config{Seed: 5, Companies: 3000, StrikeOffShare: 0.2, APIRateLimit: 100_000, API: api})
			srv := serve(t, s)
			var sawBig, saw404, sawEmpty, sawNoTotal, sawDissolved, sawOverlap bool
			for _, num := range s.CompanyNumbers()[:600] {
				truth := s.Officers(num)
				pages, code, last := readAll(t, srv.URL, num)
				if !truth.Found {
					is.Equal(code, 404)
					saw404 = true
					continue
				}
				is.Equal(code, 200)
				got := map[string]officer{}
				n := 0
				for _, p := range pages {
					if api.PageCap > 0 {
						is.True(len(p) <= api.PageCap+1) // the cap holds (plus the repeated item)
					}
					for _, o := range p {
						if _, dup := got[o.Links.Self]; dup {
							sawOverlap = true
						}
						got[o.Links.Self] = o
						n++
					}
				}
				is.Equal(len(got), len(truth.Officers))
				for _, o := range truth.Officers {
					item, ok := got["/company/"+num+"/appointments/"+o.AppointmentID]
					is.True(ok)
					is.Equal(item.Name, o.Name)
					is.Equal(item.ResignedOn, o.ResignedOn)
				}
				sawBig = sawBig || len(pages) > 1
				sawEmpty = sawEmpty || len(truth.Officers) == 0
				sawNoTotal = sawNoTotal || truth.NoTotal
				if truth.NoTotal {
					is.Equal(last.TotalResults, nil)
				}
				if truth.Dissolved && len(truth.Officers) > 0 {
					sawDissolved = true
					is.Equal(last.ActiveCount, 0)
					is.Equal(last.ResignedCount+last.InactiveCount, len(truth.Officers))
				}
			}
			is.True(sawBig && saw404 && sawEmpty && sawNoTotal && sawDissolved)
			is.Equal(sawOverlap, api.OverlapPages)
		})
	}
}

func TestAPIFaultsValidation(t *testing.T) {
	is := is.New(t)
	_, err := New(Config{API: APIFaults{SlowEvery: -1}})
	is.True(err != nil && strings.Contains(err.Error(), "API.SlowEvery"))
}
