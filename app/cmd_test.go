package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/app"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/status"
	"github.com/matryer/is"
)

// cmdEnviron is the host environment without CHWATCH_* variables, pointing
// CHWATCH_CONFIG at a known file (so no /etc/chwatch file is ever read), plus
// extra.
func cmdEnviron(tb testing.TB, extra ...string) []string {
	tb.Helper()
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHWATCH_") {
			out = append(out, kv)
		}
	}
	good, err := filepath.Abs(filepath.Join("testdata", "config", "good.toml"))
	if err != nil {
		tb.Fatal(err)
	}
	out = append(out, "CHWATCH_CONFIG="+good)
	return append(out, extra...)
}

type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs chwatch with args (without the program name).
func runCmd(tb testing.TB, environ []string, args ...string) result {
	tb.Helper()
	var out, errb bytes.Buffer
	code := app.Run(context.Background(), append([]string{"chwatch"}, args...), &out, &errb, environ)
	return result{code, out.String(), errb.String()}
}

func (r result) String() string {
	return "exit " + string(rune('0'+r.code)) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// migratedDB creates a migrated database in a temporary directory.
func migratedDB(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "chwatch.db")
	d, err := db.Open(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	if _, err := d.MigrateUp(ctx, time.Now()); err != nil {
		tb.Fatal(err)
	}
	return path
}

// withDB opens path for one write.
func withDB(tb testing.TB, path string, fn func(*db.DB) error) {
	tb.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	if err := fn(d); err != nil {
		tb.Fatal(err)
	}
}

func setService(tb testing.TB, path string, s status.Service) {
	tb.Helper()
	ctx := context.Background()
	withDB(tb, path, func(d *db.DB) error {
		return d.WriteTx(ctx, func(tx db.Tx) error { return db.SetState(ctx, tx, db.FormatTime(time.Now()), s.KV()) })
	})
}

func schemaOf(tb testing.TB, path string) (string, int) {
	tb.Helper()
	ctx := context.Background()
	d, err := db.OpenReader(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	s, err := db.Schema(ctx, d.R)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := db.Version(ctx, d.R)
	if err != nil {
		tb.Fatal(err)
	}
	return s, v
}

// statements returns the statements of a schema, sorted.
func statements(schema string) []string {
	s := strings.Split(schema, ";\n\n")
	sort.Strings(s)
	return s
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

func TestCmdStatusExitCodes(t *testing.T) {
	fresh := func(tb testing.TB) string { return migratedDB(tb) }
	tests := []struct {
		name   string
		db     func(testing.TB) string // returns the --db path
		args   []string                // after --db PATH
		code   int
		stdout []string
	}{
		{
			name: "MissingDatabase",
			db:   func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "missing.db") },
			args: []string{"status"}, code: 3, stdout: []string{"UNKNOWN", "missing.db", "migrate up"},
		},
		{
			name: "Directory",
			db:   func(tb testing.TB) string { return tb.TempDir() },
			args: []string{"status"}, code: 3, stdout: []string{"UNKNOWN", "is a directory"},
		},
		{name: "BadFlag", db: fresh, args: []string{"status", "--bogus"}, code: 3},
		{name: "BadGlobalFlag", db: fresh, args: []string{"--bogus", "status"}, code: 3},
		{name: "ExtraArgument", db: fresh, args: []string{"status", "now"}, code: 3, stdout: []string{"UNKNOWN", "no arguments"}},
		{name: "BadConfiguration", db: fresh, args: []string{"--set", "status.down_warn=0s", "status"}, code: 3, stdout: []string{"UNKNOWN", "status.down_warn"}},
		{name: "NeverRun", db: fresh, args: []string{"status"}, code: 1, stdout: []string{"CHWATCH WARNING", "never run"}},
		{
			name: "Running",
			db: func(tb testing.TB) string {
				p := migratedDB(tb)
				now := time.Now()
				setService(tb, p, status.Service{PID: 7, HeartbeatAt: now, StartedAt: now.Add(-time.Hour), StreamState: "connected", StreamSince: now.Add(-time.Hour), APIBudget: -1})
				return p
			},
			args: []string{"status"}, code: 0, stdout: []string{"CHWATCH OK", "running, pid 7"},
		},
		{
			name: "NotRunning",
			db: func(tb testing.TB) string {
				p := migratedDB(tb)
				setService(tb, p, status.Service{PID: 7, HeartbeatAt: time.Now().Add(-time.Hour), APIBudget: -1})
				return p
			},
			args: []string{"status"}, code: 2, stdout: []string{"CHWATCH CRITICAL", "service not running", "NOT RUNNING"},
		},
		{
			name: "SchemaTooNew",
			db: func(tb testing.TB) string {
				p := migratedDB(tb)
				withDB(tb, p, func(d *db.DB) error {
					_, err := d.W.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '2030-01-01T00:00:00Z')")
					return err
				})
				return p
			},
			args: []string{"status"}, code: 3, stdout: []string{"UNKNOWN", "newer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			path := tt.db(t)
			r := runCmd(t, cmdEnviron(t), append([]string{"--db", path}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("want exit %d, got %v", tt.code, r)
			}
			contains(t, "stdout", r.stdout, tt.stdout...)
			if tt.name == "MissingDatabase" {
				_, err := os.Stat(path)
				is.True(os.IsNotExist(err)) // status never creates a database
			}
		})
	}
}

func TestCmdStatusJSON(t *testing.T) {
	tests := []struct {
		name    string
		path    func(testing.TB) string
		code    int
		verdict string
	}{
		{"NeverRun", migratedDB, 1, "WARNING"},
		{"MissingDatabase", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "none.db") }, 3, "UNKNOWN"},
		{"Running", func(tb testing.TB) string {
			p := migratedDB(tb)
			now := time.Now()
			setService(tb, p, status.Service{PID: 7, HeartbeatAt: now, StartedAt: now.Add(-time.Hour), StreamState: "connected", StreamSince: now.Add(-time.Hour), APIBudget: -1})
			return p
		}, 0, "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			r := runCmd(t, cmdEnviron(t), "--db", tt.path(t), "status", "--json")
			is.Equal(r.code, tt.code)
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			var m map[string]any
			is.NoErr(dec.Decode(&m)) // stdout is JSON
			is.Equal(m["verdict"], tt.verdict)
			reasons, _ := m["reasons"].([]any)
			is.Equal(len(reasons) > 0, tt.verdict != "OK") // a verdict other than OK says why
			if tt.code != 3 {
				v, _ := m["version"].(string)
				is.True(v != "")              // the command adds this chwatch's version
				is.True(m["database"] != nil) // and the report's facts
				is.True(m["queue"] != nil)
			}
			var more any
			is.Equal(dec.Decode(&more), io.EOF) // exactly one object
		})
	}
}

func TestCmdConfigCheck(t *testing.T) {
	td := func(name string) string { return filepath.Join("testdata", "config", name) }
	tests := []struct {
		name   string
		args   []string
		env    []string
		code   int
		stderr []string
	}{
		{name: "Good", args: []string{"--config", td("good.toml"), "config", "check"}},
		{name: "GoodFromEnv", args: []string{"config", "check"}},
		{name: "MissingFile", args: []string{"--config", td("nope.toml"), "config", "check"}, code: 2, stderr: []string{"nope.toml", "does not exist"}},
		{name: "Syntax", args: []string{"--config", td("syntax.toml"), "config", "check"}, code: 2, stderr: []string{"syntax.toml", "line 2"}},
		{name: "UnknownKey", args: []string{"--config", td("unknown_key.toml"), "config", "check"}, code: 2, stderr: []string{"stream.idle_timeuot", "unknown key"}},
		{name: "WrongType", args: []string{"--config", td("wrong_type.toml"), "config", "check"}, code: 2, stderr: []string{"stream.max_line_bytes"}},
		{name: "ZeroDuration", args: []string{"--config", td("zero_duration.toml"), "config", "check"}, code: 2, stderr: []string{"status.down_warn", "positive"}},
		{name: "BackoffMinAboveMax", args: []string{"--config", td("backoff.toml"), "config", "check"}, code: 2, stderr: []string{"stream.backoff_min", "backoff_max"}},
		{name: "OnGapMaybe", args: []string{"--config", td("on_gap.toml"), "config", "check"}, code: 2, stderr: []string{"stream.on_gap", "sweep, bulk"}},
		{name: "BadURL", args: []string{"--config", td("bad_url.toml"), "config", "check"}, code: 2, stderr: []string{"api.url", "https://"}},
		{name: "BadEnv", args: []string{"config", "check"}, env: []string{"CHWATCH_API_WORKERS=many"}, code: 2, stderr: []string{"CHWATCH_API_WORKERS", `"many"`}},
		{name: "BadSet", args: []string{"--set", "stream.on_gap=never", "config", "check"}, code: 2, stderr: []string{"stream.on_gap"}},
		{name: "SetWithoutValue", args: []string{"--set", "stream.on_gap", "config", "check"}, code: 2, stderr: []string{"KEY=VALUE"}},
		{name: "UnknownEnv", args: []string{"config", "check"}, env: []string{"CHWATCH_STREAM_IDEL_TIMEOUT=60s"}, code: 2, stderr: []string{"CHWATCH_STREAM_IDEL_TIMEOUT", "did you mean CHWATCH_STREAM_IDLE_TIMEOUT"}},
		{name: "ListenNotAnAddress", args: []string{"--set", "http.listen=notanaddr", "config", "check"}, code: 2, stderr: []string{"http.listen", "notanaddr"}},
		{name: "UnderAMillisecond", args: []string{"--set", "stream.idle_timeout=1ns", "config", "check"}, code: 2, stderr: []string{"stream.idle_timeout", "1ms"}},
		{name: "BelowFloorWarns", args: []string{"config", "check"}, env: []string{"CHWATCH_STREAM_IDLE_TIMEOUT=1s"}, stderr: []string{"warning:", "CHWATCH_STREAM_IDLE_TIMEOUT", "production floor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, cmdEnviron(t, tt.env...), tt.args...)
			if r.code != tt.code {
				t.Fatalf("want exit %d, got %v", tt.code, r)
			}
			if tt.code == 0 {
				contains(t, "stdout", r.stdout, "configuration OK", "good.toml")
			}
			contains(t, "stderr", r.stderr, tt.stderr...)
		})
	}
}

func TestCmdConfigShowRedacts(t *testing.T) {
	secrets := []string{"file-stream-secret-1111", "file-api-secret-2222", "file-hook-secret-3333", "env-api-secret-4444"}
	for _, mode := range []os.FileMode{0o600, 0o644} {
		t.Run(mode.String(), func(t *testing.T) {
			is := is.New(t)
			b, err := os.ReadFile(filepath.Join("testdata", "config", "secrets.toml"))
			is.NoErr(err)
			f := filepath.Join(t.TempDir(), "secrets.toml")
			is.NoErr(os.WriteFile(f, b, mode))
			is.NoErr(os.Chmod(f, mode))
			r := runCmd(t, cmdEnviron(t, "CHWATCH_API_KEY=env-api-secret-4444"), "--config", f, "config", "show")
			is.Equal(r.code, 0)
			for _, s := range secrets {
				if strings.Contains(r.stdout+r.stderr, s) {
					t.Errorf("config show printed the secret %q:\n%s", s, r)
				}
			}
			contains(t, "stdout", r.stdout, f, `key = "REDACTED"`, `webhook_url = "REDACTED"`, `confirm_exit = "api"`)
			if mode&0o044 != 0 {
				contains(t, "stderr", r.stderr, "warning", f, "chmod 600")
			} else {
				is.Equal(r.stderr, "")
			}
		})
	}
}

func TestCmdMigrate(t *testing.T) {
	is := is.New(t)
	env := cmdEnviron(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "chwatch.db")

	r := runCmd(t, env, "--db", path, "migrate", "up")
	is.Equal(r.code, 0)
	contains(t, "stdout", r.stdout, "applied migration 0001")
	schema, v := schemaOf(t, path)
	is.Equal(v, db.Latest())

	r = runCmd(t, env, "--db", path, "migrate", "up")
	is.Equal(r.code, 0)
	contains(t, "stdout", r.stdout, "nothing to do")

	r = runCmd(t, env, "--db", path, "migrate", "status")
	is.Equal(r.code, 0)
	for _, m := range db.Migrations() {
		contains(t, "migrate status", r.stdout, m.Name, "applied")
	}
	contains(t, "migrate status", r.stdout, fmt.Sprintf("schema version %d", db.Latest()))

	t.Run("DownTooFar", func(t *testing.T) {
		is := is.New(t)
		r := runCmd(t, env, "--db", path, "migrate", "down", "--steps", "99")
		is.True(r.code != 0)
		contains(t, "stderr", r.stderr, "nothing was changed")
		after, v := schemaOf(t, path)
		is.Equal(v, db.Latest())
		is.Equal(after, schema)
	})
	t.Run("DownZeroSteps", func(t *testing.T) {
		is := is.New(t)
		r := runCmd(t, env, "--db", path, "migrate", "down", "--steps", "0")
		is.Equal(r.code, 2)
		contains(t, "stderr", r.stderr, "--steps")
	})
	t.Run("UnknownSubcommand", func(t *testing.T) {
		r := runCmd(t, env, "--db", path, "migrate", "sideways")
		if r.code == 0 {
			t.Errorf("migrate sideways succeeded: %v", r)
		}
	})
	t.Run("SchemaTooNew", func(t *testing.T) {
		is := is.New(t)
		p := migratedDB(t)
		withDB(t, p, func(d *db.DB) error {
			_, err := d.W.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '2030-01-01T00:00:00Z')")
			return err
		})
		before, _ := schemaOf(t, p)
		for _, args := range [][]string{{"migrate", "up"}, {"migrate", "down"}, {"migrate", "status"},
			{"queue", "status"}, {"queue", "retry"}, {"queue", "purge", "--dead"}, {"gaps", "list"}, {"gaps", "resolve", "1", "--note", "x"}} {
			r := runCmd(t, env, append([]string{"--db", p}, args...)...)
			is.Equal(r.code, 1) // a newer schema is refused
			contains(t, strings.Join(args, " "), r.stderr, "upgrade")
		}
		r := runCmd(t, env, "--db", p, "migrate", "up")
		contains(t, "migrate up", r.stderr, "nothing was changed")
		after, v := schemaOf(t, p)
		is.Equal(v, 999)
		is.Equal(after, before)
		baks, _ := filepath.Glob(p + ".v*.bak")
		is.Equal(len(baks), 0) // no backup for a refused migration
	})
	t.Run("DownThenUp", func(t *testing.T) {
		is := is.New(t)
		p := migratedDB(t)
		before, _ := schemaOf(t, p)
		r := runCmd(t, env, "--db", p, "migrate", "down")
		is.Equal(r.code, 0)
		_, v := schemaOf(t, p)
		ms := db.Migrations() // versions may have gaps while branches land
		is.Equal(v, ms[len(ms)-2].Version)
		// down backs up first, exactly like up.
		baks, _ := filepath.Glob(fmt.Sprintf("%s.v%d-*.bak", p, db.Latest()))
		is.Equal(len(baks), 1)
		contains(t, "migrate down", r.stdout, "backed up "+p+" to "+baks[0]+" before migrating", "undid migration")
		bak, bv := schemaOf(t, baks[0])
		is.Equal(bv, db.Latest())
		is.Equal(statements(bak), statements(before)) // VACUUM INTO may store them in another order
		r = runCmd(t, env, "--db", p, "migrate", "up")
		is.Equal(r.code, 0)
		_, v = schemaOf(t, p)
		is.Equal(v, db.Latest())
	})
}

func TestCmdBackup(t *testing.T) {
	is := is.New(t)
	env := cmdEnviron(t)
	path := migratedDB(t)
	ctx := context.Background()
	withDB(t, path, func(d *db.DB) error {
		return d.WriteTx(ctx, func(tx db.Tx) error { return db.AddCounter(ctx, tx, "companies", 42) })
	})
	dest := filepath.Join(t.TempDir(), "copy.db")

	r := runCmd(t, env, "--db", path, "backup", dest)
	is.Equal(r.code, 0)
	contains(t, "stdout", r.stdout, dest)
	st, err := os.Stat(dest)
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o660))
	b, err := db.OpenReader(ctx, dest)
	is.NoErr(err)
	c, err := db.Counters(ctx, b.R)
	is.NoErr(err)
	is.Equal(c["companies"], int64(42))
	is.NoErr(b.Close())

	t.Run("ExistingFileKept", func(t *testing.T) {
		is := is.New(t)
		existing := filepath.Join(t.TempDir(), "keep.db")
		is.NoErr(os.WriteFile(existing, []byte("precious"), 0o600))
		r := runCmd(t, env, "--db", path, "backup", existing)
		is.True(r.code != 0)
		contains(t, "stderr", r.stderr, existing, "exists")
		got, err := os.ReadFile(existing)
		is.NoErr(err)
		is.Equal(string(got), "precious")
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(existing), ".keep.db.tmp-*"))
		is.Equal(len(left), 0) // no temporary file left behind
	})
	t.Run("NoFile", func(t *testing.T) {
		r := runCmd(t, env, "--db", path, "backup")
		is.New(t).Equal(r.code, 2)
	})
	t.Run("MissingDatabase", func(t *testing.T) {
		is := is.New(t)
		missing := filepath.Join(t.TempDir(), "none.db")
		r := runCmd(t, env, "--db", missing, "backup", filepath.Join(t.TempDir(), "x.db"))
		is.Equal(r.code, 1)
		contains(t, "stderr", r.stderr, missing)
		_, err := os.Stat(missing)
		is.True(os.IsNotExist(err)) // backup never creates the source
	})
}

func TestCmdVersion(t *testing.T) {
	is := is.New(t)
	r := runCmd(t, cmdEnviron(t), "version")
	is.Equal(r.code, 0)
	contains(t, "version", r.stdout, "chwatch ", runtime.Version(), "SQLite 3.")
	is.True(!strings.Contains(r.stdout, "SQLite unknown"))
}

func TestCmdUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"--db", "x.db", "bogus"}, {"--nope"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCmd(t, cmdEnviron(t), args...)
			if r.code != 2 {
				t.Errorf("want exit 2, got %v", r)
			}
			if r.stderr == "" {
				t.Errorf("nothing on stderr: %v", r)
			}
		})
	}
}

// A bad flag's hint names the whole command, so the help it points at is
// the right one.
func TestCmdBadFlagNamesTheCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"queue", "retry", "--bogus"}, "(see chwatch queue retry --help)"},
		{[]string{"migrate", "down", "--steps", "x"}, "(see chwatch migrate down --help)"},
		{[]string{"export", "--bogus", "companies"}, "(see chwatch export --help)"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCmd(t, cmdEnviron(t), tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("want exit 2 and %q, got %v", tt.want, r)
			}
		})
	}
}

// run warns about a CHWATCH_* variable that names no key (config check
// refuses it), before anything else it does.
func TestRunWarnsUnknownEnv(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "chwatch.db")
	r := runCmd(t, cmdEnviron(t, "CHWATCH_STREAM_IDEL_TIMEOUT=60s", "CHWATCH_LOG_FORMAT=text"), "--db", missing, "--set", "http.listen=", "run")
	if r.code != 1 {
		t.Fatalf("want exit 1 (no such directory), got %v", r)
	}
	contains(t, "stderr", r.stderr, "WARN", "CHWATCH_STREAM_IDEL_TIMEOUT", "did you mean CHWATCH_STREAM_IDLE_TIMEOUT")
}

// A start timepoint no stream has is bad usage, never a silent live start.
func TestRunRefusesBadStartTimepoint(t *testing.T) {
	for _, tp := range []string{"-5", "9223372036854775807"} {
		r := runCmd(t, cmdEnviron(t), "--db", filepath.Join(t.TempDir(), "chwatch.db"), "--set", "http.listen=", "run", "--start-timepoint", tp)
		if r.code != 2 {
			t.Fatalf("--start-timepoint %s: want exit 2, got %v", tp, r)
		}
		contains(t, "stderr", r.stderr, "--start-timepoint", "leave it out to start live")
	}
}
