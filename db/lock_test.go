package db_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/matryer/is"
)

// The instance lock belongs to the database file, whatever name reaches it.
// flock locks belong to an open file, so a second Lock in this process
// conflicts with the first exactly as another process's would.
func TestLock(t *testing.T) {
	ctx := context.Background()
	pid := "pid " + strconv.Itoa(os.Getpid())

	t.Run("SecondLockRefusedNamingPID", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "chwatch.db")
		l, err := db.Lock(ctx, path, 0, nil)
		is.NoErr(err)
		_, err = db.Lock(ctx, path, 0, nil)
		is.True(errors.Is(err, db.ErrLocked))
		is.True(strings.Contains(err.Error(), pid))
		is.NoErr(l.Unlock())
		l2, err := db.Lock(ctx, path, 0, nil)
		is.NoErr(err)
		is.NoErr(l2.Unlock())
	})

	// A restart right after a crash may find the lock not yet released:
	// Lock waits for it, up to its bound, and then refuses naming the pid.
	t.Run("WaitsUpToItsBound", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "chwatch.db")
		l, err := db.Lock(ctx, path, 0, nil)
		is.NoErr(err)
		defer l.Unlock()
		var told []string
		start := time.Now()
		_, err = db.Lock(ctx, path, 150*time.Millisecond, func(holder string) { told = append(told, holder) })
		is.True(errors.Is(err, db.ErrLocked))
		is.True(strings.Contains(err.Error(), pid))
		is.True(time.Since(start) >= 150*time.Millisecond)  // it waited its bound
		is.Equal(told, []string{strconv.Itoa(os.Getpid())}) // and said so once
	})

	t.Run("TakesTheLockOnceReleased", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "chwatch.db")
		l, err := db.Lock(ctx, path, 0, nil)
		is.NoErr(err)
		waiting := make(chan struct{})
		got := make(chan error, 1)
		go func() {
			l2, err := db.Lock(ctx, path, time.Minute, func(string) { close(waiting) })
			if err == nil {
				err = l2.Unlock()
			}
			got <- err
		}()
		select {
		case <-waiting: // it found the lock held and waits
		case err := <-got:
			t.Fatalf("Lock returned %v instead of waiting", err)
		}
		is.NoErr(l.Unlock())
		is.NoErr(<-got)
	})

	t.Run("CancelStopsTheWait", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "chwatch.db")
		l, err := db.Lock(ctx, path, 0, nil)
		is.NoErr(err)
		defer l.Unlock()
		cctx, cancel := context.WithCancel(ctx)
		_, err = db.Lock(cctx, path, time.Hour, func(string) { cancel() })
		is.True(errors.Is(err, context.Canceled))
	})

	// SQLite resolves symbolic links (its -wal and -shm sit beside the real
	// file), and so does the lock.
	t.Run("SymlinkIsTheSameDatabase", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "two.db")
		d, err := db.Open(ctx, path)
		is.NoErr(err)
		d.Close()
		is.NoErr(os.Symlink(path, filepath.Join(dir, "link.db")))
		is.NoErr(os.Symlink(dir, filepath.Join(dir, "dirlink")))
		l, err := db.Lock(ctx, path, 0, nil)
		is.NoErr(err)
		defer l.Unlock()
		for _, other := range []string{"link.db", "dirlink/two.db", "dirlink/link.db"} {
			_, err = db.Lock(ctx, filepath.Join(dir, other), 0, nil)
			is.True(errors.Is(err, db.ErrLocked)) // through another name
			is.True(strings.Contains(err.Error(), pid))
		}
	})

	// SQLite names its -wal and -shm after the path it was given, so two
	// hard links of one database are two journals over one file: no lock
	// can make that safe, and every opener refuses it.
	t.Run("HardLinkRefused", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "two.db")
		d, err := db.Open(ctx, path)
		is.NoErr(err)
		d.Close()
		hard := filepath.Join(dir, "hard.db")
		is.NoErr(os.Link(path, hard))
		for _, name := range []string{path, hard} {
			_, err = db.Lock(ctx, name, 0, nil)
			is.True(errors.Is(err, db.ErrHardLinked))
			is.True(strings.Contains(err.Error(), "2 hard links"))
			_, err = db.Open(ctx, name)
			is.True(errors.Is(err, db.ErrHardLinked))
			_, err = db.OpenReader(ctx, name)
			is.True(errors.Is(err, db.ErrHardLinked))
		}
		is.NoErr(os.Remove(hard))
		l, err := db.Lock(ctx, path, 0, nil)
		is.NoErr(err)
		is.NoErr(l.Unlock())
	})
}
