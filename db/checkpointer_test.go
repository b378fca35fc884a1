package db_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

// walPeak writes 40 transactions of 20 KB each on d and returns the WAL
// file's size at its largest and the frames of one transaction; withCk
// checkpoints through a Checkpointer limited to 60 frames, otherwise
// nothing checkpoints.
func walPeak(t *testing.T, d *db.DB, withCk bool) (peak, txFrames int64) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	_, err := d.W.ExecContext(ctx, "CREATE TABLE t (b BLOB NOT NULL)")
	is.NoErr(err)
	_, err = d.W.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)") // start from an empty WAL
	is.NoErr(err)
	var ck *db.Checkpointer
	if withCk {
		ck, err = d.Checkpointer(ctx)
		is.NoErr(err)
		is.True(ck != nil)
		db.SetCheckpointLimit(ck, 60)
		is.Equal(autoCheckpoint(t, d), 0) // the writer leaves checkpoints to ck
	} else {
		_, err = d.W.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0")
		is.NoErr(err)
	}
	frame := int64(config.Default().Database.PageSize + 24)
	blob := make([]byte, 20<<10)
	for i := range 40 {
		_, err := d.W.ExecContext(ctx, "INSERT INTO t (b) VALUES (?)", blob)
		is.NoErr(err)
		st, err := os.Stat(d.Path + "-wal")
		is.NoErr(err)
		if i == 0 {
			txFrames = st.Size() / frame
		}
		peak = max(peak, st.Size())
		ck.Committed()
		is.NoErr(ck.Ready())
	}
	is.NoErr(ck.Close(ctx))
	var n int
	is.NoErr(d.R.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n))
	is.Equal(n, 40)
	return peak, txFrames
}

func TestCheckpointerBoundsWAL(t *testing.T) {
	is := is.New(t)
	frame := int64(config.Default().Database.PageSize + 24)

	unchecked, _ := walPeak(t, dbtest.Open(t), false)
	d := dbtest.Open(t)
	peak, txFrames := walPeak(t, d, true)
	t.Logf("WAL peak: %d frames checkpointed in the background (%d a transaction), %d never checkpointed", peak/frame, txFrames, unchecked/frame)
	is.True(txFrames >= 10)
	// At most the limit and two transactions (later ones a few frames
	// larger than the first: the table's interior pages), whatever the
	// goroutines did.
	is.True(peak <= 32+(60+3*txFrames)*frame)
	is.True(unchecked > 3*peak)

	is.Equal(autoCheckpoint(t, d), db.AutoCheckpointPages) // the writer's own checkpoints are back
}

func TestCheckpointerExternal(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "chwatch.db"), db.NoAutoCheckpoint())
	is.NoErr(err)
	defer d.Close()
	ck, err := d.Checkpointer(ctx)
	is.NoErr(err)
	is.True(ck == nil) // another program owns checkpoints: none run here
	ck.Committed()
	is.NoErr(ck.Ready())
	is.NoErr(ck.Close(ctx))
	is.Equal(autoCheckpoint(t, d), 0)
}

// autoCheckpoint is the writer's wal_autocheckpoint.
func autoCheckpoint(t *testing.T, d *db.DB) int {
	t.Helper()
	var n int
	if err := d.W.QueryRow("PRAGMA wal_autocheckpoint").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
