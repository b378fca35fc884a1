//go:build unix

package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLocked is returned by Lock when another chwatch process holds the
// database's instance lock (a `chwatch run`, or a schema change).
var ErrLocked = errors.New("database is in use by another chwatch process")

// lockPoll is how often Lock tries again while it waits.
const lockPoll = 25 * time.Millisecond

// InstanceLock is the lock a `chwatch run` holds on its database for its
// whole life, and every schema change holds while it changes the schema: an
// flock on the file REALPATH.lock beside the database's real path, holding
// the holder's pid. The kernel drops it when the process dies, so a crash
// never leaves a stale lock. It is a file of its own, never the database:
// closing any descriptor of the database file would drop SQLite's own
// POSIX locks on it.
type InstanceLock struct {
	f    *os.File
	name string
}

// Lock takes the instance lock of the database at path. The lock belongs to
// the file, not to the name: symbolic links are resolved as SQLite resolves
// them, and a database with several hard links is refused (ErrHardLinked).
//
// While another process holds the lock, Lock tries again until wait has
// passed (a restart right after a crash can find the dead process's lock
// not yet released), telling waiting once with the holder's pid, then
// returns an error wrapping ErrLocked that names the pid. It never takes a
// lock over because its holder looks dead: pids are reused.
func Lock(ctx context.Context, path string, wait time.Duration, waiting func(holder string)) (*InstanceLock, error) {
	real, err := realPath(path)
	if err != nil {
		return nil, err
	}
	if err := checkLinks(path, real); err != nil {
		return nil, err
	}
	if err := CheckDir(real, "set database.path"); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	name := real + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", name, err)
	}
	f.Chmod(FileMode) // the umask may have removed the group bits
	deadline := time.Now().Add(wait)
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		holder := readHolder(f)
		if !time.Now().Before(deadline) {
			f.Close()
			waited := ""
			if wait > 0 {
				waited = fmt.Sprintf(" after waiting %s", wait)
			}
			return nil, fmt.Errorf("%w: %s is held by pid %s%s (stop that process first: only one `chwatch run` per database, and the schema changes only while none runs)", ErrLocked, name, holder, waited)
		}
		if !told && waiting != nil {
			waiting(holder)
			told = true
		}
		t := time.NewTimer(min(lockPoll, time.Until(deadline)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("wait for the lock %s held by pid %s: %w", name, holder, ctx.Err())
		}
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &InstanceLock{f: f, name: name}, nil
}

// readHolder returns the pid the lock's holder wrote, or "unknown" (it
// writes it just after taking the lock).
func readHolder(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid := strings.TrimSpace(string(buf[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return "unknown"
	}
	return pid
}

// Unlock releases the lock. The file stays: removing it would race with the
// next holder.
func (l *InstanceLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}
