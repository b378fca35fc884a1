package export_test

import (
	"strings"
	"testing"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/export"
	"github.com/matryer/is"
)

func TestStrikeOffDueBefore(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	write(t, d, func(tx db.Tx, seq *db.Seq) error {
		for _, c := range []struct{ number, kind, due, suspended string }{
			{"00000001", "compulsory", "2027-01-31", ""},
			{"00000002", "voluntary", "2027-01-03", ""},
			{"00000003", "voluntary", "2027-02-01", ""}, // the day itself is not before it
			{"00000004", "compulsory", "2027-01-10", "2026-11-20"},
			{"00000005", "voluntary", "", ""}, // no notice yet
			{"00000006", "", "", ""},          // not checked yet
		} {
			addCompany(t, tx, seq, company{number: c.number, detail: proposal, since: "2026-11-20T10:00:00Z"})
			var kind, due, susp any
			if c.kind != "" {
				kind = c.kind
			}
			if c.due != "" {
				due = c.due
			}
			if c.suspended != "" {
				susp = c.suspended
			}
			if _, err := tx.Exec(`UPDATE companies SET strike_off_kind = ?, dissolution_due_on = ?, strike_off_suspended_at = ?
				WHERE company_number = ?`, kind, due, susp, c.number); err != nil {
				return err
			}
		}
		// A company that left is never listed, whatever its columns say.
		addCompany(t, tx, seq, company{number: "00000007"})
		_, err := tx.Exec("UPDATE companies SET dissolution_due_on = '2027-01-01' WHERE company_number = '00000007'")
		return err
	})
	due, err := export.ParseDueBefore("2027-02-01")
	is.NoErr(err)
	recs, res := export_(t, d, export.StrikeOff, export.Options{DueBefore: due})
	is.Equal(res.Rows, int64(2))
	is.Equal(column(t, recs, "company_number"), []string{"00000002", "00000001"}) // soonest first
	is.Equal(column(t, recs, "dissolution_due_on"), []string{"2027-01-03", "2027-01-31"})
	is.Equal(column(t, recs, "strike_off_kind"), []string{"voluntary", "compulsory"})

	for _, bad := range []string{"2027-02-30", "next month", "01/02/2027", ""} {
		_, err := export.ParseDueBefore(bad)
		is.True(err != nil && strings.Contains(err.Error(), "YYYY-MM-DD"))
	}
	_, err = export.Write(t.Context(), d.R, &strings.Builder{}, export.Companies, export.Options{DueBefore: due})
	is.True(err != nil && strings.Contains(err.Error(), "strike-off export only"))
}
