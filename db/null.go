package db

import (
	"database/sql"
	"time"
)

// NullString is s as a column value: NULL when empty.
func NullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// NullInt is n as a column value: NULL when zero.
func NullInt(n int64) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: n != 0} }

// NullTime is t as stored (FormatTime): NULL when zero.
func NullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: FormatTime(t), Valid: true}
}
