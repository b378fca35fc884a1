package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/chwatch/chwatch/config"
	"github.com/matryer/is"
)

// values flattens a configuration into key -> value text, through the same
// toml tags the loader uses, so two configurations compare key by key.
func values(tb testing.TB, c *config.Config) map[string]string {
	tb.Helper()
	out := map[string]string{}
	root := reflect.ValueOf(c).Elem()
	for i := 0; i < root.NumField(); i++ {
		sec := root.Type().Field(i).Tag.Get("toml")
		if sec == "" || sec == "-" {
			continue
		}
		sv := root.Field(i)
		for j := 0; j < sv.NumField(); j++ {
			key := sec + "." + sv.Type().Field(j).Tag.Get("toml")
			out[key] = fmt.Sprint(sv.Field(j).Interface())
		}
	}
	return out
}

// load is Load with no host environment and no /etc lookup.
func load(file string, env []string, flags map[string]string) (*config.Config, error) {
	return config.Load(config.Sources{File: file, Env: env, Flags: flags})
}

// copyMode copies testdata/name into a temporary directory with mode.
func copyMode(tb testing.TB, name string, mode os.FileMode) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	dst := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(dst, b, mode); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil { // the umask may have changed it
		tb.Fatal(err)
	}
	return dst
}

const example = "../config.example.toml"

func TestExampleIsDefault(t *testing.T) {
	is := is.New(t)
	c, err := load(example, nil, nil)
	is.NoErr(err)
	is.Equal(c.File, example)
	is.Equal(len(c.Warnings), 0) // empty keys in a world-readable file are no secret
	def := config.Default()
	got, want := values(t, c), values(t, &def)
	is.Equal(len(got), len(config.Keys()))
	for _, k := range config.Keys() {
		if got[k] != want[k] {
			t.Errorf("%s: config.example.toml says %q, Default() says %q", k, got[k], want[k])
		}
	}
}

// A key added to Config without a line in config.example.toml fails here.
func TestExampleDocumentsEveryKey(t *testing.T) {
	var doc map[string]map[string]any
	if _, err := toml.DecodeFile(example, &doc); err != nil {
		t.Fatal(err)
	}
	keys := config.Keys()
	if len(keys) < 30 {
		t.Fatalf("Keys() lists %d keys; SPEC.md's table has more", len(keys))
	}
	for _, k := range keys {
		sec, name, _ := strings.Cut(k, ".")
		if _, ok := doc[sec][name]; !ok {
			t.Errorf("%s is not in config.example.toml: document it with its default", k)
		}
	}
	n := 0
	for _, sec := range doc {
		n += len(sec)
	}
	if n != len(keys) {
		t.Errorf("config.example.toml has %d keys, Keys() %d", n, len(keys))
	}
}

func TestKeysAndEnvName(t *testing.T) {
	is := is.New(t)
	keys := config.Keys()
	is.Equal(keys[0], "database.path")
	seen := map[string]bool{}
	for _, k := range keys {
		is.True(!seen[k]) // no key twice
		seen[k] = true
		is.True(strings.Count(k, ".") == 1)
	}
	for _, k := range []string{"stream.url", "stream.key", "api.key", "status.down_crit", "alert.webhook_url", "strike_off.on_exit"} {
		is.True(seen[k])
	}
	is.Equal(config.EnvName("stream.url"), "CHWATCH_STREAM_URL")
	is.Equal(config.EnvName("strike_off.confirm_exit"), "CHWATCH_STRIKE_OFF_CONFIRM_EXIT")
	is.Equal(config.EnvName("alert.webhook_url"), "CHWATCH_ALERT_WEBHOOK_URL")
}

func TestPrecedence(t *testing.T) {
	good := filepath.Join("testdata", "good.toml")
	tests := []struct {
		name              string
		file              string
		env               []string
		flags             map[string]string
		url, path         string
		idle              time.Duration
		workers           int
		fromFile          string
		onGap             string
		backoffMin        time.Duration
		wantNoFileDefault bool
	}{
		{name: "DefaultsOnly", url: "https://stream.companieshouse.gov.uk", path: "chwatch.db", idle: 90 * time.Second, workers: 2, onGap: "sweep"},
		{name: "File", file: good, url: "https://file.example", path: "/var/lib/chwatch/chwatch.db", idle: 2 * time.Minute, workers: 3, fromFile: good, onGap: "bulk"},
		{
			name: "EnvBeatsFile", file: good,
			env: []string{"CHWATCH_STREAM_URL=https://env.example", "CHWATCH_API_WORKERS=4", "UNRELATED=1", "CHWATCH_STREAM_ON_GAP=sweep"},
			url: "https://env.example", path: "/var/lib/chwatch/chwatch.db", idle: 2 * time.Minute, workers: 4, fromFile: good, onGap: "sweep",
		},
		{
			name: "FlagsBeatEnv", file: good,
			env:   []string{"CHWATCH_STREAM_URL=https://env.example", "CHWATCH_API_WORKERS=4"},
			flags: map[string]string{"stream.url": "https://flag.example", "database.path": "/tmp/flag.db"},
			url:   "https://flag.example", path: "/tmp/flag.db", idle: 2 * time.Minute, workers: 4, fromFile: good, onGap: "bulk",
		},
		{
			name: "EnvWithoutFile",
			env:  []string{"CHWATCH_STREAM_IDLE_TIMEOUT=45s", "CHWATCH_DATABASE_PATH=/srv/c.db"},
			url:  "https://stream.companieshouse.gov.uk", path: "/srv/c.db", idle: 45 * time.Second, workers: 2, onGap: "sweep",
		},
		{
			name: "ConfigEnvNamesFile",
			env:  []string{"CHWATCH_CONFIG=" + good},
			url:  "https://file.example", path: "/var/lib/chwatch/chwatch.db", idle: 2 * time.Minute, workers: 3, fromFile: good, onGap: "bulk",
		},
		{
			name: "ConfigFlagBeatsConfigEnv", file: good,
			env: []string{"CHWATCH_CONFIG=" + filepath.Join("testdata", "does-not-exist.toml")},
			url: "https://file.example", path: "/var/lib/chwatch/chwatch.db", idle: 2 * time.Minute, workers: 3, fromFile: good, onGap: "bulk",
		},
		{
			name: "ValuesTrimmedFromEnv",
			env:  []string{"CHWATCH_API_WORKERS= 5 ", "CHWATCH_STREAM_IDLE_TIMEOUT= 1m "},
			url:  "https://stream.companieshouse.gov.uk", path: "chwatch.db", idle: time.Minute, workers: 5, onGap: "sweep",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			c, err := load(tt.file, tt.env, tt.flags)
			is.NoErr(err)
			is.Equal(c.Stream.URL, tt.url)
			is.Equal(c.Database.Path, tt.path)
			is.Equal(c.Stream.IdleTimeout.Duration, tt.idle)
			is.Equal(c.API.Workers, tt.workers)
			is.Equal(c.Stream.OnGap, tt.onGap)
			is.Equal(c.File, tt.fromFile)
			is.Equal(len(c.Warnings), 0)
			// Keys the sources do not mention keep their defaults.
			is.Equal(c.Stream.BackoffMax.Duration, 5*time.Minute)
			is.Equal(c.Queue.MaxDepth, 1_000_000)
		})
	}
}

// enrich.pscs is false unless the file, the environment or a flag says
// true, in TOML's own spelling.
func TestEnrichPSCs(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		flags map[string]string
		want  bool
	}{
		{name: "Default", want: false},
		{name: "File", file: filepath.Join("testdata", "pscs.toml"), want: true},
		{name: "Env", env: []string{"CHWATCH_ENRICH_PSCS=true"}, want: true},
		{name: "EnvTrimmed", env: []string{"CHWATCH_ENRICH_PSCS= true "}, want: true},
		{name: "EnvBeatsFile", file: filepath.Join("testdata", "pscs.toml"), env: []string{"CHWATCH_ENRICH_PSCS=false"}, want: false},
		{name: "FlagBeatsEnv", env: []string{"CHWATCH_ENRICH_PSCS=false"}, flags: map[string]string{"enrich.pscs": "true"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			c, err := load(tt.file, tt.env, tt.flags)
			is.NoErr(err)
			is.Equal(c.Enrich.PSCs, tt.want)
			is.True(strings.Contains(c.Show(), fmt.Sprintf("[enrich]\npscs = %t\n", tt.want)))
		})
	}
}

func TestBadInput(t *testing.T) {
	td := func(name string) string { return filepath.Join("testdata", name) }
	tests := []struct {
		name  string
		file  string
		env   []string
		flags map[string]string
		want  []string // substrings of the message: the key, the problem, the fix
		not   []string // never in the message
	}{
		{name: "MissingFile", file: td("nope.toml"), want: []string{td("nope.toml"), "does not exist", "config.example.toml"}},
		{name: "MissingFileFromEnv", env: []string{"CHWATCH_CONFIG=" + td("nope.toml")}, want: []string{td("nope.toml"), "does not exist", "CHWATCH_CONFIG"}},
		{name: "FileIsDirectory", file: "testdata", want: []string{"testdata"}},
		{name: "Syntax", file: td("syntax.toml"), want: []string{td("syntax.toml"), "line 3", "config.example.toml"}},
		{name: "UnknownKey", file: td("unknown_key.toml"), want: []string{"stream.idle_timeuot", "unknown key", td("unknown_key.toml"), "spelling"}},
		{name: "UnknownSection", file: td("unknown_section.toml"), want: []string{"streams", "unknown key"}},
		{name: "WrongType", file: td("wrong_type.toml"), want: []string{"stream.max_line_bytes", "string", "integer", "line 2"}},
		{name: "NotADuration", file: td("bad_duration.toml"), want: []string{"stream.idle_timeout", `"soon"`, "90s"}},
		{name: "NegativeDuration", file: td("negative_duration.toml"), want: []string{"api.timeout", "-5s", "positive"}},
		{name: "ZeroDuration", file: td("zero_duration.toml"), want: []string{"breaker.open_for", "0s", "positive"}},
		{name: "BackoffMinAboveMax", file: td("backoff.toml"), want: []string{"stream.backoff_min", "10m", "backoff_max", "at most"}},
		{name: "OnGapMaybe", file: td("on_gap.toml"), want: []string{"stream.on_gap", `"maybe"`, "sweep, bulk"}},
		{name: "BadURL", file: td("bad_url.toml"), want: []string{"api.url", "not an http(s) URL", "https://"}},
		{name: "URLWithCredentials", file: td("url_credentials.toml"), want: []string{"stream.url", "credentials", "CHWATCH_STREAM_KEY"}, not: []string{"streamkey-0123"}},
		{name: "EnvNotADuration", env: []string{"CHWATCH_STREAM_IDLE_TIMEOUT=soon"}, want: []string{"CHWATCH_STREAM_IDLE_TIMEOUT", `"soon"`, "90s"}},
		{name: "EnvNotANumber", env: []string{"CHWATCH_API_WORKERS=two"}, want: []string{"CHWATCH_API_WORKERS", `"two"`, "integer"}},
		{name: "EnvNotABoolean", env: []string{"CHWATCH_ENRICH_PSCS=yes"}, want: []string{"CHWATCH_ENRICH_PSCS", `"yes"`, "true or false"}},
		{name: "EnvBooleanOne", env: []string{"CHWATCH_ENRICH_PSCS=1"}, want: []string{"CHWATCH_ENRICH_PSCS", `"1"`, "true or false"}},
		{name: "BooleanWrongType", file: td("bool_wrong_type.toml"), want: []string{"enrich.pscs", "string", "line 2"}},
		{name: "EnvNotAllowed", env: []string{"CHWATCH_STREAM_ON_GAP=maybe"}, want: []string{"CHWATCH_STREAM_ON_GAP", `"maybe"`, "sweep, bulk"}},
		{name: "PageSizeNotAPowerOfTwo", env: []string{"CHWATCH_DATABASE_PAGE_SIZE=3000"}, want: []string{"CHWATCH_DATABASE_PAGE_SIZE", "3000", "power of two", "2048"}},
		{name: "EnvZeroDuration", env: []string{"CHWATCH_STATUS_STALE_AFTER=0s"}, want: []string{"CHWATCH_STATUS_STALE_AFTER", "positive"}},
		{name: "EnvURLWithCredentials", env: []string{"CHWATCH_API_URL=https://user:apisecret@api.example"}, want: []string{"CHWATCH_API_URL", "credentials", "CHWATCH_API_KEY"}, not: []string{"apisecret"}},
		{name: "EnvUnparsableURLWithCredentials", env: []string{"CHWATCH_STREAM_URL=https://k:se%zzcret@stream.example"}, want: []string{"CHWATCH_STREAM_URL", "not an http(s) URL"}, not: []string{"se%zzcret"}},
		{name: "FlagBeatsBadEnv", env: []string{"CHWATCH_STREAM_ON_GAP=bulk"}, flags: map[string]string{"stream.on_gap": "never"}, want: []string{"stream.on_gap", `"never"`}, not: []string{"CHWATCH_STREAM_ON_GAP"}},
		{name: "FlagUnknownKey", flags: map[string]string{"stream.nope": "1"}, want: []string{"stream.nope", "unknown key"}},
		{name: "FlagBadValue", flags: map[string]string{"queue.max_attempts": "0"}, want: []string{"queue.max_attempts", "at least 1"}},
		{name: "DownWarnAboveCrit", flags: map[string]string{"status.down_warn": "1h"}, want: []string{"status.down_warn", "down_crit"}},
		{name: "ConfirmExitAPIWithoutKey", flags: map[string]string{"strike_off.confirm_exit": "api"}, want: []string{"strike_off.confirm_exit", "CHWATCH_API_KEY"}},
		{name: "CheckpointsUnknown", env: []string{"CHWATCH_DATABASE_CHECKPOINTS=litestream"}, want: []string{"CHWATCH_DATABASE_CHECKPOINTS", `"litestream"`, "auto, external"}},
		{name: "EmptyDatabasePath", flags: map[string]string{"database.path": ""}, want: []string{"database.path", "empty"}},
		{name: "MaxLineBytesTooSmall", flags: map[string]string{"stream.max_line_bytes": "100"}, want: []string{"stream.max_line_bytes", "65536"}},
		{name: "RateLimitAboveGrant", flags: map[string]string{"api.rate_limit": "5000"}, want: []string{"api.rate_limit", "1200"}},
		{name: "ListenNotAnAddress", flags: map[string]string{"http.listen": "notanaddr"}, want: []string{"http.listen", `"notanaddr"`, "127.0.0.1:9464"}},
		{name: "ListenBadPort", flags: map[string]string{"http.listen": "127.0.0.1:99999"}, want: []string{"http.listen", "port", "127.0.0.1:9464"}},
		{name: "EnvListenNotAnAddress", env: []string{"CHWATCH_HTTP_LISTEN=notanaddr"}, want: []string{"CHWATCH_HTTP_LISTEN", `"notanaddr"`}},
		{name: "DurationUnderAMillisecond", flags: map[string]string{"stream.idle_timeout": "1ns"}, want: []string{"stream.idle_timeout", "1ns", "1ms"}},
		{name: "EnvDurationUnderAMillisecond", env: []string{"CHWATCH_STREAM_LINE_TIMEOUT=500us"}, want: []string{"CHWATCH_STREAM_LINE_TIMEOUT", "500µs", "1ms"}},
		{
			name: "FeedWebhookNotAURL", env: []string{"CHWATCH_FEED_WEBHOOK_URL=hooks.example/feed/T0K3N-feed-secret"},
			want: []string{"CHWATCH_FEED_WEBHOOK_URL", "not an http(s) URL"}, not: []string{"T0K3N-feed-secret"},
		},
		{
			name: "FeedNATSNotAURL", env: []string{"CHWATCH_FEED_NATS_URL=http://user:natspassw0rd@nats.example:4222"},
			want: []string{"CHWATCH_FEED_NATS_URL", "not a NATS URL", "nats://host:4222"}, not: []string{"natspassw0rd"},
		},
		{
			name: "FeedNATSOneOfManyBad", flags: map[string]string{"feed.nats_url": "nats://a:4222,b:4222"},
			want: []string{"feed.nats_url", "not a NATS URL"},
		},
		{name: "FeedSubjectWildcard", flags: map[string]string{"feed.nats_subject": "chwatch.>"}, want: []string{"feed.nats_subject", "wildcard", "chwatch.changes"}},
		{name: "FeedSubjectEmptyToken", env: []string{"CHWATCH_FEED_NATS_SUBJECT=chwatch..changes"}, want: []string{"CHWATCH_FEED_NATS_SUBJECT", "empty token"}},
		{name: "FeedSubjectEmpty", flags: map[string]string{"feed.nats_subject": ""}, want: []string{"feed.nats_subject", "empty"}},
		{
			name: "WebhookNotAURL", env: []string{"CHWATCH_ALERT_WEBHOOK_URL=hooks.example/services/T0K3N-webhook-secret"},
			want: []string{"CHWATCH_ALERT_WEBHOOK_URL", "not an http(s) URL"}, not: []string{"T0K3N-webhook-secret"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			c, err := load(tt.file, tt.env, tt.flags)
			is.True(err != nil) // bad input must fail
			is.True(c == nil)
			var ce *config.Error
			is.True(errors.As(err, &ce)) // a *config.Error
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(msg, n) {
					t.Errorf("message %q shows the secret %q", msg, n)
				}
			}
			if ce.Fix == "" && !strings.Contains(msg, "(") {
				t.Errorf("message %q gives no fix", msg)
			}
		})
	}
}

func TestUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	is := is.New(t)
	f := copyMode(t, "good.toml", 0o000)
	_, err := load(f, nil, nil)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), f))
	is.True(strings.Contains(err.Error(), "not readable"))
	is.True(strings.Contains(err.Error(), "group"))
}

func TestSecretFileMode(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		mode  os.FileMode
		warns bool
	}{
		{"WorldReadable", "secret.toml", 0o644, true},
		{"GroupReadable", "secret.toml", 0o640, true},
		{"OwnerOnly", "secret.toml", 0o600, false},
		{"NoSecretWorldReadable", "good.toml", 0o644, false},
		{"EmptySecretWorldReadable", "empty_secret.toml", 0o644, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			f := copyMode(t, tt.file, tt.mode)
			c, err := load(f, nil, nil)
			is.NoErr(err)
			if !tt.warns {
				is.Equal(len(c.Warnings), 0)
				return
			}
			is.Equal(len(c.Warnings), 1)
			w := c.Warnings[0]
			for _, s := range []string{f, "stream.key", "chmod 600", "CHWATCH_STREAM_KEY"} {
				if !strings.Contains(w, s) {
					t.Errorf("warning %q lacks %q", w, s)
				}
			}
			is.True(!strings.Contains(w, "file-stream-key-0123456789")) // never the key itself
			is.Equal(c.Stream.Key, "file-stream-key-0123456789")
		})
	}
}

func TestShowRedacts(t *testing.T) {
	const (
		streamKey = "stream-key-5ecret-aaaa"
		apiKey    = "api-key-5ecret-bbbb"
		hookToken = "T0K3N-5ecret-cccc"
	)
	tests := []struct {
		name        string
		env         []string
		confirmExit string
		secrets     []string
	}{
		{name: "NoKeys", confirmExit: "stream"},
		{name: "StreamKeyOnly", env: []string{"CHWATCH_STREAM_KEY=" + streamKey}, confirmExit: "stream", secrets: []string{streamKey}},
		{
			name:        "AllSecrets",
			env:         []string{"CHWATCH_STREAM_KEY=" + streamKey, "CHWATCH_API_KEY=" + apiKey, "CHWATCH_ALERT_WEBHOOK_URL=https://hooks.example/services/" + hookToken},
			confirmExit: "api", secrets: []string{streamKey, apiKey, hookToken},
		},
		{name: "ExplicitStreamWithAPIKey", env: []string{"CHWATCH_API_KEY=" + apiKey, "CHWATCH_STRIKE_OFF_CONFIRM_EXIT=stream"}, confirmExit: "stream", secrets: []string{apiKey}},
		{name: "WebhookWithUserInfo", env: []string{"CHWATCH_ALERT_WEBHOOK_URL=https://u:" + hookToken + "@hooks.example/x"}, confirmExit: "stream", secrets: []string{hookToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			c, err := load("", tt.env, nil)
			is.NoErr(err)
			is.Equal(c.ConfirmExit(), tt.confirmExit)
			out := c.Show()
			for _, s := range tt.secrets {
				is.True(!strings.Contains(out, s)) // a secret in config show
			}
			is.True(strings.Contains(out, `confirm_exit = "`+tt.confirmExit+`"`))
			if len(tt.secrets) > 0 {
				is.True(strings.Contains(out, "REDACTED"))
			}
			// Show is valid TOML that loads back into the same configuration,
			// secrets aside.
			dir := t.TempDir()
			f := filepath.Join(dir, "shown.toml")
			is.NoErr(os.WriteFile(f, []byte(out), 0o600))
			back, err := load(f, nil, nil)
			if len(tt.secrets) == 0 {
				is.NoErr(err)
				got, want := values(t, back), values(t, c)
				want["strike_off.confirm_exit"] = tt.confirmExit
				is.Equal(got, want)
			}
			for _, k := range config.Keys() {
				sec, name, _ := strings.Cut(k, ".")
				is.True(strings.Contains(out, "["+sec+"]\n"))
				is.True(strings.Contains(out, "\n"+name+" = "))
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	is := is.New(t)
	is.Equal((&config.Error{Key: "api.url", Problem: "bad", Fix: "fix it"}).Error(), "api.url: bad (fix it)")
	is.Equal((&config.Error{Problem: "bad"}).Error(), "bad")
}

func TestDurationText(t *testing.T) {
	is := is.New(t)
	var d config.Duration
	is.NoErr(d.UnmarshalText([]byte("1h30m")))
	is.Equal(d.Duration, 90*time.Minute)
	b, err := d.MarshalText()
	is.NoErr(err)
	is.Equal(string(b), "1h30m0s")
	err = d.UnmarshalText([]byte("90"))
	is.True(err != nil) // a bare number has no unit
	is.True(strings.Contains(err.Error(), "90s"))
}

// An environment variable in chwatch's namespace that names no key is a
// typo until proven otherwise: Load names it (with the key it resembles) in
// UnknownEnv and in a warning. CHWATCH_CONFIG is the one variable that is
// not a key; CHWATCHTEST_ variables are outside the namespace.
func TestUnknownEnvironmentVariable(t *testing.T) {
	is := is.New(t)
	c, err := load("", []string{"CHWATCH_STREAM_IDEL_TIMEOUT=60s", "CHWATCH_BOGUS=1", "CHWATCH_CONFIG=", "CHWATCHTEST_CRASH_SEED=4", "CHWATCH_API_KEY=k"}, nil)
	is.NoErr(err)
	is.Equal(c.UnknownEnv, []string{"CHWATCH_BOGUS", "CHWATCH_STREAM_IDEL_TIMEOUT"})
	all := strings.Join(c.Warnings, "\n")
	is.True(strings.Contains(all, "CHWATCH_STREAM_IDEL_TIMEOUT"))
	is.True(strings.Contains(all, "did you mean CHWATCH_STREAM_IDLE_TIMEOUT"))
	is.True(strings.Contains(all, "CHWATCH_BOGUS"))
	is.Equal(c.Stream.IdleTimeout.Duration, 90*time.Second) // the typo set nothing
	err = c.CheckEnv()
	var ce *config.Error
	is.True(errors.As(err, &ce))
	is.Equal(ce.Key, "CHWATCH_BOGUS")
	is.True(strings.Contains(err.Error(), "CHWATCH_STREAM_IDEL_TIMEOUT"))

	c, err = load("", []string{"CHWATCH_STREAM_IDLE_TIMEOUT=60s", "CHWATCH_CONFIG="}, nil)
	is.NoErr(err)
	is.Equal(len(c.UnknownEnv), 0)
	is.NoErr(c.CheckEnv())
}

// Values below a production floor load (tests use them on purpose) but are
// warned about, naming the key (or the variable that set it), the floor and
// why. The defaults are all above their floors.
func TestProductionFloors(t *testing.T) {
	is := is.New(t)
	c, err := load("", nil, nil)
	is.NoErr(err)
	is.Equal(len(c.Warnings), 0) // the defaults are production values

	c, err = load("", []string{"CHWATCH_STREAM_IDLE_TIMEOUT=300ms"}, map[string]string{"stream.backoff_min": "5ms"})
	is.NoErr(err)
	all := strings.Join(c.Warnings, "\n")
	for _, want := range []string{"CHWATCH_STREAM_IDLE_TIMEOUT", "300ms", "45s", "heartbeat", "stream.backoff_min", "5ms", "1s"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings %q lack %q", all, want)
		}
	}
	is.Equal(c.Stream.IdleTimeout.Duration, 300*time.Millisecond) // warned, not refused
	for _, f := range config.Floors() {
		d := config.Default()
		v, ok := values(t, &d)[f.Key]
		is.True(ok) // every floor is a key
		dur, err := time.ParseDuration(v)
		is.NoErr(err)
		if dur < f.Min {
			t.Errorf("%s: default %s is below its floor %s", f.Key, dur, f.Min)
		}
	}
}

// The README's table of production floors lists every floor with its value.
func TestREADMEListsFloors(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) == 6 {
			rows[strings.TrimSpace(cells[1])] = strings.Trim(strings.TrimSpace(cells[3]), "`")
		}
	}
	for _, f := range config.Floors() {
		got, ok := rows[f.Key]
		if !ok {
			t.Errorf("README.md has no floor row for %s", f.Key)
			continue
		}
		if d, err := time.ParseDuration(got); err != nil || d != f.Min {
			t.Errorf("README.md gives %s a floor of %q, the code %s", f.Key, got, f.Min)
		}
	}
}
