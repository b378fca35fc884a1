package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The kinds of error a call returns, inside an *Error: callers branch on
// them with errors.Is, never on message text.
var (
	// ErrBadNumber: the company number is not 8 characters of [A-Z0-9].
	// Nothing was sent (Companies House answers such numbers with a 500):
	// it is a bad job, not a failure of the API.
	ErrBadNumber = errors.New("not a company number (8 characters of A-Z and 0-9)")
	// ErrNotSent: the Limiter refused the request (the budget is paused or
	// spent); its error is wrapped too, so errors.As finds it.
	ErrNotSent = errors.New("request not sent")
	// ErrUnauthorized: 401, the API key is wrong or revoked.
	ErrUnauthorized = errors.New("API key refused (401)")
	// ErrForbidden: 403, Companies House refuses this client (it does so to
	// IPs it dislikes).
	ErrForbidden = errors.New("access forbidden (403)")
	// ErrRateLimited: 429, the key's budget is spent until the window resets.
	ErrRateLimited = errors.New("rate limited (429)")
	// ErrTransient: a timeout, a network error or a 5xx answer, after the
	// client's own few retries.
	ErrTransient = errors.New("transient failure")
	// ErrBadRequest: another 4xx answer, a 404 that is not Companies
	// House's, or a redirect.
	ErrBadRequest = errors.New("request refused")
	// ErrBadResponse: a 2xx answer whose body is not what Companies House
	// sends.
	ErrBadResponse = errors.New("unexpected response")
)

// Error is what a call returns when it fails.
type Error struct {
	Kind   error  // one of the Err... values above
	Op     string // what was attempted: "get profile SC571653"
	Status int    // HTTP status of the last attempt; 0 when none arrived
	// Wait is set for ErrRateLimited: how long until the window resets,
	// as the server's own clock says (X-Ratelimit-Reset minus Date); 0
	// when the answer did not say.
	Wait   time.Duration
	Detail string // what went wrong, never a secret: the cause or an excerpt of the answer
	Err    error  // the underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	if e.Status != 0 && e.Kind != ErrUnauthorized && e.Kind != ErrForbidden && e.Kind != ErrRateLimited {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the kind and the cause, so errors.Is and errors.As see both.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Failure reports whether err counts against the API's health, for the
// circuit breaker: timeouts, network errors, 5xx and 403.
func Failure(err error) bool {
	return errors.Is(err, ErrTransient) || errors.Is(err, ErrForbidden)
}

// Inconclusive reports whether err says nothing about the API's health:
// the request was never sent (a bad number, a refused budget), the caller
// gave up (its context ended), or the answer was unreadable. A breaker
// counts it neither as a success nor as a failure.
func Inconclusive(err error) bool {
	return err != nil && !Failure(err) && (errors.Is(err, ErrBadNumber) || errors.Is(err, ErrNotSent) ||
		errors.Is(err, ErrBadResponse) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
