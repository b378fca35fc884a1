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
	pragmas []string // beyond the standard ones, on every connection
}

// NoAutoCheckpoint sets wal_autocheckpoint=0 on every connection, so SQLite
// never checkpoints by itself on commit: another program owns checkpoints
// (Litestream, which must while it replicates: a checkpoint it did not run
// can race it). The caller must run none either.
func NoAutoCheckpoint() Option {
	return func(o *options) { o.pragmas = append(o.pragmas, "wal_autocheckpoint(0)") }
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
