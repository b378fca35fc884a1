package logging_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/logging"
	"github.com/matryer/is"
)

func TestRedact(t *testing.T) {
	const key = "STREAMKEY-d3adb33f"
	const hook = "https://hooks.example.com/services/T000/B000/tok3n-XYZ?sig=abcdef123456"
	const nats = "nats://natsuser:natspassw0rd@a.example:4222,nats://s3cr3t-t0ken@b.example:4222"
	tests := []struct {
		name   string
		log    func(l *slog.Logger)
		secret string
	}{
		{"Message", func(l *slog.Logger) { l.Warn("key is " + key) }, key},
		{"StringAttr", func(l *slog.Logger) { l.Info("x", "k", "Basic "+key) }, key},
		{"ErrorAttr", func(l *slog.Logger) { l.Error("x", "err", fmt.Errorf("post %s: refused", hook)) }, "tok3n-XYZ"},
		{"Group", func(l *slog.Logger) { l.Info("x", slog.Group("g", "url", hook)) }, "abcdef123456"},
		{"WithAttrs", func(l *slog.Logger) { l.With("key", key).Info("x") }, key},
		{"BasicAuthForm", func(l *slog.Logger) {
			l.Info("x", "header", "Basic "+base64.StdEncoding.EncodeToString([]byte(key+":")))
		}, base64.StdEncoding.EncodeToString([]byte(key + ":"))},
		{"PathOnly", func(l *slog.Logger) { l.Info("GET /services/T000/B000/tok3n-XYZ failed") }, "tok3n-XYZ"},
		{"Stringer", func(l *slog.Logger) { l.Info("x", "v", struct{ K string }{key}) }, key},
		{"NATSPassword", func(l *slog.Logger) { l.Warn("connect: password natspassw0rd refused") }, "natspassw0rd"},
		{"NATSToken", func(l *slog.Logger) { l.Warn("x", "err", errors.New("token s3cr3t-t0ken rejected")) }, "s3cr3t-t0ken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			var out bytes.Buffer
			l := slog.New(logging.Redact(slog.NewJSONHandler(&out, nil), logging.Secrets(key, hook, nats, "")))
			tt.log(l)
			is.True(out.Len() > 0)
			is.True(!strings.Contains(out.String(), tt.secret)) // secret leaked
			is.True(strings.Contains(out.String(), logging.Redacted))
		})
	}
}

func TestRedactLeavesOrdinaryText(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	h := slog.NewTextHandler(&out, nil)
	is.Equal(logging.Redact(h, logging.Secrets("", "abc")), slog.Handler(h)) // nothing worth redacting: h itself
	l := slog.New(logging.Redact(h, logging.Secrets("SECRETSECRET")))
	l.Info("stream connected", "url", "http://127.0.0.1:1/companies", "n", 3, "err", errors.New("eof"))
	is.True(strings.Contains(out.String(), `msg="stream connected" url=http://127.0.0.1:1/companies n=3 err=eof`))
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestSamplerCountsRepeats(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	s := logging.NewSampler(slog.NewJSONHandler(&out, nil), logging.SampleConfig{Now: c.now})
	l := slog.New(s).With("component", "ingest")
	for i := range 100 {
		l.Error("commit batch failed", "retry", i)
		l.Info("progress", "i", i) // info is never sampled
		c.t = c.t.Add(100 * time.Millisecond)
	}
	slog.New(s).With("component", "stream").Error("commit batch failed") // another logger: its own count
	l.Error("commit batch failed", "reason", "5xx")                      // another reason: its own count
	l.Error("commit batch failed", "reason", "5xx")
	got := lines(t, &out)
	is.Equal(len(got), 103)
	is.Equal(got[0]["retry"], float64(0))
	c.t = c.t.Add(time.Minute)
	l.Info("progress") // the next line after the window writes the count first
	got = lines(t, &out)
	is.Equal(len(got), 106)
	sum := got[103]
	if sum["reason"] != nil { // the two counts come in map order
		sum = got[104]
	}
	is.Equal(sum["msg"], "commit batch failed")
	is.Equal(sum["repeated"], float64(99))
	is.Equal(sum["retry"], float64(99)) // the latest of them
	is.Equal(sum["repeated_since"], "2026-11-28T12:00:00Z")
	is.Equal(got[105]["msg"], "progress")

	// After the window the warning is written again at once.
	l.Error("commit batch failed", "retry", 100)
	got = lines(t, &out)
	is.Equal(got[len(got)-1]["retry"], float64(100))
	is.Equal(got[len(got)-1]["repeated"], nil)
}

// The same warning arriving right after its window ends reports the old
// window's count before itself, even between sweeps.
func TestSamplerRepeatAfterWindow(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	c := &clock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	l := slog.New(logging.NewSampler(slog.NewJSONHandler(&out, nil), logging.SampleConfig{Now: c.now}))
	l.Warn("heartbeat not written")
	l.Warn("heartbeat not written")
	l.Warn("heartbeat not written")
	c.t = c.t.Add(time.Minute)
	l.Warn("heartbeat not written")
	got := lines(t, &out)
	is.Equal(len(got), 3)
	is.Equal(got[1]["repeated"], float64(2))
	is.Equal(got[2]["repeated"], nil)
}

func TestSamplerFlush(t *testing.T) {
	is := is.New(t)
	var out bytes.Buffer
	s := logging.NewSampler(slog.NewJSONHandler(&out, nil), logging.SampleConfig{})
	l := slog.New(s)
	l.Warn("a")
	l.Warn("a")
	l.Warn("b")
	s.Flush()
	got := lines(t, &out)
	is.Equal(len(got), 3)
	is.Equal(got[2]["msg"], "a")
	is.Equal(got[2]["repeated"], float64(1))
	s.Flush() // nothing pending
	is.Equal(len(lines(t, &out)), 3)
}
