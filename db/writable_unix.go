//go:build unix

package db

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func writable(dir string) bool { return unix.Access(dir, unix.W_OK) == nil }

// FreeBytes is the space an unprivileged writer may still use in dir
// (Bavail: a full filesystem keeps its reserved blocks for root).
func FreeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
