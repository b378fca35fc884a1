package db

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Option changes how Open connects.
type Option func(*options)

type options struct {
	pragmas          []string // beyond the standard ones, on every connection
	pageSize         int      // for a new file; 0: SQLite's default
	noAutoCheckpoint bool
}

// AutoCheckpointPages is when a commit checkpoints the WAL by itself. A
// checkpoint copies each page the WAL holds once, however often it was
// written since the last: at 8000 pages (16 MB of 2 KB pages) instead of
// SQLite's 1000, a catch-up writes about a seventh less (docs/design.md).
const AutoCheckpointPages = 8000

// connPragmas are the pragmas o sets on every connection beyond the
// standard ones.
func (o options) connPragmas() []string {
	ckpt := AutoCheckpointPages
	if o.noAutoCheckpoint {
		ckpt = 0
	}
	return append([]string{fmt.Sprintf("wal_autocheckpoint(%d)", ckpt)}, o.pragmas...)
}

// PageSize gives a database file Open creates pages of n bytes (a power of
// two from 512 to 65536). An existing file keeps its own: SQLite cannot
// change the page size of a WAL database in place.
func PageSize(n int) Option {
	return func(o *options) { o.pageSize = n }
}

// NoAutoCheckpoint sets wal_autocheckpoint=0 on every connection, so SQLite
// never checkpoints by itself on commit: another program owns checkpoints
// (Litestream, which must while it replicates: a checkpoint it did not run
// can race it). The caller must run none either.
func NoAutoCheckpoint() Option {
	return func(o *options) { o.noAutoCheckpoint = true }
}

// ModeFix is a file whose mode TightenModes changed.
type ModeFix struct {
	Path string
	Was  fs.FileMode
}

// TightenModes gives the database and its -wal and -shm, those that exist,
// FileMode when their mode allows more (other users' bits, execute): a
// restore by another tool (litestream restore writes 0644) must not leave the
// data world-readable. It returns what it changed.
func TightenModes(path string) ([]ModeFix, error) {
	var fixed []ModeFix
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fixed, fmt.Errorf("check mode of %s: %w", p, err)
		}
		if st.Mode().Perm()&^FileMode == 0 {
			continue
		}
		if err := os.Chmod(p, FileMode); err != nil {
			return fixed, fmt.Errorf("set mode %04o on %s (it is %04o, readable by other users): %w (chown it to the service's user, or chmod 660 it)", FileMode, p, st.Mode().Perm(), err)
		}
		fixed = append(fixed, ModeFix{Path: p, Was: st.Mode().Perm()})
	}
	return fixed, nil
}
