package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/budget"
	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

var t0 = time.Date(2026, 11, 28, 14, 21, 6, 0, time.UTC)

const testKey = "0a1b2c3d-secret-api-key-4e5f"

// newSim serves a simulator with a fixed clock and a large budget unless
// cfg says otherwise.
func newSim(tb testing.TB, cfg sim.Config) (*sim.Sim, string) {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	if cfg.APIRateLimit == 0 {
		cfg.APIRateLimit = 100_000
	}
	s, err := sim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	tb.Cleanup(srv.Close)
	return s, srv.URL
}

func newClient(tb testing.TB, cfg api.Config) *api.Client {
	tb.Helper()
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin, cfg.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	}
	c, err := api.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// find returns the first company number of the register that pred accepts.
func find(tb testing.TB, s *sim.Sim, pred func(sim.OfficerList) bool) string {
	tb.Helper()
	for _, n := range s.CompanyNumbers() {
		if pred(s.Officers(n)) {
			return n
		}
	}
	tb.Fatal("no company of the simulated register fits")
	return ""
}

func TestProfile(t *testing.T) {
	is := is.New(t)
	s, url := newSim(t, sim.Config{Seed: 3, Backlog: 2000})
	c := newClient(t, api.Config{URL: url, Key: testKey})
	truth := s.Truth()
	checked := 0
	for num, want := range truth.Companies {
		if want.Deleted {
			continue
		}
		p, err := c.Profile(context.Background(), num)
		is.NoErr(err)
		is.True(p.Found)
		is.Equal(p.Version.Number, num)
		is.Equal(p.Version.Name, want.Name)
		is.Equal(p.Version.Status, want.Status)
		is.Equal(p.Version.Detail, want.Detail)
		is.Equal(p.Version.Etag, want.Etag)
		is.Equal(p.Version.Source, company.API)
		is.Equal(p.Version.SourceTime, t0) // the answer's Date
		is.Equal(p.Date, t0)
		if checked++; checked == 20 {
			break
		}
	}
	is.Equal(checked, 20)
}

func TestProfileNotFoundIsAResult(t *testing.T) {
	is := is.New(t)
	_, url := newSim(t, sim.Config{Seed: 3})
	c := newClient(t, api.Config{URL: url})
	p, err := c.Profile(context.Background(), "ZZ999999")
	is.NoErr(err)
	is.True(!p.Found)
	is.Equal(p.Version, company.DeletedVersion("ZZ999999", company.API, t0))
}

func TestBadNumberIsNeverSent(t *testing.T) {
	s, url := newSim(t, sim.Config{Seed: 3})
	c := newClient(t, api.Config{URL: url})
	for _, n := range []string{"", "123", "sc571653", "SC57165", "SC5716533", "SC57165 ", "../00000", "00000006?x=1", "SC5716\u00e93"} {
		t.Run(fmt.Sprintf("%q", n), func(t *testing.T) {
			is := is.New(t)
			_, err := c.Profile(context.Background(), n)
			is.True(errors.Is(err, api.ErrBadNumber))
			_, err = c.Officers(context.Background(), n)
			is.True(errors.Is(err, api.ErrBadNumber))
			_, err = c.PSCs(context.Background(), n)
			is.True(errors.Is(err, api.ErrBadNumber))
			is.True(api.Inconclusive(err) && !api.Failure(err))
		})
	}
	if n := s.RESTStats().Requests; n != 0 {
		t.Fatalf("%d requests sent for bad numbers", n)
	}
}

// checkList compares a fetched list with the simulator's truth.
func checkList(t *testing.T, s *sim.Sim, num string, got api.OfficerList) {
	t.Helper()
	is := is.NewRelaxed(t)
	truth := s.Officers(num)
	is.Equal(got.Found, truth.Found)
	is.Equal(len(got.Officers), len(truth.Officers))
	for i, want := range truth.Officers {
		if i >= len(got.Officers) {
			break
		}
		o := got.Officers[i]
		is.Equal(o.ID, want.AppointmentID)
		is.Equal(o.Name, want.Name)
		is.Equal(o.Role, want.Role)
		is.Equal(o.AppointedOn, want.AppointedOn)
		is.Equal(o.ResignedOn, want.ResignedOn) // nothing inferred, even for a dissolved company
		var raw map[string]any
		is.NoErr(json.Unmarshal(o.Raw, &raw))
		is.Equal(raw["links"].(map[string]any)["self"], "/company/"+num+"/appointments/"+want.AppointmentID)
	}
}

func TestOfficers(t *testing.T) {
	shapes := []struct {
		name string
		pred func(sim.OfficerList) bool
	}{
		{"MoreThanOnePage", func(l sim.OfficerList) bool { return len(l.Officers) > 2*api.PageSize && !l.NoTotal }},
		{"ManyPagesNoTotal", func(l sim.OfficerList) bool { return len(l.Officers) > api.PageSize && l.NoTotal }},
		{"AFew", func(l sim.OfficerList) bool { return len(l.Officers) == 3 }},
		{"EmptyList200", func(l sim.OfficerList) bool { return l.Found && len(l.Officers) == 0 }},
		{"ListAnswers404", func(l sim.OfficerList) bool { return !l.Found }},
		{"DissolvedFormerOfficers", func(l sim.OfficerList) bool {
			if !l.Dissolved {
				return false
			}
			for _, o := range l.Officers {
				if o.ResignedOn == "" {
					return true
				}
			}
			return false
		}},
	}
	for _, faults := range []sim.APIFaults{{}, {PageCap: 35, OverlapPages: true}} {
		s, url := newSim(t, sim.Config{Seed: 7, Companies: 20_000, StrikeOffShare: 0.2, API: faults})
		c := newClient(t, api.Config{URL: url})
		for _, sh := range shapes {
			t.Run(fmt.Sprintf("cap%d/%s", faults.PageCap, sh.name), func(t *testing.T) {
				num := find(t, s, sh.pred)
				before := s.RESTStats().Requests
				l, err := c.Officers(context.Background(), num)
				if err != nil {
					t.Fatal(err)
				}
				checkList(t, s, num, l)
				truth := s.Officers(num)
				if truth.Dissolved && len(truth.Officers) > 0 && l.ActiveCount != 0 {
					t.Errorf("active_count %d for a dissolved company", l.ActiveCount)
				}
				// Pages as the server sized them: no request wasted, none missed.
				per := api.PageSize
				if faults.PageCap > 0 {
					per = faults.PageCap
				}
				n := len(truth.Officers)
				want := max(1, (n+per-1)/per)
				if truth.NoTotal && n > 0 && n%per == 0 {
					want++ // only an empty page says the list ended
				}
				if got := s.RESTStats().Requests - before; got != int64(want) {
					t.Errorf("%d requests for %d officers at %d a page, want %d", got, n, per, want)
				}
			})
		}
	}
}

// fakeLimiter counts what the client asks of it.
type fakeLimiter struct {
	mu       sync.Mutex
	acquired int
	observed []api.Observation
	refuse   error
}

func (f *fakeLimiter) Acquire(ctx context.Context) (api.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return 0, f.refuse
	}
	f.acquired++
	return api.Ticket(f.acquired), nil
}

func (f *fakeLimiter) Observe(t api.Ticket, o api.Observation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observed = append(f.observed, o)
}

func TestEveryAttemptGoesThroughTheLimiter(t *testing.T) {
	is := is.New(t)
	s, url := newSim(t, sim.Config{Seed: 7, Companies: 20_000, API: sim.APIFaults{Status5xxEvery: 2}})
	lim := &fakeLimiter{}
	c := newClient(t, api.Config{URL: url, Limiter: lim})
	num := find(t, s, func(l sim.OfficerList) bool { return len(l.Officers) > 2*api.PageSize && !l.NoTotal })
	l, err := c.Officers(context.Background(), num) // pages 1, 2, 3 with a 5xx before 2 and 3, each retried once
	is.NoErr(err)
	checkList(t, s, num, l)
	is.Equal(lim.acquired, int(s.RESTStats().Requests)) // every attempt, retries included
	is.Equal(len(lim.observed), lim.acquired)           // each reported back
	var gateway, answered int
	for _, o := range lim.observed {
		switch o.Status {
		case 200:
			answered++
			is.Equal(o.Date, t0)
			is.Equal(o.Limit, 100_000)
			is.True(o.Remain >= 0)
			d, ok := o.ResetIn()
			is.True(ok)
			is.Equal(d, 5*time.Minute)
		case 502, 503, 504:
			gateway++
		}
	}
	is.Equal(answered, 3)
	is.True(gateway >= 2)
}

func TestLimiterRefusalSendsNothing(t *testing.T) {
	is := is.New(t)
	s, url := newSim(t, sim.Config{Seed: 7})
	refusal := errors.New("budget paused until later")
	c := newClient(t, api.Config{URL: url, Limiter: &fakeLimiter{refuse: refusal}})
	_, err := c.Profile(context.Background(), "00000006")
	is.True(errors.Is(err, api.ErrNotSent))
	is.True(errors.Is(err, refusal)) // the limiter's own error is there for errors.As
	is.True(api.Inconclusive(err))
	is.Equal(s.RESTStats().Requests, int64(0))
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name     string
		cfg      sim.Config
		client   api.Config
		kind     error
		requests int64 // sent, retries included
		failure  bool  // counts against the breaker
		want     string
	}{
		{name: "Unauthorized", cfg: sim.Config{APIKey: "right"}, client: api.Config{Key: "wrong"}, kind: api.ErrUnauthorized, requests: 1, want: "CHWATCH_API_KEY"},
		{name: "Forbidden", cfg: sim.Config{API: sim.APIFaults{Status403Every: 1}}, kind: api.ErrForbidden, requests: 1, failure: true},
		{name: "GatewayErrorsRetriedOnce", cfg: sim.Config{API: sim.APIFaults{Status5xxEvery: 1}}, kind: api.ErrTransient, requests: 2, failure: true, want: "HTTP 50"},
		{name: "NoRetries", cfg: sim.Config{API: sim.APIFaults{Status5xxEvery: 1}}, client: api.Config{Retries: -1}, kind: api.ErrTransient, requests: 1, failure: true},
		{name: "Timeout", cfg: sim.Config{API: sim.APIFaults{SlowEvery: 1, SlowFor: time.Hour}}, client: api.Config{Timeout: 50 * time.Millisecond, Retries: -1}, kind: api.ErrTransient, requests: 1, failure: true, want: "api.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			tt.cfg.Seed = 7
			s, url := newSim(t, tt.cfg)
			tt.client.URL = url
			c := newClient(t, tt.client)
			_, err := c.Profile(context.Background(), s.CompanyNumbers()[0])
			is.True(errors.Is(err, tt.kind))
			is.Equal(api.Failure(err), tt.failure)
			var e *api.Error
			is.True(errors.As(err, &e))
			is.True(strings.Contains(err.Error(), "get profile "+s.CompanyNumbers()[0]))
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			is.Equal(s.RESTStats().Requests, tt.requests)
		})
	}
}

func TestRateLimitedCarriesTheReset(t *testing.T) {
	is := is.New(t)
	s, url := newSim(t, sim.Config{Seed: 7, APIRateLimit: 1, APIRateWindow: time.Minute})
	c := newClient(t, api.Config{URL: url})
	num := s.CompanyNumbers()[0]
	_, err := c.Profile(context.Background(), num)
	is.NoErr(err)
	_, err = c.Profile(context.Background(), num)
	is.True(errors.Is(err, api.ErrRateLimited))
	var e *api.Error
	is.True(errors.As(err, &e))
	is.Equal(e.Wait, time.Minute) // Reset minus Date, the server's clock only
	is.True(!api.Failure(err))
	is.Equal(s.RESTStats().Requests, int64(2)) // a 429 is never retried by the client
}

// Answers only something other than Companies House would give.
func TestForeignAnswers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		kind    error
		reqs    int
	}{
		{"WebServer404", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			fmt.Fprint(w, "<html>Not Found</html>")
		}, api.ErrBadRequest, 1},
		{"GarbledOK", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>maintenance</html>") }, api.ErrBadResponse, 1},
		{"OtherCompany", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"company_number":"00000007","company_status":"active"}`)
		}, api.ErrBadResponse, 1},
		{"Redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, api.ErrBadRequest, 1},
		{"BadRequest", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) }, api.ErrBadRequest, 1},
		{"LongRetryAfterIsNotWaited", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(503)
		}, api.ErrTransient, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			var mu sync.Mutex
			reqs := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				reqs++
				mu.Unlock()
				tt.handler(w, r)
			}))
			defer srv.Close()
			c := newClient(t, api.Config{URL: srv.URL, RetryWaitMin: time.Second, RetryWaitMax: 2 * time.Second})
			start := time.Now()
			p, err := c.Profile(context.Background(), "00000006")
			is.True(errors.Is(err, tt.kind))
			is.Equal(p, api.Profile{}) // never taken for a deleted company
			is.True(time.Since(start) < time.Second)
			mu.Lock()
			is.Equal(reqs, tt.reqs)
			mu.Unlock()
		})
	}
}

// The key travels only in the Authorization header and shows nowhere else:
// not in URLs, logs, errors or metrics, whatever goes wrong.
func TestKeyNeverShown(t *testing.T) {
	is := is.New(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	set := metrics.NewSet()
	var seen []string
	var mu sync.Mutex
	s, err := sim.New(sim.Config{Seed: 7, APIKey: testKey, APIRateLimit: 1000, APIRateWindow: time.Second,
		API: sim.APIFaults{Status5xxEvery: 3, Status403Every: 7, SlowEvery: 5, SlowFor: time.Hour}})
	is.NoErr(err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.String())
		mu.Unlock()
		user, pass, ok := r.BasicAuth()
		if !ok || !strings.HasSuffix(user, testKey) || pass != "" {
			t.Errorf("request without the key as Basic user name: %q %q %v", user, pass, ok)
		}
		s.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	d := dbtest.Open(t)
	bud, err := budget.New(context.Background(), d, budget.Config{Key: testKey, Limit: 1000, Window: time.Second,
		ForbiddenWait: time.Millisecond, UnauthorizedWait: time.Millisecond, Logger: log, Metrics: set})
	is.NoErr(err)
	brk := breaker.New(breaker.Config{Failures: 100, Metrics: set}) // in the path, never open: the same requests every run
	c := newClient(t, api.Config{URL: srv.URL, Key: testKey, Logger: log, Metrics: set, Timeout: 50 * time.Millisecond, Limiter: bud})
	var errs []string
	for _, n := range s.CompanyNumbers()[:15] {
		if _, err := breaker.Call(brk, func() (api.Profile, error) { return c.Profile(context.Background(), n) }); err != nil {
			errs = append(errs, err.Error())
		}
		if _, err := breaker.Call(brk, func() (api.OfficerList, error) { return c.Officers(context.Background(), n) }); err != nil {
			errs = append(errs, err.Error())
		}
	}
	is.NoErr(bud.Close(context.Background()))
	var stored strings.Builder
	rows, err := d.R.Query("SELECT * FROM api_budget")
	is.NoErr(err)
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		is.NoErr(rows.Scan(ptrs...))
		fmt.Fprint(&stored, vals...)
	}
	rows.Close()
	// A wrong key, against a simulator without faults: how many requests
	// the faulty one has seen depends on which answers timed out.
	plain, err := sim.New(sim.Config{Seed: 7, APIKey: testKey})
	is.NoErr(err)
	plainSrv := httptest.NewServer(plain.Handler())
	defer plainSrv.Close()
	wrong := newClient(t, api.Config{URL: plainSrv.URL, Key: "wrong-" + testKey, Logger: log, Metrics: set})
	_, err = wrong.Profile(context.Background(), s.CompanyNumbers()[0])
	is.True(errors.Is(err, api.ErrUnauthorized))
	errs = append(errs, err.Error())
	is.True(len(errs) > 5) // plenty went wrong

	var m bytes.Buffer
	set.WritePrometheus(&m)
	encoded := base64.StdEncoding.EncodeToString([]byte(testKey + ":"))
	for what, text := range map[string]string{"logs": logs.String(), "errors": strings.Join(errs, "\n"), "metrics": m.String(), "urls": strings.Join(seen, "\n"), "api_budget": stored.String()} {
		if strings.Contains(text, testKey) || strings.Contains(text, encoded) || strings.Contains(text, "secret-api-key") {
			t.Errorf("the key shows in %s:\n%s", what, text)
		}
	}
	is.True(strings.Contains(logs.String(), "retryablehttp")) // the loggers were used
	is.True(strings.Contains(logs.String(), "REST work paused"))
	is.True(stored.Len() > 0)
	is.True(strings.Contains(m.String(), `chwatch_api_requests_total{code="200"}`))
	is.True(strings.Contains(m.String(), `chwatch_api_requests_total{code="403"}`))
	is.True(strings.Contains(m.String(), `chwatch_api_requests_total{code="timeout"}`))
}

func TestParseObservation(t *testing.T) {
	date := "Sat, 28 Nov 2026 14:21:06 GMT"
	tests := []struct {
		name string
		h    http.Header
		want api.Observation
	}{
		{"AsCompaniesHouseSends", http.Header{"Date": {date}, "X-Ratelimit-Limit": {"600"}, "X-Ratelimit-Remain": {"599"},
			"X-Ratelimit-Reset": {"1795875966"}, "X-Ratelimit-Window": {"5m"}},
			api.Observation{Status: 200, Date: t0, Limit: 600, Remain: 599, Reset: 1795875966, Window: 5 * time.Minute}},
		{"LowerCaseAndRemaining", http.Header{"date": {date}, "x-ratelimit-remaining": {"12"}, "x-ratelimit-window": {"300"}},
			api.Observation{Status: 200, Date: t0, Remain: 12, Window: 5 * time.Minute}},
		{"Malformed", http.Header{"X-Ratelimit-Limit": {"lots"}, "X-Ratelimit-Remain": {"-3"}, "X-Ratelimit-Reset": {"soon"}, "X-Ratelimit-Window": {"a while"}},
			api.Observation{Status: 200, Remain: -1}},
		{"RetryAfterSeconds", http.Header{"Retry-After": {"30"}}, api.Observation{Status: 200, Remain: -1, RetryAfter: 30 * time.Second}},
		{"RetryAfterDateAgainstDate", http.Header{"Date": {date}, "Retry-After": {"Sat, 28 Nov 2026 14:22:06 GMT"}},
			api.Observation{Status: 200, Date: t0, Remain: -1, RetryAfter: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(api.ParseObservation(200, tt.h), tt.want)
		})
	}
	is := is.New(t)
	o := api.Observation{Date: t0, Reset: t0.Add(90 * time.Second).Unix()}
	d, ok := o.ResetIn()
	is.True(ok)
	is.Equal(d, 90*time.Second)
	_, ok = api.Observation{Reset: t0.Unix()}.ResetIn()
	is.True(!ok) // without Date the local clock would have to do: it does not
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []api.Config{
		{URL: "ftp://x"}, {URL: "https://user:" + testKey + "@api.example"}, {URL: "https://api.example?key=1"}, {Timeout: -time.Second},
	} {
		_, err := api.New(cfg)
		if err == nil {
			t.Errorf("%+v accepted", cfg)
		} else if strings.Contains(err.Error(), testKey) {
			t.Errorf("error shows the key: %v", err)
		}
	}
}

// FuzzParseObservation: any header values parse without panicking, and a
// window or reset read is never negative.
func FuzzParseObservation(f *testing.F) {
	f.Add("Sat, 28 Nov 2026 14:21:06 GMT", "600", "599", "1795875966", "5m", "30")
	f.Add("", "-1", "x", "99999999999999999999", "-5m", "Sat, 28 Nov 2026 14:22:06 GMT")
	f.Fuzz(func(t *testing.T, date, limit, remain, reset, window, retry string) {
		o := api.ParseObservation(200, http.Header{"Date": {date}, "X-Ratelimit-Limit": {limit}, "X-Ratelimit-Remain": {remain},
			"X-Ratelimit-Reset": {reset}, "X-Ratelimit-Window": {window}, "Retry-After": {retry}})
		if o.Window < 0 || o.RetryAfter < 0 || o.Limit < 0 || o.Remain < -1 || o.Reset < 0 {
			t.Fatalf("negative value read: %+v", o)
		}
		if d, ok := o.ResetIn(); ok && d < 0 {
			t.Fatalf("negative reset: %+v", o)
		}
	})
}
