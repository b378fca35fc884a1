package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Ticket identifies one request a Limiter let through, so that what became
// of it can be matched to it.
type Ticket int64

// Limiter paces requests and hears their outcome: the REST budget. The
// client calls Acquire before every attempt (each page of a list, each
// retry: every one spends a request of the key's budget) and Observe after.
type Limiter interface {
	// Acquire waits until one request may be sent and takes it. An error
	// means the request is not sent; the call fails with ErrNotSent
	// wrapping it.
	Acquire(ctx context.Context) (Ticket, error)
	// Observe reports what the request acquired as t met. It is called
	// exactly once per ticket, as soon as the response's headers arrive
	// (or the attempt failed without a response).
	Observe(t Ticket, o Observation)
}

// Observation is what one attempt told about the budget: its status and
// the rate-limit headers, read case-insensitively.
type Observation struct {
	Status int       // HTTP status; 0 when no response arrived (network error, timeout)
	Date   time.Time // the Date header: the server's clock; zero when absent
	Limit  int       // X-Ratelimit-Limit; 0 when absent
	Remain int       // X-Ratelimit-Remain (or -Remaining); -1 when absent
	// Reset is X-Ratelimit-Reset: when the window resets, in unix seconds
	// on the server's clock (0 when absent). Compare it with Date, never
	// with the local clock: a Raspberry Pi's clock can be far off.
	Reset      int64
	Window     time.Duration // X-Ratelimit-Window ("5m"); 0 when absent
	RetryAfter time.Duration // Retry-After, in seconds or as a date against Date; 0 when absent
}

// ResetIn is how long after the response the window resets: Reset minus
// Date, both from the server's clock. ok is false unless both are present
// and Reset is not before Date.
func (o Observation) ResetIn() (d time.Duration, ok bool) {
	if o.Reset == 0 || o.Date.IsZero() {
		return 0, false
	}
	d = time.Unix(o.Reset, 0).Sub(o.Date)
	return d, d >= 0
}

// ParseObservation reads an answer's status and rate-limit headers.
// Malformed values count as absent.
func ParseObservation(status int, h http.Header) Observation {
	o := Observation{Status: status, Remain: -1}
	if t, err := http.ParseTime(header(h, "Date")); err == nil {
		o.Date = t
	}
	if n, err := strconv.Atoi(header(h, "X-Ratelimit-Limit")); err == nil && n > 0 {
		o.Limit = n
	}
	rem := header(h, "X-Ratelimit-Remain")
	if rem == "" {
		rem = header(h, "X-Ratelimit-Remaining")
	}
	if n, err := strconv.Atoi(rem); err == nil && n >= 0 {
		o.Remain = n
	}
	if n, err := strconv.ParseInt(header(h, "X-Ratelimit-Reset"), 10, 64); err == nil && n > 0 {
		o.Reset = n
	}
	o.Window = parseWindow(header(h, "X-Ratelimit-Window"))
	if ra := header(h, "Retry-After"); ra != "" {
		if n, err := strconv.Atoi(ra); err == nil && n >= 0 {
			o.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil && !o.Date.IsZero() && t.After(o.Date) {
			o.RetryAfter = t.Sub(o.Date)
		}
	}
	return o
}

// parseWindow reads "5m", "300s" or a bare number of seconds.
func parseWindow(s string) time.Duration {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// header finds a header whatever the case of its name: net/http
// canonicalises names it parses, but not names set directly in the map.
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, name) {
			return v[0]
		}
	}
	return ""
}
