package export

import (
	"fmt"
	"time"
)

// The strike-off columns filing checks add to the companies and strike-off
// exports, last (new columns never move the old ones).
var strikeOffCols = cols("c.strike_off_kind", "c.gazette_notice_on", "c.dissolution_due_on", "c.strike_off_suspended_at")

// dueBefore is the condition of `export strike-off --due-before`: due before
// the date, and not suspended (a suspended strike-off is not on its way to
// dissolution). The partial index on dissolution_due_on serves it.
const dueBefore = "c.dissolution_due_on < ? AND c.strike_off_suspended_at IS NULL"

// ParseDueBefore checks a --due-before value: a date, YYYY-MM-DD.
func ParseDueBefore(s string) (string, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return "", fmt.Errorf("--due-before %q is not a date: want YYYY-MM-DD, e.g. %s for what may be dissolved before next month", s, nextMonth(time.Now()))
	}
	return d.Format(time.DateOnly), nil
}

func nextMonth(now time.Time) string {
	y, m, _ := now.UTC().Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}
