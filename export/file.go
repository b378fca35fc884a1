package export

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/chwatch/chwatch/db"
)

// File modes of new files; an existing file keeps its own mode.
const (
	OutMode   os.FileMode = 0o640 // --out: group-readable, like the database
	StateMode os.FileMode = 0o600 // --state
)

// ErrBadState is returned by ReadMark for a state file that holds no mark.
var ErrBadState = errors.New("not a chwatch export state file")

// WriteFile replaces path atomically with what fn writes: a temporary file
// in the same directory is written, fsynced, given the mode (the existing
// file's when there is one) and renamed over path, and the directory is
// fsynced. On any error the temporary file is removed and path is left as
// it was.
func WriteFile(path string, mode os.FileMode, fn func(io.Writer) error) (err error) {
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("write %s: it is a directory (give a file name)", path)
		}
		mode = st.Mode().Perm()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := db.CheckDir(path, ""); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w (the directory must be writable: the file is written beside it, then renamed)", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fn(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := db.SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: fsync directory %s: %w", path, dir, err)
	}
	return nil
}

// CheckStatePath fails early when the state file could not be written
// later, so that an export is not run for nothing.
func CheckStatePath(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("state file %s: it is a directory (give a file name)", path)
	}
	if err := db.CheckDir(path, ""); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}

// ReadMark reads the change_seq mark in the state file at path. A missing
// file is mark 0 (export everything); anything but one whole number is an
// error wrapping ErrBadState that names the file.
func ReadMark(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read state file %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return 0, fmt.Errorf("read state file %s: %q: %w: it must hold one change_seq number written by chwatch export --state (fix it, or delete it to export everything again)", path, s, ErrBadState)
	}
	return n, nil
}

// WriteMark replaces the state file at path with mark, atomically.
func WriteMark(path string, mark int64) error {
	err := WriteFile(path, StateMode, func(w io.Writer) error {
		_, err := io.WriteString(w, strconv.FormatInt(mark, 10)+"\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("save state mark %d: %w", mark, err)
	}
	return nil
}
