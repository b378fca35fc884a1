package export_test

import (
	"context"
	"testing"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/export"
	"github.com/matryer/is"
)

// numbersPast is what --state must return, read straight from companies
// (or the strike-off view): the companies whose change_seq is past after,
// in change_seq order.
func numbersPast(tb testing.TB, d *db.DB, from string, after int64) []string {
	tb.Helper()
	rows, err := d.R.QueryContext(context.Background(), "SELECT company_number FROM "+from+" WHERE change_seq > ? ORDER BY change_seq", after)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func update(tb testing.TB, tx db.Tx, seq *db.Seq, number, set string) {
	tb.Helper()
	if _, err := tx.Exec("UPDATE companies SET "+set+", change_seq = ? WHERE company_number = ?", seq.Next(), number); err != nil {
		tb.Fatalf("update %s: %v", number, err)
	}
}

// A company written several times between two exports comes once, at its
// latest change, in the next --state export of companies and of
// strike-off; one that left strike-off meanwhile is not in the strike-off
// one. The rows are those of change_seq > mark in change_seq order.
func TestStateAfterSeveralChanges(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	seed(t, d)
	_, first := export_(t, d, export.Companies, export.Options{Incremental: true})
	_, firstSO := export_(t, d, export.StrikeOff, export.Options{Incremental: true})
	is.Equal(firstSO.Mark, first.Mark)

	write(t, d, func(tx db.Tx, seq *db.Seq) error {
		update(t, tx, seq, "00000003", "company_name = 'RENAMED ONCE'")
		update(t, tx, seq, "00000001", "company_name = 'ONE'")
		update(t, tx, seq, "00000001", "company_name = 'TWO'") // twice in one transaction
		update(t, tx, seq, "00000002", "company_status_detail = NULL, strike_off_since = NULL")
		return nil
	})
	write(t, d, func(tx db.Tx, seq *db.Seq) error {
		addCompany(t, tx, seq, company{number: "00000006", detail: proposal, since: "2026-11-27T09:00:00Z"})
		update(t, tx, seq, "00000003", "company_name = 'RENAMED TWICE'")
		update(t, tx, seq, "00000001", "company_name = 'THREE'")
		return nil
	})
	// A write that leaves change_seq as it was logs nothing new.
	write(t, d, func(tx db.Tx, seq *db.Seq) error {
		_, err := tx.Exec("UPDATE companies SET bulk_as_of = '2026-11-01' WHERE company_number = '00000005'")
		return err
	})

	recs, res := export_(t, d, export.Companies, export.Options{Incremental: true, After: first.Mark})
	is.Equal(column(t, recs, "company_number"), []string{"00000002", "00000006", "00000003", "00000001"})
	is.Equal(column(t, recs, "company_number"), numbersPast(t, d, "companies", first.Mark))
	is.Equal(cell(t, recs, "00000001", "company_name"), "THREE")
	is.Equal(cell(t, recs, "00000003", "company_name"), "RENAMED TWICE")
	is.Equal(res.Mark, first.Mark+7)

	recs, _ = export_(t, d, export.StrikeOff, export.Options{Incremental: true, After: firstSO.Mark})
	is.Equal(column(t, recs, "company_number"), []string{"00000006", "00000001"}) // 00000002 left, 00000003 never in
	is.Equal(column(t, recs, "company_number"), numbersPast(t, d, "strike_off_companies", firstSO.Mark))

	// From the beginning, every company once.
	recs, _ = export_(t, d, export.Companies, export.Options{Incremental: true})
	is.Equal(column(t, recs, "company_number"), numbersPast(t, d, "companies", 0))
	is.Equal(len(recs)-1, 6)
	recs, _ = export_(t, d, export.Companies, export.Options{Incremental: true, After: res.Mark})
	is.Equal(len(recs), 1) // header only
}
