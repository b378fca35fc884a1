package breaker_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/breaker"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// recorder keeps the changes the breaker announces.
type recorder struct {
	mu      sync.Mutex
	changes []string
}

func (r *recorder) on(c breaker.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c.From.String()+">"+c.To.String())
	r.mu.Unlock()
}

func (r *recorder) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.changes, " ")
}

// eventually polls cond until it holds or a deadline passes: the breaker
// moves on gobreaker's own (real) clock.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func gauge(tb testing.TB, set *metrics.Set) string {
	tb.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "chwatch_breaker_state ") {
			return strings.TrimPrefix(line, "chwatch_breaker_state ")
		}
	}
	return ""
}

// A dead API opens the breaker; nothing is sent while it is open; a probe
// after open_for fails while the API is down and succeeds once it is back.
func TestOutageOpensProbesAndCloses(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	s, err := sim.New(sim.Config{Seed: 4, APIRateLimit: 100_000})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c, err := api.New(api.Config{URL: srv.URL, Retries: -1})
	is.NoErr(err)
	rec := &recorder{}
	set := metrics.NewSet()
	b := breaker.New(breaker.Config{Failures: 3, OpenFor: 400 * time.Millisecond, OnChange: rec.on, Metrics: set})
	num := s.CompanyNumbers()[0]
	profile := func() (api.Profile, error) {
		return breaker.Call(b, func() (api.Profile, error) { return c.Profile(ctx, num) })
	}

	s.Outage(time.Hour)
	for range 3 {
		_, err := profile()
		is.True(errors.Is(err, api.ErrTransient))
	}
	is.Equal(b.State(), breaker.Open)
	is.Equal(gauge(t, set), "2")
	_, err = profile()
	is.True(errors.Is(err, breaker.ErrOpen))
	is.Equal(s.RESTStats().Requests, int64(3)) // nothing sent while open
	is.True(!b.ProbeAt().IsZero())

	eventually(t, "half-open", func() bool { return b.State() == breaker.HalfOpen })
	is.Equal(gauge(t, set), "1")
	_, err = profile() // the probe, while the API is still down
	is.True(errors.Is(err, api.ErrTransient))
	is.Equal(b.State(), breaker.Open)

	s.Outage(0) // the API is back
	eventually(t, "half-open again", func() bool { return b.State() == breaker.HalfOpen })
	p, err := profile()
	is.NoErr(err)
	is.True(p.Found)
	is.Equal(b.State(), breaker.Closed)
	is.Equal(gauge(t, set), "0")
	is.Equal(rec.got(), "closed>open open>half-open half-open>open open>half-open half-open>closed")
	var m bytes.Buffer
	set.WritePrometheus(&m)
	is.True(strings.Contains(m.String(), `chwatch_breaker_transitions_total{to="open"} 2`))
}

// A 5xx burst longer than the client's retry opens the breaker too.
func TestGatewayBurstOpens(t *testing.T) {
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 4, APIRateLimit: 100_000, API: sim.APIFaults{Status5xxEvery: 3, Status5xxBurst: 10}})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c, err := api.New(api.Config{URL: srv.URL, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	is.NoErr(err)
	b := breaker.New(breaker.Config{Failures: 3, OpenFor: time.Hour})
	var got []error
	for _, num := range s.CompanyNumbers()[:8] {
		_, err := breaker.Call(b, func() (api.Profile, error) { return c.Profile(context.Background(), num) })
		got = append(got, err)
	}
	// Requests 1, 2 answer; 3..12 are gateway errors, two per call with the retry.
	is.NoErr(got[0])
	is.NoErr(got[1])
	for _, err := range got[2:5] {
		is.True(errors.Is(err, api.ErrTransient))
	}
	for _, err := range got[5:] {
		is.True(errors.Is(err, breaker.ErrOpen))
	}
	is.Equal(s.RESTStats().Requests, int64(2+3*2))
}

func TestWhatCounts(t *testing.T) {
	var (
		fail  = &api.Error{Kind: api.ErrTransient, Op: "get"}
		deny  = &api.Error{Kind: api.ErrForbidden, Op: "get", Status: 403}
		bad   = &api.Error{Kind: api.ErrBadNumber, Op: "get"}
		held  = &api.Error{Kind: api.ErrNotSent, Op: "get"}
		junk  = &api.Error{Kind: api.ErrBadResponse, Op: "get"}
		key   = &api.Error{Kind: api.ErrUnauthorized, Op: "get", Status: 401}
		slow  = &api.Error{Kind: api.ErrRateLimited, Op: "get", Status: 429}
		nope  = &api.Error{Kind: api.ErrBadRequest, Op: "get", Status: 400}
		gone  = context.Canceled
		found error
	)
	tests := []struct {
		name string
		errs []error
		want breaker.State
	}{
		{"ConsecutiveFailuresOpen", []error{fail, fail}, breaker.Open},
		{"ForbiddenIsAFailure", []error{deny, fail}, breaker.Open},
		{"AResultBetweenResets", []error{fail, found, fail}, breaker.Closed}, // a 404 or empty list is a nil error
		{"AnAnswerBetweenResets", []error{fail, key, fail, slow, fail, nope, fail}, breaker.Closed},
		{"NothingSentCountsNeitherWay", []error{fail, bad, held, gone, junk, fail}, breaker.Open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			b := breaker.New(breaker.Config{Failures: 2, OpenFor: time.Hour})
			for _, e := range tt.errs {
				err := b.Do(func() error { return e })
				is.True(errors.Is(err, e) || e == nil && err == nil) // the call's own error comes back
			}
			is.Equal(b.State(), tt.want)
		})
	}
}

func TestHalfOpenLetsOneProbeThrough(t *testing.T) {
	is := is.New(t)
	b := breaker.New(breaker.Config{Failures: 1, OpenFor: 50 * time.Millisecond})
	_ = b.Do(func() error { return &api.Error{Kind: api.ErrTransient} })
	eventually(t, "half-open", func() bool { return b.State() == breaker.HalfOpen })

	// A probe that sent nothing does not use up the probe.
	err := b.Do(func() error { return &api.Error{Kind: api.ErrNotSent} })
	is.True(errors.Is(err, api.ErrNotSent))
	is.Equal(b.State(), breaker.HalfOpen)

	release := make(chan struct{})
	inFlight := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- b.Do(func() error { close(inFlight); <-release; return nil })
	}()
	<-inFlight
	is.True(errors.Is(b.Do(func() error { t.Error("a second probe ran"); return nil }), breaker.ErrProbing))
	close(release)
	is.NoErr(<-done)
	is.Equal(b.State(), breaker.Closed)
}
