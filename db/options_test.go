package db_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/chwatch/chwatch/db"
	"github.com/matryer/is"
)

// With NoAutoCheckpoint no connection of chwatch's checkpoints by itself
// (database.checkpoints = "external", for Litestream); without it a commit
// checkpoints once the WAL holds db.AutoCheckpointPages.
func TestNoAutoCheckpoint(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		opts []db.Option
		want int
	}{
		{"Default", nil, db.AutoCheckpointPages},
		{"External", []db.Option{db.NoAutoCheckpoint()}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			d, err := db.Open(ctx, filepath.Join(t.TempDir(), "c.db"), tt.opts...)
			is.NoErr(err)
			defer d.Close()
			var w, r int
			is.NoErr(d.W.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&w))
			is.NoErr(d.R.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&r))
			is.Equal(w, tt.want)
			is.Equal(r, tt.want)
		})
	}
}

// A restore by another tool leaves 0644 files: TightenModes makes them
// 0660, and leaves a stricter mode alone.
func TestTightenModes(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "r.db")
	for p, mode := range map[string]os.FileMode{path: 0o644, path + "-wal": 0o666, path + "-shm": 0o600} {
		is.NoErr(os.WriteFile(p, nil, mode))
		is.NoErr(os.Chmod(p, mode))
	}
	fixed, err := db.TightenModes(path)
	is.NoErr(err)
	is.Equal(len(fixed), 2)
	is.Equal(fixed[0], db.ModeFix{Path: path, Was: 0o644})
	is.Equal(fixed[1], db.ModeFix{Path: path + "-wal", Was: 0o666})
	for p, want := range map[string]os.FileMode{path: 0o660, path + "-wal": 0o660, path + "-shm": 0o600} {
		st, err := os.Stat(p)
		is.NoErr(err)
		is.Equal(st.Mode().Perm(), want)
	}
	fixed, err = db.TightenModes(filepath.Join(dir, "missing.db"))
	is.NoErr(err)
	is.Equal(len(fixed), 0)
}
