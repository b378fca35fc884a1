//go:build unix

package db

import (
	"os"
	"syscall"
)

// linkCount returns how many hard links the file has (1 when unknown).
func linkCount(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 1
}
