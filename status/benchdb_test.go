package status_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
	"github.com/chwatch/chwatch/status"
	"github.com/matryer/is"
)

// bigSize is the shape of a benchmark database.
type bigSize struct {
	Companies int // about 7% in strike-off
	Events    int // stream_events rows over the last 90 days
	Jobs      int // queued officer fetches
	Changes   int // day-to-day status_changes rows over the last 90 days
}

// fullSize is the database the status target is stated for.
var fullSize = bigSize{Companies: 5_000_000, Events: 10_000_000, Jobs: 1_000_000, Changes: 300_000}

// builderVersion names the cached files: change it with the fill below.
const builderVersion = 1

// bigFill fills a migrated, empty database inside SQLite itself (recursive
// CTEs, no row crosses into Go), in table order. ?1 is the row count of
// the statement, ?2 the database's "now" in unix seconds. Company i is
// printf('%08d', i); ~7% are in strike-off, each with its first-sight
// entry from the import 90 days ago.
var bigFill = []struct{ name, sql string }{
	{"companies", `INSERT INTO companies (company_number, company_name, company_status, company_status_detail,
  company_type, jurisdiction, date_of_creation, sic_codes, address_line_1, address_line_2, locality, region,
  postal_code, country, etag, source, source_time, source_timepoint, strike_off_since, first_seen_at, updated_at, change_seq)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
SELECT printf('%08d', i),
  printf('%s %s %d LIMITED', rtrim(substr('NORTHERN SOUTHERN EASTERN  WESTERN  CENTRAL  ', 1 + 9 * (i % 5), 9)),
    rtrim(substr('TRADING  HOLDINGS CONSULTS SERVICES ', 1 + 9 * (i % 4), 9)), i),
  'active', CASE WHEN i % 100 < 7 THEN 'active-proposal-to-strike-off' END,
  'ltd', 'england-wales', date('1990-01-01', '+' || (i % 12000) || ' days'),
  CASE i % 3 WHEN 0 THEN '56290,70229' WHEN 1 THEN '62012' ELSE '68209,68320,41100' END,
  printf('%d High Street', 1 + i % 250), CASE WHEN i % 2 = 0 THEN printf('Unit %d, Riverside Business Park', i % 40) END,
  'LONDON', 'Greater London', printf('SW%d %dAB', 1 + i % 20, i % 10), 'United Kingdom',
  CASE WHEN i % 10 = 0 THEN printf('%040x', i) END, CASE WHEN i % 10 = 0 THEN 'stream' ELSE 'bulk' END,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 90 * 86400, 'unixepoch'), CASE WHEN i % 10 = 0 THEN 40000000 + i END,
  CASE WHEN i % 100 < 7 THEN strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 90 * 86400, 'unixepoch') END,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 90 * 86400, 'unixepoch'), strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 90 * 86400, 'unixepoch'), i
FROM n`},
	{"first sightings", `INSERT INTO status_changes (company_number, change, new_status, new_detail, source, first_seen,
  source_time, detected_at, change_seq)
SELECT company_number, 'entered_strike_off', 'active', 'active-proposal-to-strike-off', 'bulk', 1,
  source_time, first_seen_at, change_seq FROM companies WHERE strike_off_since IS NOT NULL AND ?1 > 0 AND ?2 > 0 ORDER BY rowid`},
	{"status changes", `INSERT INTO status_changes (company_number, change, old_status, old_detail, new_status, new_detail,
  source, first_seen, timepoint, source_time, detected_at, change_seq)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
SELECT printf('%08d', 1 + (i * 7919) % (SELECT value FROM counters WHERE name = 'bench_companies')),
  CASE i % 3 WHEN 0 THEN 'entered_strike_off' WHEN 1 THEN 'left_strike_off' ELSE 'status_changed' END,
  'active', CASE i % 3 WHEN 1 THEN 'active-proposal-to-strike-off' END,
  CASE i % 3 WHEN 2 THEN 'dissolved' ELSE 'active' END, CASE i % 3 WHEN 0 THEN 'active-proposal-to-strike-off' END,
  'stream', 0, 50000000 + i,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - (?1 - i) * (90 * 86400) / ?1, 'unixepoch'),
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - (?1 - i) * (90 * 86400) / ?1, 'unixepoch'),
  (SELECT value FROM counters WHERE name = 'bench_companies') + i
FROM n`},
	{"events", `INSERT INTO stream_events (stream, timepoint, resource_id, event_type, published_at, received_at, outcome, reason)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
SELECT 'companies', 40000000 + i, printf('%08d', 1 + (i * 104729) % (SELECT value FROM counters WHERE name = 'bench_companies')),
  CASE WHEN i % 100 = 0 THEN 'deleted' ELSE 'changed' END,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - (?1 - i) * (90 * 86400) / ?1 - 2, 'unixepoch'),
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - (?1 - i) * (90 * 86400) / ?1, 'unixepoch'),
  CASE WHEN i % 100 = 0 THEN 'deleted' WHEN i % 100 = 1 THEN 'invalid' WHEN i % 100 < 5 THEN 'stale'
       WHEN i % 100 < 15 THEN 'unchanged' ELSE 'applied' END,
  CASE WHEN i % 100 = 1 THEN 'data.company_number missing' END
FROM n`},
	{"jobs", `INSERT INTO jobs (kind, priority, company_number, state, attempts, run_after, last_error, created_at, updated_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
SELECT 'officers', 20, printf('%08d', i), 'queued', 0,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - (?1 - i) * (30 * 86400) / ?1, 'unixepoch'), NULL,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - (?1 - i) * (30 * 86400) / ?1, 'unixepoch'),
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - (?1 - i) * (30 * 86400) / ?1, 'unixepoch')
FROM n`},
	{"other jobs", `INSERT INTO jobs (kind, priority, company_number, state, attempts, run_after, last_error, created_at, updated_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 / 20)
SELECT CASE WHEN i % 10 = 0 THEN 'status_check' ELSE 'officers' END, CASE WHEN i % 10 = 0 THEN 0 ELSE 20 END,
  printf('X%07d', i), CASE WHEN i <= 3 THEN 'dead' WHEN i % 10 = 0 THEN 'queued' ELSE 'done' END,
  CASE WHEN i <= 3 THEN 8 ELSE 0 END, strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 3600, 'unixepoch'),
  CASE WHEN i <= 3 THEN 'HTTP 500 from GET /company/X0000001/officers' END,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 3600 - i, 'unixepoch'), strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 3600, 'unixepoch')
FROM n`},
	{"gaps", `INSERT INTO stream_gaps (stream, from_timepoint, to_timepoint, from_time, to_time, detected_at, reason, resolved_at, resolution)
SELECT 'companies', 40000100, 40000200, strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 80 * 86400, 'unixepoch'),
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 79 * 86400, 'unixepoch'), strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 79 * 86400, 'unixepoch'),
  '416 timepoint too old', strftime('%Y-%m-%dT%H:%M:%SZ', ?2 - 70 * 86400, 'unixepoch'), 'import' WHERE ?1 > 0`},
	{"cursor", `INSERT INTO stream_cursor (stream, timepoint, url, published_at, updated_at)
SELECT 'companies', timepoint, 'bench', published_at, strftime('%Y-%m-%dT%H:%M:%SZ', ?2, 'unixepoch')
FROM stream_events WHERE ?1 > 0 ORDER BY stream DESC, timepoint DESC LIMIT 1`},
	{"budget", `INSERT INTO api_budget (id, key_id, rate_limit, window_seconds, remain, window_end, requests, rate_limited,
  last_status, last_response_at, writer, updated_at)
VALUES (1, '0123456789abcdef', 600, 300, 412, strftime('%Y-%m-%dT%H:%M:%SZ', ?2 + 120, 'unixepoch'), ?1, 3, 200,
  strftime('%Y-%m-%dT%H:%M:%SZ', ?2, 'unixepoch'), 'bench', strftime('%Y-%m-%dT%H:%M:%SZ', ?2, 'unixepoch'))`},
	// The totals a real database keeps in the same transactions as its
	// rows, counted once here (jobs' are kept by their triggers).
	{"counters", `INSERT INTO counters (name, value)
SELECT 'companies', count(*) FROM companies WHERE ?1 >= 0 AND ?2 > 0
UNION ALL SELECT 'strike_off', count(*) FROM companies WHERE company_status = 'active'
  AND company_status_detail = 'active-proposal-to-strike-off' AND deleted_at IS NULL
UNION ALL SELECT 'events_' || outcome, count(*) FROM stream_events GROUP BY outcome
UNION ALL SELECT 'change_seq', max(change_seq) FROM status_changes`},
}

// buildBig fills the migrated, empty database at path to size sz, as of
// now. Company numbers are dense, so every number up to sz.Companies
// exists.
func buildBig(tb testing.TB, path string, sz bigSize, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := d.MigrateUp(ctx, now); err != nil {
		tb.Fatal(err)
	}
	d.Close()

	// One connection, no journal, no fsync: a fill that fails is thrown
	// away, never resumed.
	c, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetMaxOpenConns(1)
	for _, p := range []string{"PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF", "PRAGMA cache_size = -262144", "PRAGMA temp_store = MEMORY"} {
		if _, err := c.ExecContext(ctx, p); err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
	}
	if _, err := c.ExecContext(ctx, "INSERT INTO counters (name, value) VALUES ('bench_companies', ?)", sz.Companies); err != nil {
		tb.Fatal(err)
	}
	counts := map[string]int{"companies": sz.Companies, "status changes": sz.Changes, "events": sz.Events, "jobs": sz.Jobs,
		"other jobs": sz.Jobs, "first sightings": 1, "gaps": 1, "cursor": 1, "budget": sz.Jobs, "counters": 1}
	for _, s := range bigFill {
		start := time.Now()
		if _, err := c.ExecContext(ctx, s.sql, counts[s.name], now.Unix()); err != nil {
			tb.Fatalf("fill %s: %v", s.name, err)
		}
		if testing.Verbose() {
			tb.Logf("filled %s in %s", s.name, time.Since(start).Round(time.Millisecond))
		}
	}
	for _, q := range []string{"DELETE FROM counters WHERE name = 'bench_companies'", "PRAGMA journal_mode = WAL"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}

// cachedBig returns the path of a database of size sz built at most once
// per builder version and schema: under $CHWATCHTEST_BENCH_CACHE, or the
// system's temporary directory. A build that did not finish is started
// afresh.
func cachedBig(tb testing.TB, sz bigSize) string {
	tb.Helper()
	dir := os.Getenv("CHWATCHTEST_BENCH_CACHE")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "chwatch-bench-status")
	}
	name := fmt.Sprintf("v%d-schema%d-%d-%d-%d-%d", builderVersion, db.Latest(), sz.Companies, sz.Events, sz.Jobs, sz.Changes)
	path := filepath.Join(dir, name, "chwatch.db")
	done := path + ".complete"
	if _, err := os.Stat(done); err == nil {
		return path
	}
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	tb.Logf("building the benchmark database %s (once; cached)", path)
	buildBig(tb, path, sz, time.Now())
	tb.Logf("built in %s", time.Since(start).Round(time.Second))
	if err := os.WriteFile(done, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// The benchmark's builder, small: its rows are what a real database holds
// (counters equal to the rows they count, a cursor at the last event, jobs
// counted by their triggers), status reads them back, and the cache
// builds once.
func TestBigDB(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	t.Setenv("CHWATCHTEST_BENCH_CACHE", t.TempDir())
	sz := bigSize{Companies: 2000, Events: 5000, Jobs: 400, Changes: 300}
	path := cachedBig(t, sz)
	st, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(cachedBig(t, sz), path) // the same file, not built again
	again, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(again.ModTime(), st.ModTime())

	d, err := db.OpenReader(ctx, path)
	is.NoErr(err)
	defer d.Close()
	one := func(q string) (n int64) {
		is.NoErr(d.R.QueryRowContext(ctx, q).Scan(&n))
		return n
	}
	var mode string
	is.NoErr(d.R.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	is.Equal(mode, "wal")
	c, err := db.Counters(ctx, d.R)
	is.NoErr(err)
	is.Equal(c["companies"], one("SELECT count(*) FROM companies"))
	is.Equal(c["companies"], int64(sz.Companies))
	is.Equal(c["strike_off"], one("SELECT count(*) FROM strike_off_companies"))
	is.Equal(c["strike_off"], int64(sz.Companies*7/100))
	is.Equal(one("SELECT count(*) FROM stream_events"), int64(sz.Events))
	for _, o := range []string{"applied", "unchanged", "stale", "deleted", "invalid"} {
		is.Equal(c["events_"+o], one("SELECT count(*) FROM stream_events WHERE outcome = '"+o+"'"))
	}
	is.Equal(c["change_seq"], one("SELECT max(change_seq) FROM status_changes"))
	rows, err := d.R.QueryContext(ctx, "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state")
	is.NoErr(err)
	for rows.Next() {
		var kind, state string
		var n int64
		is.NoErr(rows.Scan(&kind, &state, &n))
		is.Equal(c["jobs."+kind+"."+state], n) // kept by the triggers
	}
	is.NoErr(rows.Err())
	rows.Close()
	is.Equal(one("SELECT timepoint FROM stream_cursor"), one("SELECT max(timepoint) FROM stream_events"))
	is.Equal(one("SELECT count(*) FROM status_changes WHERE first_seen = 1"), c["strike_off"])

	r, err := status.Gather(ctx, d, th, time.Now())
	is.NoErr(err)
	is.Equal(r.Companies, int64(sz.Companies))
	is.Equal(r.REST.Jobs.Count(queue.Officers, queue.StateQueued), int64(sz.Jobs))
	is.Equal(r.REST.Jobs.Count(queue.StatusCheck, queue.StateQueued), int64(sz.Jobs/200))
	is.Equal(r.Queue.Dead, int64(3))
	is.True(r.REST.OldestQueuedAgeSeconds[queue.Officers] > 29*86400) // a month of backlog
	is.True(r.REST.Budget != nil)
	is.Equal(len(r.Recent), 5)
	is.Equal(len(r.Gaps), 0) // the one gap is resolved
}
