package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
	"github.com/matryer/is"
)

// pendingJobs lists "kind company state" of the jobs in path, in id order.
func pendingJobs(tb testing.TB, path string) []string {
	tb.Helper()
	d, err := db.OpenReader(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	return dbtest.Strings(tb, d.R, "SELECT kind || ' ' || company_number || ' ' || state FROM jobs ORDER BY id")
}

func TestCmdQueueAdd(t *testing.T) {
	env := cmdEnviron(t)
	t.Run("QueuesAndMoves", func(t *testing.T) {
		is := is.New(t)
		path := migratedDB(t)
		// A status check deferred for an hour, and one running.
		withDB(t, path, func(d *db.DB) error {
			q := queue.New(d, queue.Options{})
			ctx := context.Background()
			for _, n := range []string{"SC571653", "00000006"} {
				if _, err := q.Enqueue(ctx, queue.StatusCheck, n); err != nil {
					return err
				}
			}
			j, _, err := q.Claim(ctx)
			if err != nil {
				return err
			}
			if err := q.Defer(ctx, j, time.Now().Add(time.Hour), "budget"); err != nil {
				return err
			}
			_, _, err = q.Claim(ctx)
			return err
		})
		r := runCmd(t, env, "--db", path, "queue", "add", "status_check", "sc571653", "00000006", "OC301234", "OC301234")
		is.Equal(r.code, 0)
		contains(t, "stdout", r.stdout, "status_check: 1 queued, 1 moved to now, 1 already running")
		is.Equal(pendingJobs(t, path), []string{"status_check SC571653 queued", "status_check 00000006 running", "status_check OC301234 queued"})

		// The moved one is due now: a claim takes it before the new one.
		withDB(t, path, func(d *db.DB) error {
			j, ok, err := queue.New(d, queue.Options{}).Claim(context.Background())
			if err == nil && (!ok || j.Company != "SC571653") {
				err = errors.New("the moved job is not due: claimed " + j.Company)
			}
			return err
		})
	})
	t.Run("IgnoresMaxDepth", func(t *testing.T) {
		is := is.New(t)
		path := migratedDB(t)
		r := runCmd(t, env, "--db", path, "--set", "queue.max_depth=1", "queue", "add", "officers", "00000001", "00000002", "00000003")
		is.Equal(r.code, 0)
		contains(t, "stdout", r.stdout, "officers: 3 queued")
		is.Equal(len(pendingJobs(t, path)), 3)
	})
	t.Run("PSCsWithTheOption", func(t *testing.T) {
		is := is.New(t)
		path := migratedDB(t)
		r := runCmd(t, env, "--db", path, "--set", "enrich.pscs=true", "queue", "add", "pscs", "SC571653")
		is.Equal(r.code, 0)
		contains(t, "stdout", r.stdout, "pscs: 1 queued")
		is.Equal(pendingJobs(t, path), []string{"pscs SC571653 queued"})
	})
	bad := []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"UnknownKind", []string{"officer", "SC571653"}, []string{`"officer"`, "status_check or officers or filing_check or pscs"}},
		{"PSCsNeedTheOption", []string{"pscs", "SC571653"}, []string{"enrich.pscs is off", "CHWATCH_ENRICH_PSCS=true", "nothing was queued"}},
		{"SweepNotAdded", []string{"sweep_check", "SC571653"}, []string{`"sweep_check"`}},
		{"ShortNumber", []string{"officers", "SC571653", "1234567"}, []string{`"1234567"`, "8 letters and digits", "nothing was queued"}},
		{"LongNumber", []string{"officers", "SC5716531"}, []string{`"SC5716531"`}},
		{"NotAlphanumeric", []string{"officers", "SC57-653"}, []string{`"SC57-653"`}},
		{"NoNumbers", []string{"officers"}, []string{"company numbers"}},
		{"Nothing", nil, []string{"KIND"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			path := migratedDB(t)
			r := runCmd(t, env, append([]string{"--db", path, "queue", "add"}, tt.args...)...)
			is.Equal(r.code, 2)
			contains(t, "stderr", r.stderr, tt.want...)
			is.Equal(len(pendingJobs(t, path)), 0) // nothing queued, not even the good numbers
		})
	}
	t.Run("NoDatabase", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "none.db")
		r := runCmd(t, env, "--db", path, "queue", "add", "officers", "SC571653")
		is.Equal(r.code, 1)
		contains(t, "stderr", r.stderr, "does not exist")
		_, err := db.OpenReader(context.Background(), path)
		is.True(errors.Is(err, db.ErrNotExist)) // not created either
	})
}

func TestCmdQueueStatusRetryPurge(t *testing.T) {
	is := is.New(t)
	env := cmdEnviron(t)
	path := migratedDB(t)
	ctx := context.Background()
	withDB(t, path, func(d *db.DB) error {
		q := queue.New(d, queue.Options{MaxAttempts: 1, MaxDepth: 3})
		for _, n := range []string{"00000001", "00000002", "00000003", "00000004"} {
			if _, err := q.Enqueue(ctx, queue.Officers, n); err != nil {
				return err
			}
		}
		if _, err := q.Enqueue(ctx, queue.StatusCheck, "SC571653"); err != nil {
			return err
		}
		for _, n := range []string{"00000001", "00000002"} {
			j, _, err := q.Claim(ctx, queue.Officers)
			if err != nil {
				return err
			}
			if err := q.Fail(ctx, j, errors.New("GET /company/"+n+"/officers: 500 Internal Server Error")); err != nil {
				return err
			}
		}
		return nil
	})

	r := runCmd(t, env, "--db", path, "queue", "status")
	is.Equal(r.code, 0)
	lines := strings.Split(r.stdout, "\n")
	is.True(strings.HasPrefix(lines[0], "KIND"))
	contains(t, "queue status", r.stdout,
		"status_check  1", "officers      1       0        0     2",
		"refused past queue.max_depth: 1",
		"dead job 2: officers 00000002 after 1 attempts: GET /company/00000002/officers: 500 Internal Server Error",
		"dead job 1: officers 00000001 after 1 attempts")
	for _, k := range queue.Kinds() {
		contains(t, "queue status", r.stdout, string(k)) // every kind, even with no jobs
	}

	r = runCmd(t, env, "--db", path, "queue", "retry")
	is.Equal(r.code, 0)
	contains(t, "stdout", r.stdout, "retried 2 dead jobs")
	r = runCmd(t, env, "--db", path, "queue", "status")
	contains(t, "queue status", r.stdout, "officers      3       0        0     0")

	withDB(t, path, func(d *db.DB) error {
		q := queue.New(d, queue.Options{MaxAttempts: 1})
		j, _, err := q.Claim(ctx, queue.Officers)
		if err != nil {
			return err
		}
		return q.Fail(ctx, j, errors.New("boom"))
	})
	r = runCmd(t, env, "--db", path, "queue", "purge")
	is.Equal(r.code, 2) // --dead is required
	r = runCmd(t, env, "--db", path, "queue", "purge", "--dead")
	is.Equal(r.code, 0)
	contains(t, "stdout", r.stdout, "purged 1 dead jobs")
	is.Equal(len(pendingJobs(t, path)), 3)
}
