// Package logging holds the slog handlers chwatch wraps around its log
// output: Redact, a last line of defence that keeps secrets (keys, webhook
// URLs) out of every record, and Sampler, which turns a repeated identical
// warning into one line and a count per minute instead of a flood.
package logging

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Redacted replaces a secret in log output.
const Redacted = "REDACTED"

// minSecret is the shortest value treated as a secret: shorter ones would
// redact ordinary words.
const minSecret = 6

// Secrets expands secret values into every form in which they could reach a
// log: the value itself, its HTTP Basic form (base64 of "value:", how the
// stream key travels) and, for a URL, its path and query, its password and
// each query value (a webhook's token lives there), or its user when it
// has no password (a NATS token); a comma-separated list, each URL of it.
func Secrets(values ...string) []string {
	var out []string
	add := func(s string) {
		if len(s) >= minSecret {
			out = append(out, s)
		}
	}
	for _, v := range values {
		if len(v) < minSecret {
			continue
		}
		if strings.Contains(v, ",") {
			// A list of URLs (feed.nats_url): each one too.
			out = append(out, Secrets(strings.Split(v, ",")...)...)
		}
		add(v)
		add(base64.StdEncoding.EncodeToString([]byte(v + ":")))
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			continue
		}
		if p := u.RequestURI(); p != "/" {
			add(p)
			add(u.EscapedPath())
		}
		if pw, ok := u.User.Password(); ok {
			add(pw)
		} else if u.User != nil {
			add(u.User.Username()) // a token alone: nats://TOKEN@host
		}
		for _, vs := range u.Query() {
			for _, q := range vs {
				add(q)
			}
		}
	}
	return out
}

// Redact returns a handler that replaces every secret in a record's message
// and attributes (strings, errors and anything printed with %v) with
// REDACTED before h sees it.
func Redact(h slog.Handler, secrets []string) slog.Handler {
	var s []string
	for _, x := range secrets {
		if len(x) >= minSecret {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return h
	}
	return &redactor{next: h, secrets: s}
}

type redactor struct {
	next    slog.Handler
	secrets []string
}

func (r *redactor) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r *redactor) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.clean(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.attr(a))
		return true
	})
	return r.next.Handle(ctx, out)
}

func (r *redactor) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = r.attr(a)
	}
	return &redactor{next: r.next.WithAttrs(clean), secrets: r.secrets}
}

func (r *redactor) WithGroup(name string) slog.Handler {
	return &redactor{next: r.next.WithGroup(name), secrets: r.secrets}
}

func (r *redactor) clean(s string) string {
	for _, x := range r.secrets {
		if strings.Contains(s, x) {
			s = strings.ReplaceAll(s, x, Redacted)
		}
	}
	return s
}

func (r *redactor) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.clean(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, x := range g {
			clean[i] = r.attr(x)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		// An error or a struct prints through %v: redact that text.
		s := fmt.Sprint(v.Any())
		if c := r.clean(s); c != s {
			return slog.String(a.Key, c)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// SampleWindow is how long a repeated warning is counted before its count is
// written.
const SampleWindow = time.Minute

// maxKeys bounds the warnings tracked at once; beyond it, new ones pass
// unsampled (nothing is ever hidden for lack of room).
const maxKeys = 1024

// ReasonKey is the one record attribute that tells warnings apart for
// Sampler: "stream connection failed" for a 429 and for a 5xx are two
// warnings, each counted on its own.
const ReasonKey = "reason"

// Sampler is a handler that writes the first of identical warnings (same
// level, message, logger attributes and "reason") in a minute and counts the rest; the
// count is written as one record (the latest of them, with "repeated": N)
// with the first log line after the minute, or by Flush. Info and debug
// records pass untouched: state changes are logged once each by their owners.
type Sampler struct {
	next  slog.Handler
	scope string // the logger's attributes, part of the key
	st    *sampleState
}

type sampleState struct {
	level  slog.Level
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	seen      map[string]*sample
	nextSweep time.Time
}

type sample struct {
	first  time.Time
	count  int
	latest slog.Record
	next   slog.Handler
}

// SampleConfig configures NewSampler; zero values take the defaults.
type SampleConfig struct {
	Window time.Duration    // default SampleWindow
	Now    func() time.Time // default time.Now
}

// NewSampler wraps h.
func NewSampler(h slog.Handler, cfg SampleConfig) *Sampler {
	if cfg.Window <= 0 {
		cfg.Window = SampleWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sampler{next: h, st: &sampleState{level: slog.LevelWarn, window: cfg.Window, now: cfg.Now, seen: map[string]*sample{}}}
}

// Enabled reports whether the wrapped handler takes level l.
func (s *Sampler) Enabled(ctx context.Context, l slog.Level) bool { return s.next.Enabled(ctx, l) }

// WithAttrs returns a sampler whose records carry as; it shares the counts.
func (s *Sampler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(s.scope)
	for _, a := range as {
		b.WriteString(a.String())
		b.WriteByte(' ')
	}
	return &Sampler{next: s.next.WithAttrs(as), scope: b.String(), st: s.st}
}

// WithGroup returns a sampler for group name; it shares the counts.
func (s *Sampler) WithGroup(name string) slog.Handler {
	return &Sampler{next: s.next.WithGroup(name), scope: s.scope + name + ".", st: s.st}
}

// Handle writes rec, or counts it when an identical warning was written less
// than a window ago.
func (s *Sampler) Handle(ctx context.Context, rec slog.Record) error {
	now := s.st.now()
	due := s.st.sweep(now, false)
	for _, d := range due {
		d.next.Handle(ctx, d.latest)
	}
	if rec.Level < s.st.level {
		return s.next.Handle(ctx, rec)
	}
	key := rec.Level.String() + "\x00" + s.scope + "\x00" + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == ReasonKey {
			key += "\x00" + a.Value.String()
			return false
		}
		return true
	})
	st := s.st
	st.mu.Lock()
	sm := st.seen[key]
	if sm != nil && now.Sub(sm.first) < st.window {
		sm.count++
		sm.latest = rec.Clone()
		st.mu.Unlock()
		return nil
	}
	if sm == nil && len(st.seen) >= maxKeys {
		st.mu.Unlock()
		return s.next.Handle(ctx, rec)
	}
	var ended *sample // this warning's last window, not swept yet
	if sm != nil && sm.count > 0 {
		ended = sm
		ended.latest = summary(sm)
	}
	st.seen[key] = &sample{first: now, next: s.next}
	st.mu.Unlock()
	if ended != nil {
		ended.next.Handle(ctx, ended.latest)
	}
	return s.next.Handle(ctx, rec)
}

// Flush writes the counts of every pending warning now (at exit).
func (s *Sampler) Flush() {
	for _, d := range s.st.sweep(s.st.now(), true) {
		d.next.Handle(context.Background(), d.latest)
	}
}

// sweep forgets the warnings whose window ended and returns the records
// that report their counts. It scans at most once per tenth of a window
// unless all is set.
func (st *sampleState) sweep(now time.Time, all bool) []*sample {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !all && now.Before(st.nextSweep) {
		return nil
	}
	st.nextSweep = now.Add(st.window / 10)
	var due []*sample
	for k, sm := range st.seen {
		if !all && now.Sub(sm.first) < st.window {
			continue
		}
		delete(st.seen, k)
		if sm.count == 0 {
			continue
		}
		sm.latest = summary(sm)
		due = append(due, sm)
	}
	return due
}

// summary is the record that reports a window's count: the latest of the
// warnings held back, with how many there were.
func summary(sm *sample) slog.Record {
	r := sm.latest.Clone()
	r.AddAttrs(slog.Int("repeated", sm.count), slog.String("repeated_since", sm.first.UTC().Format(time.RFC3339)))
	return r
}
