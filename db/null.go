package db

import "time"

// Column values for statements' arguments: NULL for the zero value, else the
// plain value. Plain, not sql.Null*: each of those is boxed once by the
// caller and again by its Value method, and at thousands of rows a second
// the garbage decides the rate under run's heap limit.

// NullString is s as a column value: NULL when empty.
func NullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// NullInt is n as a column value: NULL when zero.
func NullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// NullTime is t as stored (FormatTime): NULL when zero.
func NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return FormatTime(t)
}
