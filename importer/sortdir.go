//go:build unix

package importer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrNoSpace means the disk beside the database filled while the import
// sorted the file's rows: nothing of the run was applied.
var ErrNoSpace = errors.New("no space to sort the file")

// ErrSortBusy means another import of the same database is sorting.
var ErrSortBusy = errors.New("another import of this database is running")

// sortDir is the directory the sorted runs go to: DB.import-sort beside the
// database, never /tmp (a Raspberry Pi's /tmp may be RAM, and a unit with
// PrivateTmp has its own), mode 0700 with files 0600, since the runs hold
// the file's rows. An import holds an flock on its lock file for as long as
// it sorts, removes what an earlier, crashed import left there, and removes
// the directory when it ends.
type sortDir struct {
	path string
	lock *os.File
	seq  int
	// createFile opens a new run file; a test replaces it to fill the
	// disk.
	createFile func(name string) (io.WriteCloser, error)
}

const sortLockName = "lock"

// sortDirOf is the sort directory of the database at dbPath.
func sortDirOf(dbPath string) string { return dbPath + ".import-sort" }

// openSortDir creates and locks the sort directory of the database at
// dbPath, and removes stale runs from it.
func openSortDir(dbPath string) (*sortDir, error) {
	path := sortDirOf(dbPath)
	for range 3 {
		if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create the import's sort directory %s (the import writes the file's rows there, sorted, before applying them; the database's directory must be writable): %w", path, err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return nil, fmt.Errorf("open the import's sort directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("open the import's sort directory: %s exists and is not a directory: move it away", path)
		}
		os.Chmod(path, 0o700)
		name := filepath.Join(path, sortLockName)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open the import's sort directory (the database's directory must be writable): %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			holder, _ := io.ReadAll(io.LimitReader(f, 32))
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w (pid %s, sorting in %s): wait for it to end", ErrSortBusy, strings.TrimSpace(string(holder)), path)
			}
			return nil, fmt.Errorf("lock the import's sort directory %s: %w", path, err)
		}
		// The holder before may have removed the directory between the
		// open and the lock: the lock counts only on the file still there.
		if !sameFile(f, name) {
			f.Close()
			continue
		}
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		d := &sortDir{path: path, lock: f, createFile: createRunFile}
		if err := d.clean(); err != nil {
			d.remove()
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("lock the import's sort directory %s: it keeps being removed under this import", path)
}

func sameFile(f *os.File, name string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Lstat(name)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

func createRunFile(name string) (io.WriteCloser, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// clean removes everything but the lock: the runs of an import that
// crashed.
func (d *sortDir) clean() error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("clean the import's sort directory: %w", err)
	}
	for _, e := range entries {
		if e.Name() == sortLockName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(d.path, e.Name())); err != nil {
			return fmt.Errorf("remove a stale sort run: %w", err)
		}
	}
	return nil
}

// create opens the next run file.
func (d *sortDir) create() (io.WriteCloser, string, error) {
	d.seq++
	name := filepath.Join(d.path, fmt.Sprintf("run-%06d", d.seq))
	f, err := d.createFile(name)
	return f, name, err
}

// remove deletes the runs and the directory, and releases the lock.
func (d *sortDir) remove() {
	d.clean()
	os.Remove(filepath.Join(d.path, sortLockName))
	os.Remove(d.path)
	d.lock.Close()
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
