package db

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// resultCode is SQLite's primary result code for err (SQLITE_FULL,
// SQLITE_READONLY, ...), 0 when err does not come from SQLite. The driver
// turns extended result codes on, so the extended ones (SQLITE_READONLY_DBMOVED,
// SQLITE_CANTOPEN_ISDIR, ...) fold into their primary code here.
func resultCode(err error) int {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return 0
	}
	return se.Code() & 0xff
}

// IsFull reports whether err is SQLite's SQLITE_FULL: the disk holding the
// database (or its -wal) has no space left, or the database reached its
// max_page_count. Nothing is wrong with the data: the same write succeeds
// once there is room.
func IsFull(err error) bool { return resultCode(err) == sqlite3.SQLITE_FULL }

// explain adds to a SQLite error what the operator should check.
func explain(err error) error {
	switch resultCode(err) {
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("%w (the file or its directory is read-only for this user)", err)
	case sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w (this file is not a SQLite database: check database.path)", err)
	case sqlite3.SQLITE_CANTOPEN:
		return fmt.Errorf("%w (check that the file and its -wal/-shm are readable and writable by this user or its group)", err)
	}
	return err
}
