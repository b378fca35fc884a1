// Package config loads chwatch's configuration from defaults, a TOML file,
// CHWATCH_* environment variables and flags, in that order of precedence
// (later wins), and validates it with messages that name the key and the fix.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultFile is read when neither --config nor CHWATCH_CONFIG names a file
// and it exists.
const DefaultFile = "/etc/chwatch/chwatch.toml"

// Duration is a Go duration string in TOML ("90s", "5m").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use Go durations such as 90s, 5m, 168h)", b)
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is every key of SPEC.md's configuration table.
type Config struct {
	Database struct {
		Path        string `toml:"path"`
		Checkpoints string `toml:"checkpoints"`
		PageSize    int    `toml:"page_size"`
	} `toml:"database"`
	Stream struct {
		URL              string   `toml:"url"`
		Key              string   `toml:"key" secret:"true"`
		IdleTimeout      Duration `toml:"idle_timeout"`
		LineTimeout      Duration `toml:"line_timeout"`
		BackoffMin       Duration `toml:"backoff_min"`
		BackoffMax       Duration `toml:"backoff_max"`
		RateLimitedWait  Duration `toml:"rate_limited_wait"`
		UnauthorizedWait Duration `toml:"unauthorized_wait"`
		MaxLineBytes     int      `toml:"max_line_bytes"`
		BatchMaxEvents   int      `toml:"batch_max_events"`
		BatchMaxWait     Duration `toml:"batch_max_wait"`
		OnGap            string   `toml:"on_gap"`
	} `toml:"stream"`
	API struct {
		URL        string   `toml:"url"`
		Key        string   `toml:"key" secret:"true"`
		RateLimit  int      `toml:"rate_limit"`
		RateWindow Duration `toml:"rate_window"`
		Timeout    Duration `toml:"timeout"`
		Workers    int      `toml:"workers"`
		// UnauthorizedWait: after a 401, REST work pauses this long before
		// one more try (a new key ends the pause at once).
		UnauthorizedWait Duration `toml:"unauthorized_wait"`
		// ForbiddenWait: after a 403, REST work pauses this long.
		ForbiddenWait Duration `toml:"forbidden_wait"`
	} `toml:"api"`
	Breaker struct {
		Failures int      `toml:"failures"`
		OpenFor  Duration `toml:"open_for"`
	} `toml:"breaker"`
	Queue struct {
		MaxAttempts int `toml:"max_attempts"`
		MaxDepth    int `toml:"max_depth"`
	} `toml:"queue"`
	Retention struct {
		EventPayload Duration `toml:"event_payload"`
		Events       Duration `toml:"events"`
		JobsDone     Duration `toml:"jobs_done"`
	} `toml:"retention"`
	StrikeOff struct {
		OnExit      string `toml:"on_exit"`
		ConfirmExit string `toml:"confirm_exit"`
	} `toml:"strike_off"`
	Enrich struct {
		// PSCs also fetches the persons with significant control of
		// every company in strike-off: a request or more per company.
		PSCs bool `toml:"pscs"`
	} `toml:"enrich"`
	Status struct {
		StaleAfter Duration `toml:"stale_after"`
		DownWarn   Duration `toml:"down_warn"`
		DownCrit   Duration `toml:"down_crit"`
	} `toml:"status"`
	HTTP struct {
		Listen string `toml:"listen"`
	} `toml:"http"`
	Log struct {
		Level  string `toml:"level"`
		Format string `toml:"format"`
	} `toml:"log"`
	Alert struct {
		WebhookURL string `toml:"webhook_url" secret:"true"`
	} `toml:"alert"`
	// Feed is the change feed's sinks: a webhook, NATS JetStream, both or
	// neither. Both URLs are secrets (tokens, credentials).
	Feed struct {
		WebhookURL  string `toml:"webhook_url" secret:"true"`
		NATSURL     string `toml:"nats_url" secret:"true"`
		NATSSubject string `toml:"nats_subject"`
	} `toml:"feed"`

	// File is the file the configuration was read from ("" for none).
	File string `toml:"-"`
	// Warnings are problems worth telling the operator that do not stop chwatch.
	Warnings []string `toml:"-"`
	// UnknownEnv names the CHWATCH_* variables that are no key (sorted):
	// `config check` refuses them (CheckEnv), other commands warn.
	UnknownEnv []string `toml:"-"`
}

// Default returns the defaults: the one place they are written down.
func Default() Config {
	var c Config
	c.Database.Path = "chwatch.db"
	c.Database.Checkpoints = "auto"
	c.Database.PageSize = 2048
	c.Stream.URL = "https://stream.companieshouse.gov.uk"
	c.Stream.IdleTimeout = dur(90 * time.Second)
	c.Stream.LineTimeout = dur(60 * time.Second)
	c.Stream.BackoffMin = dur(time.Second)
	c.Stream.BackoffMax = dur(5 * time.Minute)
	c.Stream.RateLimitedWait = dur(60 * time.Second)
	c.Stream.UnauthorizedWait = dur(5 * time.Minute)
	c.Stream.MaxLineBytes = 4 << 20
	c.Stream.BatchMaxEvents = 5000
	c.Stream.BatchMaxWait = dur(20 * time.Millisecond)
	c.Stream.OnGap = "sweep"
	c.API.URL = "https://api.company-information.service.gov.uk"
	c.API.RateLimit = 600
	c.API.RateWindow = dur(5 * time.Minute)
	c.API.Timeout = dur(30 * time.Second)
	c.API.Workers = 2
	c.API.UnauthorizedWait = dur(5 * time.Minute)
	c.API.ForbiddenWait = dur(15 * time.Minute)
	c.Breaker.Failures = 5
	c.Breaker.OpenFor = dur(60 * time.Second)
	c.Queue.MaxAttempts = 8
	c.Queue.MaxDepth = 1_000_000
	c.Retention.EventPayload = dur(168 * time.Hour)
	c.Retention.Events = dur(2160 * time.Hour)
	c.Retention.JobsDone = dur(168 * time.Hour)
	c.StrikeOff.OnExit = "delete-officers"
	c.StrikeOff.ConfirmExit = "" // "api", or "stream" when there is no API key: resolved by ConfirmExit
	c.Status.StaleAfter = dur(time.Minute)
	c.Status.DownWarn = dur(5 * time.Minute)
	c.Status.DownCrit = dur(30 * time.Minute)
	c.HTTP.Listen = "127.0.0.1:9464"
	c.Log.Level = "info"
	c.Log.Format = "" // text on a terminal, json otherwise
	c.Feed.NATSSubject = "chwatch.changes"
	return c
}

func dur(d time.Duration) Duration { return Duration{d} }

// ConfirmExit is strike_off.confirm_exit with its default resolved: "api"
// when an API key is set, "stream" otherwise.
func (c *Config) ConfirmExit() string {
	if c.StrikeOff.ConfirmExit != "" {
		return c.StrikeOff.ConfirmExit
	}
	if c.API.Key != "" {
		return "api"
	}
	return "stream"
}

// Error is a configuration problem: the key, what is wrong, and the fix.
type Error struct {
	Key, Problem, Fix string
}

func (e *Error) Error() string {
	s := e.Problem
	if e.Key != "" {
		s = e.Key + ": " + s
	}
	if e.Fix != "" {
		s += " (" + e.Fix + ")"
	}
	return s
}

// Sources says where to look beyond the defaults.
type Sources struct {
	File        string            // --config; "" = CHWATCH_CONFIG, then DefaultFile when it exists
	Env         []string          // os.Environ()
	Flags       map[string]string // key -> value set on the command line
	LookupFiles bool              // false in tests that want no /etc file
}

// Load builds the configuration: defaults, then the file, then the
// environment, then flags; then validates it.
func Load(src Sources) (*Config, error) {
	c := Default()
	env := map[string]string{}
	for _, kv := range src.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	file := src.File
	explicit := file != ""
	if file == "" {
		file = env["CHWATCH_CONFIG"]
		explicit = file != ""
	}
	if file == "" && src.LookupFiles {
		if _, err := os.Stat(DefaultFile); err == nil {
			file = DefaultFile
		}
	}
	if file != "" {
		if err := c.loadFile(file, explicit); err != nil {
			return nil, err
		}
	}
	keys := Keys()
	fromEnv := map[string]bool{}
	for _, k := range keys {
		name := EnvName(k)
		if v, ok := env[name]; ok {
			if err := c.Set(k, v); err != nil {
				// Fixed in the environment: name the variable.
				var ce *Error
				if !errors.As(err, &ce) {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				return nil, &Error{Key: name, Problem: ce.Problem, Fix: ce.Fix}
			}
			fromEnv[k] = true
		}
	}
	c.UnknownEnv = unknownEnv(env, keys)
	for _, name := range c.UnknownEnv {
		c.Warnings = append(c.Warnings, unknownEnvError(name, keys).Error())
	}
	for k, v := range src.Flags {
		if err := c.Set(k, v); err != nil {
			return nil, err
		}
		delete(fromEnv, k) // a flag beat the environment
	}
	if err := c.Validate(); err != nil {
		// A bad value from the environment is fixed there: name the variable.
		var ce *Error
		if errors.As(err, &ce) && fromEnv[ce.Key] {
			return nil, &Error{Key: EnvName(ce.Key), Problem: ce.Problem, Fix: ce.Fix}
		}
		return nil, err
	}
	for _, f := range floors {
		if d := c.duration(f.Key); d < f.Min {
			name := f.Key
			if fromEnv[f.Key] {
				name = EnvName(f.Key) + " (" + f.Key + ")"
			}
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s %s is below its production floor of %s: %s (fine in a test)", name, d, f.Min, f.Why))
		}
	}
	return &c, nil
}

// envConfig is the one variable in chwatch's namespace that is no key.
const envConfig = "CHWATCH_CONFIG"

// unknownEnv lists the CHWATCH_* variables in env that name no key.
func unknownEnv(env map[string]string, keys []string) []string {
	known := map[string]bool{envConfig: true}
	for _, k := range keys {
		known[EnvName(k)] = true
	}
	var out []string
	for name := range env {
		if strings.HasPrefix(name, "CHWATCH_") && !known[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func unknownEnvError(name string, keys []string) *Error {
	fix := "every key section.name is CHWATCH_SECTION_NAME (see `chwatch config show`); unset it"
	best, bestD := "", 4 // a typo is a few edits away
	for _, k := range keys {
		if d := editDistance(name, EnvName(k)); d < bestD {
			best, bestD = EnvName(k), d
		}
	}
	if best != "" {
		fix = "did you mean " + best + "? " + fix
	}
	return &Error{Key: name, Problem: "environment variable names no chwatch key", Fix: fix}
}

// CheckEnv refuses what Load only warned about: a CHWATCH_* variable that
// names no key. `config check` calls it.
func (c *Config) CheckEnv() error {
	if len(c.UnknownEnv) == 0 {
		return nil
	}
	e := unknownEnvError(c.UnknownEnv[0], Keys())
	if len(c.UnknownEnv) > 1 {
		e.Fix += "; unknown: " + strings.Join(c.UnknownEnv, ", ")
	}
	return e
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Floor is the least value of a duration key that makes sense in
// production. Below it chwatch warns and carries on: tests and demos shrink
// waits on purpose.
type Floor struct {
	Key string
	Min time.Duration
	Why string
}

var floors = []Floor{
	{"stream.idle_timeout", 45 * time.Second, "heartbeats arrive every 30s, so a quiet, healthy stream would be cut"},
	{"stream.line_timeout", 10 * time.Second, "a large event on a slow link would be cut and fetched again, over and over"},
	{"stream.backoff_min", time.Second, "reconnects after a failure would come faster than Companies House expects"},
	{"stream.backoff_max", 30 * time.Second, "an outage of hours would be retried many times a minute"},
	{"stream.rate_limited_wait", 30 * time.Second, "a 429 asks for patience; retrying sooner keeps the key rate-limited"},
	{"stream.unauthorized_wait", time.Minute, "a revoked key would be retried in a tight loop"},
	{"api.timeout", 5 * time.Second, "slow but healthy REST answers would count as failures"},
	{"breaker.open_for", 10 * time.Second, "a failing API would be probed again almost at once"},
	{"status.stale_after", 15 * time.Second, "the service writes its heartbeat every 5s, so status would flap"},
	{"status.down_warn", time.Minute, "every routine reconnect would warn"},
	{"retention.events", 168 * time.Hour, "the stream replays up to about 7 days, and an event row is what makes a replayed timepoint a duplicate"},
}

// Floors lists the production floors, for documentation and tests.
func Floors() []Floor { return append([]Floor(nil), floors...) }

// duration returns the duration key's value (0 for any other key).
func (c *Config) duration(key string) time.Duration {
	for _, f := range c.fields() {
		if f.key == key {
			if d, ok := f.v.Interface().(Duration); ok {
				return d.Duration
			}
		}
	}
	return 0
}

func (c *Config) loadFile(file string, explicit bool) error {
	b, err := os.ReadFile(file)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return &Error{Problem: fmt.Sprintf("config file %s does not exist", file), Fix: "create it from config.example.toml, or fix --config / CHWATCH_CONFIG"}
		case errors.Is(err, fs.ErrPermission):
			return &Error{Problem: fmt.Sprintf("config file %s is not readable by this user", file), Fix: "add this user to the service's group, or pass --config"}
		}
		return &Error{Problem: fmt.Sprintf("read config file %s: %v", file, err), Fix: "point --config or CHWATCH_CONFIG at a TOML file"}
	}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			at := fmt.Sprintf("line %d", perr.Position.Line)
			if perr.LastKey != "" {
				at += " (last key " + perr.LastKey + ")"
			}
			return &Error{Problem: fmt.Sprintf("config file %s: %s: %s", file, at, perr.Message), Fix: "see config.example.toml for the syntax"}
		}
		return &Error{Problem: fmt.Sprintf("config file %s: %v", file, err), Fix: "see config.example.toml for each key's type"}
	}
	if und := md.Undecoded(); len(und) > 0 {
		names := make([]string, len(und))
		for i, k := range und {
			names[i] = k.String()
		}
		return &Error{Key: names[0], Problem: fmt.Sprintf("unknown key in %s", file), Fix: "check the spelling against config.example.toml; unknown: " + strings.Join(names, ", ")}
	}
	c.File = file
	if st, err := os.Stat(file); err == nil && st.Mode().Perm()&0o044 != 0 {
		for _, k := range Keys() {
			if isSecret(k) && md.IsDefined(strings.Split(k, ".")...) && c.get(k) != "" {
				c.Warnings = append(c.Warnings, fmt.Sprintf("config file %s holds %s and is readable by other users (mode %04o): chmod 600 it, or move the key to the environment (%s)", file, k, st.Mode().Perm(), EnvName(k)))
			}
		}
	}
	return nil
}

// EnvName is the environment variable for key: stream.url is CHWATCH_STREAM_URL.
func EnvName(key string) string {
	return "CHWATCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// field is one key's place in the struct.
type field struct {
	key    string
	v      reflect.Value
	secret bool
}

func (c *Config) fields() []field {
	var out []field
	root := reflect.ValueOf(c).Elem()
	rt := root.Type()
	for i := 0; i < rt.NumField(); i++ {
		sec := rt.Field(i).Tag.Get("toml")
		if sec == "-" || sec == "" {
			continue
		}
		sv := root.Field(i)
		st := sv.Type()
		for j := 0; j < st.NumField(); j++ {
			name := st.Field(j).Tag.Get("toml")
			out = append(out, field{key: sec + "." + name, v: sv.Field(j), secret: st.Field(j).Tag.Get("secret") == "true"})
		}
	}
	return out
}

// Keys lists every configuration key, in file order.
func Keys() []string {
	var c Config
	var out []string
	for _, f := range c.fields() {
		out = append(out, f.key)
	}
	return out
}

// get returns key's value as text ("" for an unknown key).
func (c *Config) get(key string) string {
	for _, f := range c.fields() {
		if f.key == key {
			return fmt.Sprint(f.v.Interface())
		}
	}
	return ""
}

func isSecret(key string) bool {
	var c Config
	for _, f := range c.fields() {
		if f.key == key {
			return f.secret
		}
	}
	return false
}

// Set sets key from its text form, as the environment and flags give it.
func (c *Config) Set(key, value string) error {
	for _, f := range c.fields() {
		if f.key != key {
			continue
		}
		switch p := f.v.Addr().Interface().(type) {
		case *string:
			*p = value
		case *int:
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil {
				return &Error{Key: key, Problem: fmt.Sprintf("%q is not a whole number", value), Fix: "give an integer such as " + strconv.Itoa(*p)}
			}
			*p = n
		case *Duration:
			if err := p.UnmarshalText([]byte(strings.TrimSpace(value))); err != nil {
				return &Error{Key: key, Problem: err.Error()}
			}
		case *bool:
			// Only the two words TOML itself accepts: "1", "yes" or "on"
			// would pass in one place and fail in the other.
			switch strings.TrimSpace(value) {
			case "true":
				*p = true
			case "false":
				*p = false
			default:
				return &Error{Key: key, Problem: fmt.Sprintf("%q is not a boolean", value), Fix: "give true or false"}
			}
		default:
			panic("config: unhandled type for " + key)
		}
		return nil
	}
	return &Error{Key: key, Problem: "unknown key", Fix: "see `chwatch config show` for the keys"}
}

// Validate checks every value and returns the first problem found.
func (c *Config) Validate() error {
	for _, f := range c.fields() {
		d, ok := f.v.Interface().(Duration)
		switch {
		case !ok:
		case d.Duration <= 0:
			return &Error{Key: f.key, Problem: fmt.Sprintf("%s is not a positive duration", d.Duration), Fix: "give a positive Go duration such as 30s"}
		case d.Duration < time.Millisecond:
			// Nothing chwatch times is that short: a unit slip ("1ns"
			// for "1s") would spin.
			return &Error{Key: f.key, Problem: fmt.Sprintf("%s is under 1ms", d.Duration), Fix: "give a Go duration of at least 1ms, such as 30s (mind the unit)"}
		}
	}
	positive := map[string]int{
		"stream.max_line_bytes": c.Stream.MaxLineBytes, "stream.batch_max_events": c.Stream.BatchMaxEvents,
		"api.rate_limit": c.API.RateLimit, "api.workers": c.API.Workers, "breaker.failures": c.Breaker.Failures,
		"queue.max_attempts": c.Queue.MaxAttempts, "queue.max_depth": c.Queue.MaxDepth,
	}
	for _, k := range sortedKeys(positive) {
		if positive[k] < 1 {
			return &Error{Key: k, Problem: fmt.Sprintf("%d is not positive", positive[k]), Fix: "give a number of at least 1"}
		}
	}
	if n := c.Database.PageSize; n < 512 || n > 65536 || n&(n-1) != 0 {
		return &Error{Key: "database.page_size", Problem: fmt.Sprintf("%d is not a power of two from 512 to 65536", n), Fix: "use 2048 (the default) or 4096"}
	}
	if c.Stream.MaxLineBytes < 64<<10 {
		return &Error{Key: "stream.max_line_bytes", Problem: fmt.Sprintf("%d is too small for a company event", c.Stream.MaxLineBytes), Fix: "use at least 65536; the default is 4194304"}
	}
	if c.Stream.BackoffMin.Duration > c.Stream.BackoffMax.Duration {
		return &Error{Key: "stream.backoff_min", Problem: fmt.Sprintf("%s is more than stream.backoff_max %s", c.Stream.BackoffMin, c.Stream.BackoffMax), Fix: "make backoff_min at most backoff_max"}
	}
	if c.Status.DownWarn.Duration > c.Status.DownCrit.Duration {
		return &Error{Key: "status.down_warn", Problem: fmt.Sprintf("%s is more than status.down_crit %s", c.Status.DownWarn, c.Status.DownCrit), Fix: "make down_warn at most down_crit"}
	}
	if c.API.RateLimit > 1200 {
		return &Error{Key: "api.rate_limit", Problem: fmt.Sprintf("%d is above the most Companies House grants (1200 per window)", c.API.RateLimit), Fix: "use 600 unless Companies House raised your limit"}
	}
	enums := []struct {
		key, val string
		allowed  []string
	}{
		{"database.checkpoints", c.Database.Checkpoints, []string{"auto", "external"}},
		{"stream.on_gap", c.Stream.OnGap, []string{"sweep", "bulk"}},
		{"strike_off.on_exit", c.StrikeOff.OnExit, []string{"delete-officers", "keep"}},
		{"strike_off.confirm_exit", c.StrikeOff.ConfirmExit, []string{"", "api", "stream"}},
		{"log.level", c.Log.Level, []string{"debug", "info", "warn", "error"}},
		{"log.format", c.Log.Format, []string{"", "text", "json"}},
	}
	for _, e := range enums {
		ok := false
		for _, a := range e.allowed {
			ok = ok || e.val == a
		}
		if !ok {
			var shown []string
			for _, a := range e.allowed {
				if a != "" {
					shown = append(shown, a)
				}
			}
			return &Error{Key: e.key, Problem: fmt.Sprintf("%q is not allowed", e.val), Fix: "use one of: " + strings.Join(shown, ", ")}
		}
	}
	if c.StrikeOff.ConfirmExit == "api" && c.API.Key == "" {
		return &Error{Key: "strike_off.confirm_exit", Problem: `"api" needs an API key`, Fix: "set CHWATCH_API_KEY, or use confirm_exit = \"stream\""}
	}
	if c.Database.Path == "" {
		return &Error{Key: "database.path", Problem: "empty", Fix: "name the SQLite file, e.g. /var/lib/chwatch/chwatch.db"}
	}
	if err := checkListen(c.HTTP.Listen); err != nil {
		return err
	}
	for _, k := range []struct{ key, val string }{{"stream.url", c.Stream.URL}, {"api.url", c.API.URL}, {"alert.webhook_url", c.Alert.WebhookURL}} {
		if k.val == "" && k.key == "alert.webhook_url" {
			continue
		}
		u, err := url.Parse(k.val)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			shown := strconv.Quote(redactURL(k.val))
			if isSecret(k.key) {
				shown = "the value" // webhook URLs carry tokens
			}
			return &Error{Key: k.key, Problem: shown + " is not an http(s) URL", Fix: "give a URL such as https://host"}
		}
		if u.User != nil && k.key != "alert.webhook_url" {
			return &Error{Key: k.key, Problem: "the URL holds credentials", Fix: "put the key in " + EnvName(strings.Split(k.key, ".")[0]+".key") + " instead"}
		}
	}
	return c.validateFeed()
}

// validateFeed checks the change feed's keys. The URLs are secrets: a
// problem with one never quotes it.
func (c *Config) validateFeed() error {
	if v := c.Feed.WebhookURL; v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{Key: "feed.webhook_url", Problem: "the value is not an http(s) URL", Fix: "give the URL to POST each change to, such as https://hooks.example/chwatch, or leave it empty"}
		}
	}
	if v := c.Feed.NATSURL; v != "" {
		for _, part := range strings.Split(v, ",") {
			u, err := url.Parse(strings.TrimSpace(part))
			if err != nil || u.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme) {
				return &Error{Key: "feed.nats_url", Problem: "the value is not a NATS URL", Fix: "give nats://host:4222 (tls://, ws:// and wss:// work too; several, comma-separated; credentials as nats://user:password@host), or leave it empty"}
			}
		}
	}
	s := c.Feed.NATSSubject
	const fix = "give a NATS subject of dot-separated tokens without spaces or wildcards, such as chwatch.changes (officer replacements go to it plus .officers)"
	switch {
	case s == "":
		return &Error{Key: "feed.nats_subject", Problem: "empty", Fix: fix}
	case strings.ContainsAny(s, " \t\r\n*>"):
		return &Error{Key: "feed.nats_subject", Problem: fmt.Sprintf("%q holds a space or a wildcard", s), Fix: fix}
	case slices.Contains(strings.Split(s, "."), ""):
		return &Error{Key: "feed.nats_subject", Problem: fmt.Sprintf("%q has an empty token", s), Fix: fix}
	}
	return nil
}

// checkListen checks http.listen the way net.Listen will read it, so that
// `config check` catches what `run` would refuse.
func checkListen(addr string) error {
	if addr == "" {
		return nil // disabled
	}
	const fix = `give host:port such as 127.0.0.1:9464 (":0" picks a free port), or "" to disable`
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		why := err.Error()
		if errors.As(err, &ae) {
			why = ae.Err
		}
		return &Error{Key: "http.listen", Problem: fmt.Sprintf("%q is not an address: %s", addr, why), Fix: fix}
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return &Error{Key: "http.listen", Problem: fmt.Sprintf("%q: port %d is out of range", addr, n), Fix: fix}
		}
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		return &Error{Key: "http.listen", Problem: fmt.Sprintf("%q: port %q is neither a number nor a known service", addr, port), Fix: fix}
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Unparsable, yet it may hold user:password@: hide up to the last @.
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			start := 0
			if j := strings.Index(s, "://"); j >= 0 && j < i {
				start = j + 3
			}
			return s[:start] + "REDACTED" + s[i:]
		}
		return s
	}
	if u.User == nil {
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}

// Show renders the configuration as TOML with secrets redacted.
func (c *Config) Show() string {
	var b strings.Builder
	section := ""
	for _, f := range c.fields() {
		sec, name, _ := strings.Cut(f.key, ".")
		if sec != section {
			if section != "" {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "[%s]\n", sec)
			section = sec
		}
		var val string
		switch v := f.v.Interface().(type) {
		case string:
			if f.secret && v != "" {
				v = "REDACTED"
			}
			if f.key == "strike_off.confirm_exit" && v == "" {
				v = c.ConfirmExit()
			}
			val = strconv.Quote(v)
		case int:
			val = strconv.Itoa(v)
		case bool:
			val = strconv.FormatBool(v)
		case Duration:
			val = strconv.Quote(v.String())
		}
		fmt.Fprintf(&b, "%s = %s\n", name, val)
	}
	return b.String()
}
