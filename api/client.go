// Package api is chwatch's client of the Companies House REST API: a
// company's profile, and every page of its officer and PSC lists and of its
// strike-off filing history, over go-retryablehttp. Every attempt waits on
// a Limiter (the shared budget)
// and reports its status and rate-limit headers back to it; failures come
// back as *Error, classified by kind. It knows HTTP and Companies House's
// JSON, nothing of SQLite.
package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/go-retryablehttp"
)

// Defaults for the zero values of Config.
const (
	DefaultURL          = "https://api.company-information.service.gov.uk"
	DefaultTimeout      = 30 * time.Second
	DefaultRetries      = 1
	DefaultRetryWaitMin = time.Second
	DefaultRetryWaitMax = 10 * time.Second
)

// maxBody bounds what is read of one answer: a profile is a few kB, a page
// of 100 officers some hundreds.
const maxBody = 8 << 20

// Config configures a Client.
type Config struct {
	URL string // api.url; DefaultURL when empty
	// Key is the API key, sent as the Basic-auth user name with an empty
	// password, never in a URL. It never appears in logs, errors or metrics.
	Key string
	// Timeout bounds one attempt, headers and body (api.timeout).
	Timeout time.Duration
	// Retries is how many more attempts a call makes after a transient
	// failure (timeout, network error, 5xx): DefaultRetries when 0, none
	// when negative. Every attempt spends a request of the key's budget, so
	// they are kept few: the queue retries a failed job later.
	Retries int
	// RetryWaitMin and RetryWaitMax bound the backoff between attempts. A
	// Retry-After longer than RetryWaitMax is not waited for (retryablehttp
	// itself does not cap it): the call fails at once.
	RetryWaitMin, RetryWaitMax time.Duration
	// Limiter paces every attempt and hears its outcome; nil sends freely.
	Limiter Limiter
	// Transport carries the requests; a pooled transport when nil.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Metrics is where chwatch_api_requests_total{code} goes (a private
	// set when nil).
	Metrics   *metrics.Set
	UserAgent string // default "chwatch"
	// Now stamps a version when an answer has no Date header (default
	// time.Now).
	Now func() time.Time
}

// Client calls the REST API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	auth string // Authorization header value; never shown
	rc   *retryablehttp.Client
	log  *slog.Logger
	m    *metrics.Set
}

// New validates cfg, fills in its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api.url: want an http or https base URL such as %s", DefaultURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("api.url holds credentials: put the key in api.key (CHWATCH_API_KEY) instead")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("api.url %q: want a base URL without query or fragment", cfg.URL)
	}
	for _, d := range []struct {
		key string
		v   *time.Duration
		def time.Duration
	}{
		{"api.timeout", &cfg.Timeout, DefaultTimeout},
		{"api retry wait min", &cfg.RetryWaitMin, DefaultRetryWaitMin},
		{"api retry wait max", &cfg.RetryWaitMax, DefaultRetryWaitMax},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("%s %s: want a positive duration, or 0 for the default %s", d.key, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.RetryWaitMax < cfg.RetryWaitMin {
		cfg.RetryWaitMax = cfg.RetryWaitMin
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.Transport == nil {
		cfg.Transport = defaultTransport()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "chwatch"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{
		cfg:  cfg,
		base: strings.TrimSuffix(cfg.URL, "/"),
		log:  cfg.Logger.With("component", "api"),
		m:    cfg.Metrics,
	}
	// Every code a dashboard or alert rule asks for exists from the start,
	// at 0, rather than appearing with its first answer.
	for _, code := range presetCodes {
		c.m.GetOrCreateCounter(`chwatch_api_requests_total{code="` + code + `"}`)
	}
	if cfg.Key != "" {
		c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Key+":"))
	}
	c.rc = &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: &attempts{c: c, next: cfg.Transport},
			// Companies House does not redirect: a redirect means a
			// wrong api.url, and should not spend more budget.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Logger:       leveled{log: c.log, secret: cfg.Key},
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     cfg.Retries,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return c, nil
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
}

// presetCodes are the chwatch_api_requests_total codes registered by New.
var presetCodes = []string{"200", "401", "403", "404", "429", "500", "502", "503", "504", "timeout", "error"}

var numberRE = regexp.MustCompile(`^[A-Z0-9]{8}$`)

// ValidNumber reports whether number is 8 characters of [A-Z0-9], the only
// form the client sends.
func ValidNumber(number string) bool { return numberRE.MatchString(number) }

// checkNumber refuses a number that must not be sent.
func checkNumber(op, number string) error {
	if ValidNumber(number) {
		return nil
	}
	return &Error{Kind: ErrBadNumber, Op: op, Detail: fmt.Sprintf("%q", printable(number, 40))}
}

// checkRetry retries transport failures and 5xx, nothing else: a 429 is the
// budget's business, a 401 or 403 must never be retried in a loop.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return !errors.Is(err, ErrNotSent), nil
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
		// A server asking for a long pause gets it from the queue.
		o := ParseObservation(resp.StatusCode, resp.Header)
		return o.RetryAfter <= c.cfg.RetryWaitMax, nil
	}
	return false, nil
}

// backoff is retryablehttp's, clamped: it honours Retry-After without a cap.
func (c *Client) backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	return min(retryablehttp.DefaultBackoff(lo, hi, attempt, resp), hi)
}

// answer is a response read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
	date   time.Time
}

// get sends GET path (with its query) and reads the answer whole. A
// transport failure, a 5xx after the retries or a refusal by the Limiter is
// returned as an *Error; any other answer is returned for the caller to
// judge.
func (c *Client) get(ctx context.Context, op, path string) (answer, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %w", op, err)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := c.rc.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return answer{}, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		var ns *notSent
		if errors.As(err, &ns) {
			return answer{}, &Error{Kind: ErrNotSent, Op: op, Detail: c.scrub(ns.err.Error()), Err: ns.err}
		}
		return answer{}, &Error{Kind: ErrTransient, Op: op, Detail: c.describe(err), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return answer{}, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return answer{}, &Error{Kind: ErrTransient, Op: op, Status: resp.StatusCode, Detail: "reading the answer: " + c.describe(err), Err: err}
	}
	if len(body) > maxBody {
		return answer{}, &Error{Kind: ErrBadResponse, Op: op, Status: resp.StatusCode, Detail: fmt.Sprintf("answer longer than %d bytes", maxBody)}
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: body, date: c.cfg.Now().UTC()}
	if t, err := http.ParseTime(header(resp.Header, "Date")); err == nil {
		a.date = t.UTC()
	}
	if resp.StatusCode >= 500 {
		return a, &Error{Kind: ErrTransient, Op: op, Status: resp.StatusCode, Detail: excerpt(body)}
	}
	return a, nil
}

// refused turns an answer that is not a result into an *Error.
func (c *Client) refused(op string, a answer) *Error {
	e := &Error{Op: op, Status: a.status, Detail: excerpt(a.body)}
	switch {
	case a.status == http.StatusUnauthorized:
		e.Kind, e.Detail = ErrUnauthorized, "check api.key / CHWATCH_API_KEY"
	case a.status == http.StatusForbidden:
		e.Kind, e.Detail = ErrForbidden, "Companies House refuses this client; REST work pauses (api.forbidden_wait)"
	case a.status == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
		o := ParseObservation(a.status, a.header)
		if d, ok := o.ResetIn(); ok {
			e.Wait = d
		} else {
			e.Wait = o.RetryAfter
		}
		e.Detail = "the budget resets in " + e.Wait.String()
		if e.Wait == 0 {
			e.Detail = "the answer does not say when the budget resets"
		}
	case a.status >= 300 && a.status < 400:
		e.Kind, e.Detail = ErrBadRequest, "unexpected redirect to "+printable(a.header.Get("Location"), 120)+" (is api.url right?)"
	case a.status >= 400:
		e.Kind = ErrBadRequest
	default:
		e.Kind = ErrBadResponse
	}
	return e
}

// describe says what a transport error was, without the URL's query
// details or anything secret.
func (c *Client) describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no complete answer within " + c.cfg.Timeout.String() + " (api.timeout)"
	}
	return c.scrub(err.Error())
}

// scrub removes the key from text, in case a lower layer ever echoes it.
func (c *Client) scrub(s string) string {
	if c.cfg.Key == "" {
		return s
	}
	s = strings.ReplaceAll(s, c.cfg.Key, "REDACTED")
	if c.auth != "" {
		s = strings.ReplaceAll(s, strings.TrimPrefix(c.auth, "Basic "), "REDACTED")
	}
	return s
}

// excerpt is the start of an answer's body, printable and without HTML
// tags (gateways answer with small pages), for error messages.
func excerpt(b []byte) string { return printable(tags.ReplaceAllString(string(b), " "), 200) }

var tags = regexp.MustCompile(`<[^>]*>`)

func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// notSent marks a request the Limiter refused.
type notSent struct{ err error }

func (e *notSent) Error() string { return e.err.Error() }

func (e *notSent) Is(target error) bool { return target == ErrNotSent }

// attempts is the transport under retryablehttp: each attempt waits on the
// Limiter, gets its own timeout, and is reported to the Limiter and counted.
type attempts struct {
	c    *Client
	next http.RoundTripper
}

func (t *attempts) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	var ticket Ticket
	if lim := c.cfg.Limiter; lim != nil {
		tk, err := lim.Acquire(req.Context())
		if err != nil {
			if req.Context().Err() != nil {
				return nil, req.Context().Err()
			}
			return nil, &notSent{err: err}
		}
		ticket = tk
	}
	// The timeout starts after the budget's wait, and covers the body.
	ctx, cancel := context.WithTimeout(req.Context(), c.cfg.Timeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		code := "error"
		if errors.Is(err, context.DeadlineExceeded) && req.Context().Err() == nil {
			code = "timeout"
		}
		c.m.GetOrCreateCounter(`chwatch_api_requests_total{code="` + code + `"}`).Inc()
		if lim := c.cfg.Limiter; lim != nil {
			lim.Observe(ticket, Observation{Remain: -1})
		}
		return nil, err
	}
	c.m.GetOrCreateCounter(`chwatch_api_requests_total{code="` + strconv.Itoa(resp.StatusCode) + `"}`).Inc()
	if lim := c.cfg.Limiter; lim != nil {
		lim.Observe(ticket, ParseObservation(resp.StatusCode, resp.Header))
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// leveled adapts slog to retryablehttp's LeveledLogger. retryablehttp logs
// a line per attempt; a failed attempt is a warning, not an error of
// chwatch (the caller decides what the call's failure means). Every value
// is scrubbed of the key, though retryablehttp never sees it outside a
// header it does not log.
type leveled struct {
	log    *slog.Logger
	secret string
}

func (l leveled) emit(level slog.Level, msg string, kv []any) {
	for _, v := range kv {
		if err, ok := v.(error); ok && errors.Is(err, context.Canceled) {
			// The caller gave up (a stop): nothing went wrong.
			level = min(level, slog.LevelDebug)
		}
	}
	if l.secret != "" {
		msg = strings.ReplaceAll(msg, l.secret, "REDACTED")
		for i, v := range kv {
			s := fmt.Sprint(v)
			if strings.Contains(s, l.secret) {
				kv[i] = strings.ReplaceAll(s, l.secret, "REDACTED")
			}
		}
	}
	l.log.Log(context.Background(), level, "retryablehttp: "+msg, kv...)
}

func (l leveled) Error(msg string, kv ...any) { l.emit(slog.LevelWarn, msg, kv) }
func (l leveled) Warn(msg string, kv ...any)  { l.emit(slog.LevelWarn, msg, kv) }
func (l leveled) Info(msg string, kv ...any)  { l.emit(slog.LevelDebug, msg, kv) }
func (l leveled) Debug(msg string, kv ...any) { l.emit(slog.LevelDebug, msg, kv) }
