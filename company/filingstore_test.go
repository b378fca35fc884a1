package company_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

func applyStrikeOff(tb testing.TB, d *db.DB, number string, s company.StrikeOff) company.StrikeOffResult {
	tb.Helper()
	ctx := context.Background()
	var res company.StrikeOffResult
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		if res, err = company.ApplyStrikeOffTx(ctx, tx, seq, number, s, at(5)); err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// The four columns as stored, "" for NULL.
func strikeOffCols(tb testing.TB, d *db.DB, number string) [4]string {
	tb.Helper()
	var c [4]sql.NullString
	err := d.R.QueryRow("SELECT strike_off_kind, gazette_notice_on, dissolution_due_on, strike_off_suspended_at FROM companies WHERE company_number = ?", number).
		Scan(&c[0], &c[1], &c[2], &c[3])
	if err != nil {
		tb.Fatal(err)
	}
	return [4]string{c[0].String, c[1].String, c[2].String, c[3].String}
}

func TestStrikeOffStoredAndClearedOnExit(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100), co("00000006", active, strikeOff, "x1", at(0), 99))

	unknown := company.Filing{TransactionID: "T1", Description: "gazette-objection-received", Category: "gazette", Date: "2026-11-10", Raw: []byte(`{"transaction_id":"T1"}`)}
	s := company.StrikeOff{Kind: "compulsory", NoticeOn: "2026-11-03", DueOn: "2027-01-03", SuspendedAt: "2026-11-20", Unknown: []company.Filing{unknown}}
	before := counters(t, d)["change_seq"]
	res := applyStrikeOff(t, d, "SC571653", s)
	is.True(res.Written && res.Changed)
	is.Equal(res.Unknown, 1)
	applyStrikeOff(t, d, "00000006", company.StrikeOff{Kind: "voluntary"})
	is.Equal(strikeOffCols(t, d, "SC571653"), [4]string{"compulsory", "2026-11-03", "2027-01-03", "2026-11-20"})
	is.True(counters(t, d)["change_seq"] > before) // export --state sees the write
	c := counters(t, d)
	is.Equal(c[company.CounterFilingKind("compulsory")], int64(1))
	is.Equal(c[company.CounterFilingKind("voluntary")], int64(1))
	is.Equal(c[company.CounterFilingSuspended], int64(1))
	is.Equal(c[company.CounterFilingUnknown], int64(1))
	is.Equal(c[company.CounterFilingDuePrefix+"2027-01"], int64(0)) // suspended: not on its way to dissolution
	is.Equal(count(t, d, "SELECT count(*) FROM filing_unknowns WHERE company_number = 'SC571653' AND raw = '{\"transaction_id\":\"T1\"}'"), int64(1))

	// The same answer again writes nothing and counts nothing twice.
	seq := counters(t, d)["change_seq"]
	res = applyStrikeOff(t, d, "SC571653", s)
	is.True(res.Written && !res.Changed)
	is.Equal(res.Unknown, 0)
	is.Equal(counters(t, d)["change_seq"], seq)
	is.Equal(counters(t, d)[company.CounterFilingKind("compulsory")], int64(1))

	// The suspension lifted (a later history without it): due in January.
	lifted := s
	lifted.SuspendedAt = ""
	is.True(applyStrikeOff(t, d, "SC571653", lifted).Changed)
	c = counters(t, d)
	is.Equal(c[company.CounterFilingDuePrefix+"2027-01"], int64(1))
	is.Equal(c[company.CounterFilingSuspended], int64(0))

	// Leaving clears the four columns and uncounts; the other company keeps its own.
	apply(t, d, a, co("SC571653", active, "", "e2", at(1), 101))
	is.Equal(strikeOffCols(t, d, "SC571653"), [4]string{})
	is.Equal(strikeOffCols(t, d, "00000006"), [4]string{"voluntary", "", "", ""})
	c = counters(t, d)
	is.Equal(c[company.CounterFilingKind("compulsory")], int64(0))
	is.Equal(c[company.CounterFilingSuspended], int64(0))
	is.Equal(c[company.CounterFilingKind("voluntary")], int64(1))
	is.Equal(c[company.CounterFilingDuePrefix+"2027-01"], int64(0))
	is.Equal(count(t, d, "SELECT count(*) FROM filing_unknowns"), int64(1)) // unknown items are never dropped

	// A late answer for a company that left writes nothing.
	res = applyStrikeOff(t, d, "SC571653", s)
	is.True(!res.Written)
	is.Equal(strikeOffCols(t, d, "SC571653"), [4]string{})
	is.True(!applyStrikeOff(t, d, "99999999", s).Written) // nor for one never seen

	// A deleted event is leaving too.
	apply(t, d, a, gone("00000006", at(2), 102))
	is.Equal(strikeOffCols(t, d, "00000006"), [4]string{})
	is.Equal(counters(t, d)[company.CounterFilingKind("voluntary")], int64(0))
}
