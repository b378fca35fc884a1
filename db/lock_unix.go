//go:build unix

package db

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is returned by Lock when another `chwatch run` holds the database.
var ErrLocked = errors.New("database is in use by another chwatch run")

// InstanceLock is the lock a `chwatch run` holds on its database: an flock on
// the file PATH.lock, holding the holder's pid. The kernel drops it when the
// process dies, so a crash never leaves a stale lock.
type InstanceLock struct{ f *os.File }

// Lock takes the instance lock of the database at path, without waiting.
func Lock(path string) (*InstanceLock, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", name, err)
	}
	f.Chmod(FileMode) // the umask may have removed the group bits
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		buf := make([]byte, 32)
		n, _ := f.ReadAt(buf, 0)
		f.Close()
		pid := strings.TrimSpace(string(buf[:n]))
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if _, perr := strconv.Atoi(pid); perr != nil {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w: %s is held by pid %s (stop that process first; only one `chwatch run` per database)", ErrLocked, name, pid)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &InstanceLock{f: f}, nil
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
