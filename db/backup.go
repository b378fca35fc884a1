package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
)

// Backup writes a consistent copy of the database to dest with VACUUM INTO,
// which reads one snapshot and so is safe while another process writes. The
// copy is written beside dest under a temporary name, synced, given the
// database's own mode and renamed: dest is never half written. An existing
// dest is an error.
func Backup(ctx context.Context, path, dest string) error {
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("backup to %s: the file exists (choose another name or remove it)", dest)
	}
	mode := FileMode
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // after a successful rename this is a no-op
	if err := os.Chmod(tmpName, mode); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	// Its own read-only connection: the pools are query_only, which
	// refuses VACUUM INTO, and a backup needs no write access to the source.
	conn, err := sql.Open("sqlite", dsn(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "VACUUM INTO ?", tmpName); err != nil {
		return fmt.Errorf("backup %s to %s: %w", path, dest, explain(err))
	}
	if err := syncFile(tmpName); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := os.Rename(tmpName, dest); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	return SyncDir(filepath.Dir(dest))
}

func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// SyncDir makes a rename in dir durable. File systems that cannot sync a
// directory are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
