package db_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

// behindTx gives a transaction on a table t (n INTEGER PRIMARY KEY, s TEXT)
// with statements run behind, rolled back when the test ends.
func behindTx(t *testing.T) *db.Behind {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	_, err := d.W.ExecContext(ctx, "CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT NOT NULL)")
	is.NoErr(err)
	tx, err := d.W.BeginTx(ctx, nil)
	is.NoErr(err)
	b := db.NewBehind(db.NewStmtCache(tx))
	t.Cleanup(func() {
		b.Close()
		tx.Rollback()
	})
	return b
}

func TestBehindRunsInOrderAndReadsSeeIt(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	b := behindTx(t)
	args := make([]any, 2)
	for i := range 103 { // not a whole number of groups
		args[0], args[1] = i, fmt.Sprint("row ", i)
		is.NoErr(b.ExecBehind(ctx, "INSERT INTO t (n, s) VALUES (?, ?)", args...))
		args[1] = "reused" // the caller's slice is its own again
	}
	// An update given after the inserts runs after them.
	is.NoErr(b.ExecBehind(ctx, "UPDATE t SET s = s || ' updated' WHERE n = ?", 102))

	var n int
	var s42, s102 string
	is.NoErr(b.QueryRowContext(ctx, "SELECT count(*), (SELECT s FROM t WHERE n = 42), (SELECT s FROM t WHERE n = 102) FROM t").Scan(&n, &s42, &s102))
	is.Equal(n, 103)
	is.Equal(s42, "row 42")
	is.Equal(s102, "row 102 updated")

	// A read through the other calls waits as well.
	_, err := b.ExecContext(ctx, "DELETE FROM t WHERE n >= 100")
	is.NoErr(err)
	is.NoErr(b.ExecBehind(ctx, "INSERT INTO t (n, s) VALUES (?, ?)", 200, "late"))
	rows, err := b.QueryContext(ctx, "SELECT n FROM t WHERE n >= 100")
	is.NoErr(err)
	var got []int
	for rows.Next() {
		var v int
		is.NoErr(rows.Scan(&v))
		got = append(got, v)
	}
	is.NoErr(rows.Err())
	rows.Close()
	is.Equal(got, []int{200})
	is.NoErr(b.Close())
	is.NoErr(b.Close()) // twice is harmless
}

func TestBehindFailureStopsWhatFollows(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	b := behindTx(t)
	is.NoErr(b.ExecBehind(ctx, "INSERT INTO t (n, s) VALUES (?, ?)", 1, "one"))
	is.NoErr(b.ExecBehind(ctx, "INSERT INTO t (n, s) VALUES (?, ?)", 1, "again")) // fails behind
	b.ExecBehind(ctx, "INSERT INTO t (n, s) VALUES (?, ?)", 2, "after")

	err := b.Wait()
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "UNIQUE constraint failed: t.n")) // the statement's own error
	// Every later call fails with it, so the transaction cannot commit over it.
	_, err = b.ExecContext(ctx, "INSERT INTO t (n, s) VALUES (?, ?)", 3, "three")
	is.True(err != nil && strings.Contains(err.Error(), "UNIQUE"))
	is.True(b.ExecBehind(ctx, "INSERT INTO t (n, s) VALUES (?, ?)", 4, "four") != nil)
	_, err = b.QueryContext(ctx, "SELECT n FROM t")
	is.True(err != nil)
	is.True(b.Close() != nil)

	// Nothing after the failure ran.
	var n int
	is.NoErr(b.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n))
	is.Equal(n, 1)
}
