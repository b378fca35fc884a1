package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

// Every statement the queue runs on a hot path is served by the index made
// for it: no scan of jobs, no sort. Without sqlite_stat1 the planner knows
// nothing of the row counts, so this is what it does on a fresh database
// and with a million jobs alike.
func TestPlans(t *testing.T) {
	d := dbtest.Open(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		for _, k := range Kinds() {
			for _, n := range []string{"00000001", "00000002", "SC571653"} {
				if _, err := EnqueueTx(ctx, tx, k, n, now, 0); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := db.FormatTime(now)
	tests := []struct {
		name  string
		query string
		args  []any
		index string
	}{
		{"Claim", ClaimSQL, []any{ts, "token", ts, ""}, "jobs_claim"},
		{"ClaimKinds", ClaimSQL, []any{ts, "token", ts, ",officers,"}, "jobs_claim"},
		{"RecoverExpired", recoverSQL, []any{ts}, "jobs_state"},
		{"RecoverOrphans", orphansSQL, []any{ts}, "jobs_state"},
		{"Cancel", cancelSQL, []any{"officers", "SC571653"}, "jobs_pending"},
		{"EnqueueNow", moveSQL, []any{ts, "officers", "SC571653"}, "jobs_pending"},
		{"Oldest", OldestSQL, []any{"officers"}, "jobs_oldest"},
		{"ListDead", listDeadSQL, []any{10}, "jobs_state"},
		{"DeleteDone", deleteDoneSQL, []any{ts, 100}, "jobs_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p := dbtest.Plan(t, d, tt.query, tt.args...)
			t.Log(p)
			is.True(strings.Contains(p, "INDEX "+tt.index)) // served by its index
			is.True(!strings.Contains(p, "TEMP B-TREE"))    // in index order, without a sort
			for _, line := range strings.Split(p, "\n") {
				is.True(!strings.HasPrefix(line, "SCAN jobs") || strings.Contains(line, "INDEX")) // never a full scan of jobs
			}
		})
	}
}
