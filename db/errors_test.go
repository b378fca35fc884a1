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

// A full disk is told by SQLite's result code, wrapped or not, and not by
// the words of a message: a trigger raising "database or disk is full" is
// a refusal, not a full disk.
func TestIsFull(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	big := strings.Repeat("x", 64<<10) // needs pages of its own
	release := dbtest.Fill(t, d)
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO service_state (key, value, updated_at) VALUES ('big', ?, '2026-11-20T10:00:00Z')", big)
		return err
	})
	is.True(err != nil)
	is.True(db.IsFull(err))
	is.True(db.IsFull(fmt.Errorf("commit batch: %w", err)))
	release()
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO service_state (key, value, updated_at) VALUES ('big', ?, '2026-11-20T10:00:00Z')", big)
		return err
	}))

	_, err = d.W.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON service_state BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)
	is.NoErr(err)
	_, err = d.W.Exec("INSERT INTO service_state (key, value, updated_at) VALUES ('small', '', '2026-11-20T10:00:00Z')")
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "database or disk is full"))
	is.True(!db.IsFull(err))
	is.True(!db.IsFull(fmt.Errorf("database or disk is full (13)")))
	is.True(!db.IsFull(nil))
}
