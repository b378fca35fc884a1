// Package app is chwatch's command line: one file per command, each wiring
// the packages that do the work. main.go only calls Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/logging"
	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
)

// Version and Commit are set at build time with -ldflags -X; without them
// they come from the module's build information.
var (
	Version = ""
	Commit  = ""
)

func version() (string, string) {
	v, c := Version, Commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

// Exit codes of every command but status.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: code, err: err}
}

func usageErr(format string, a ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, a...)}
}

// env is what a command may reach of the outside world, so tests can run
// many in one process.
type env struct {
	stdout, stderr io.Writer
	environ        []string
	lookupFiles    bool // read /etc/chwatch/chwatch.toml when present
	// lockWait bounds the wait for the instance lock (0: defaultLockWait).
	lockWait time.Duration
}

// Run runs chwatch with args (args[0] is the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	e := &env{stdout: stdout, stderr: stderr, environ: environ, lookupFiles: true}
	return e.run(ctx, args)
}

func (e *env) run(ctx context.Context, args []string) int {
	usageCode := ExitUsage
	notFound := false
	if isStatus(args) {
		usageCode = exitUnknown
	}
	app := &cli.App{
		Name:  "chwatch",
		Usage: "watch the Companies House companies stream into SQLite and catch strike-offs",
		Description: `chwatch mirrors UK companies from the Companies House companies stream into one
SQLite file, detects companies entering and leaving "active - proposal to strike
off", fetches their officers through the rate-limited REST API, and exports CSV.

Configuration: --config FILE, else CHWATCH_CONFIG, else /etc/chwatch/chwatch.toml
when it exists; every key can be set as CHWATCH_SECTION_NAME in the environment.
See config.example.toml. Try it without keys: chwatch run --sim`,
		Writer:          e.stdout,
		ErrWriter:       e.stderr,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "configuration `FILE` (default: $CHWATCH_CONFIG, else /etc/chwatch/chwatch.toml when it exists)"},
			&cli.StringFlag{Name: "db", Usage: "database `PATH` (database.path)"},
			&cli.StringSliceFlag{Name: "set", Usage: "set a configuration key: --set stream.idle_timeout=60s (repeatable; beats file and environment)"},
		},
		Commands: []*cli.Command{
			e.runCommand(),
			e.statusCommand(),
			e.importCommand(),
			e.exportCommand(),
			e.migrateCommand(),
			e.queueCommand(),
			e.configCommand(),
			e.simCommand(),
			e.backupCommand(),
			e.gapsCommand(),
			e.alertCommand(),
			e.versionCommand(),
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return &exitError{code: usageCode, err: fmt.Errorf("%w (see chwatch --help)", err)}
		},
		CommandNotFound: func(c *cli.Context, name string) {
			notFound = true // cli returns no error for it: `chwatch --db x bogus`, `chwatch migrate bogus`
			fmt.Fprintf(e.stderr, "chwatch: unknown command %q (see chwatch --help)\n", name)
		},
		ExitErrHandler: func(*cli.Context, error) {}, // we map errors to codes ourselves
	}
	for _, cmd := range app.Commands {
		setUsageCode(cmd, usageCode)
	}
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") && app.Command(args[1]) == nil {
		fmt.Fprintf(e.stderr, "chwatch: unknown command %q (see chwatch --help)\n", args[1])
		return ExitUsage
	}
	err := app.RunContext(ctx, args)
	if err == nil && notFound {
		return usageCode
	}
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, errQuiet) {
		fmt.Fprintf(e.stderr, "chwatch: %v\n", err)
	}
	return code
}

// errQuiet ends a command with its exit code after it printed its own report.
var errQuiet = errors.New("quiet")

// commandPath is the command's name as typed after chwatch ("queue retry").
func commandPath(c *cli.Context) string {
	var names []string
	for _, l := range c.Lineage() {
		if l.Command != nil && l.Command.Name != "" && l.Command.Name != c.App.Name && (len(names) == 0 || names[0] != l.Command.Name) {
			names = append([]string{l.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

func setUsageCode(cmd *cli.Command, code int) {
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return &exitError{code: code, err: fmt.Errorf("%s: %w (see chwatch %[1]s --help)", commandPath(c), err)}
	}
	for _, sub := range cmd.Subcommands {
		setUsageCode(sub, code)
	}
}

func isStatus(args []string) bool {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--config" || a == "--db" || a == "--set" {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		return a == "status"
	}
	return false
}

// loadConfig reads the configuration the global flags point at.
func (e *env) loadConfig(c *cli.Context) (*config.Config, error) {
	flags := map[string]string{}
	for _, kv := range c.StringSlice("set") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usageErr("--set %q: want KEY=VALUE, e.g. --set stream.idle_timeout=60s", kv)
		}
		flags[k] = v
	}
	if p := c.String("db"); p != "" {
		flags["database.path"] = p
	}
	cfg, err := config.Load(config.Sources{File: c.String("config"), Env: e.environ, Flags: flags, LookupFiles: e.lookupFiles})
	if err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("configuration: %w", err))
	}
	return cfg, nil
}

// openReader opens the configured database for reading (it must exist),
// refusing a schema from a newer chwatch.
func (e *env) openReader(c *cli.Context) (*db.DB, error) {
	cfg, err := e.loadConfig(c)
	if err != nil {
		return nil, err
	}
	d, err := db.OpenReader(c.Context, cfg.Database.Path)
	return checked(c.Context, d, err)
}

// openWriter opens the configured database for writing, creating it,
// refusing a schema from a newer chwatch.
func (e *env) openWriter(c *cli.Context) (*db.DB, error) {
	cfg, err := e.loadConfig(c)
	if err != nil {
		return nil, err
	}
	d, err := db.Open(c.Context, cfg.Database.Path, dbOptions(cfg)...)
	return checked(c.Context, d, err)
}

// checked refuses a database whose schema this chwatch does not know: a
// command must not read tables whose meaning may have changed, nor write them.
func checked(ctx context.Context, d *db.DB, err error) (*db.DB, error) {
	if err != nil {
		return nil, err
	}
	if _, err := d.CheckVersion(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// dbOptions is how every writer opens the database under cfg: a new file
// gets database.page_size; with database.checkpoints = "external" no
// connection checkpoints by itself.
func dbOptions(cfg *config.Config) []db.Option {
	opts := []db.Option{db.PageSize(cfg.Database.PageSize)}
	if cfg.Database.Checkpoints == "external" {
		opts = append(opts, db.NoAutoCheckpoint())
	}
	return opts
}

// logger builds the slog logger the configuration asks for. Its handler is
// a *logging.Sampler: flushLog writes its pending counts.
func (e *env) logger(cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	format := cfg.Log.Format
	if format == "" {
		format = "json"
		if f, ok := e.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(e.stderr, opts)
	if format == "text" {
		h = slog.NewTextHandler(e.stderr, opts)
	}
	// Keys never reach the log, whatever a message holds; a warning
	// repeated within a minute is counted, not written again.
	h = logging.Redact(h, logging.Secrets(cfg.Secrets()...))
	l := slog.New(logging.NewSampler(h, logging.SampleConfig{}))
	for _, w := range cfg.Warnings {
		l.Warn(w)
	}
	return l
}

// defaultLogConfig is the logging of commands that read no configuration.
func defaultLogConfig() *config.Config {
	c := config.Default()
	return &c
}

// positionals returns a command's positional arguments after parsing the
// flags that follow them: urfave/cli v2 stops parsing flags at the first
// positional argument, and SPEC.md's own forms put flags last (chwatch
// export strike-off --out FILE, gaps resolve ID --note TEXT). Every command
// taking arguments reads them through it.
func positionals(c *cli.Context) ([]string, error) {
	var pos []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "help" || name == "h" {
			parent := c
			if l := c.Lineage(); len(l) > 1 {
				parent = l[1]
			}
			if err := cli.ShowCommandHelp(parent, c.Command.Name); err != nil {
				return nil, err
			}
			return nil, &exitError{code: ExitOK, err: errQuiet}
		}
		if !defined(c.Command, name) {
			return nil, usageErr("%s: flag provided but not defined: %s (see chwatch %[1]s --help)", commandPath(c), a)
		}
		if !hasVal {
			if isBool(c.Command, name) {
				val = "true"
			} else {
				if i+1 >= len(args) {
					return nil, usageErr("%s: flag needs an argument: %s (see chwatch %[1]s --help)", commandPath(c), a)
				}
				i++
				val = args[i]
			}
		}
		if err := c.Set(name, val); err != nil {
			return nil, usageErr("%s: flag %s: %v (see chwatch %[1]s --help)", commandPath(c), a, err)
		}
	}
	return pos, nil
}

func defined(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

func isBool(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		if _, ok := f.(*cli.BoolFlag); ok {
			for _, n := range f.Names() {
				if n == name {
					return true
				}
			}
		}
	}
	return false
}

// flushLog writes the counts of sampled warnings still pending (at exit).
func flushLog(l *slog.Logger) {
	if s, ok := l.Handler().(*logging.Sampler); ok {
		s.Flush()
	}
}
