package company_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
	"github.com/matryer/is"
)

func pscItems(tb testing.TB) []company.PSC {
	tb.Helper()
	b, err := os.ReadFile("testdata/psc_items.json")
	if err != nil {
		tb.Fatal(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		tb.Fatal(err)
	}
	out := make([]company.PSC, len(items))
	for i, raw := range items {
		if out[i], err = company.ParsePSC(raw); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

func TestParsePSC(t *testing.T) {
	is := is.New(t)
	ps := pscItems(t)
	strip := func(p company.PSC) company.PSC { p.Raw = nil; return p }
	is.Equal(strip(ps[0]), company.PSC{
		ID: "Ind1v1dualPscId00000000001", Kind: "individual-person-with-significant-control", Name: "Mrs Fiona Angus Macdonald",
		NaturesOfControl: []string{"ownership-of-shares-75-to-100-percent", "voting-rights-75-to-100-percent", "right-to-appoint-and-remove-directors"},
		NotifiedOn:       "2016-04-06", Nationality: "British", CountryOfResidence: "Scotland", BirthMonth: 3, BirthYear: 1970,
		AddressLine1: "12 High Street", Locality: "Glasgow", Region: "Lanarkshire", PostalCode: "G1 1QX", Country: "Scotland",
	})
	is.Equal(strip(ps[1]), company.PSC{
		ID: "C0rporatePscId0000000000002", Kind: "corporate-entity-person-with-significant-control", Name: "ACME HOLDINGS LIMITED",
		NaturesOfControl: []string{"significant-influence-or-control"}, NotifiedOn: "2017-01-01", CeasedOn: "2021-06-30",
		AddressLine1: "1 Canary Wharf", Locality: "London", PostalCode: "E14 5AB", Country: "England",
	})
	is.Equal(strip(ps[2]), company.PSC{ID: "SuperSecurePscId00000000003", Kind: "super-secure-person-with-significant-control"}) // no name
	is.Equal(ps[3].BirthYear, 1981)                                                                                              // numbers written as strings
	is.Equal(ps[3].Kind, "individual-beneficial-owner")

	t.Run("WithoutLinksSelf", func(t *testing.T) {
		is := is.New(t)
		a, err := company.ParsePSC([]byte(`{"kind":"individual-person-with-significant-control","name":"A"}`))
		is.NoErr(err)
		b, _ := company.ParsePSC([]byte(`{"kind":"individual-person-with-significant-control","name":"B"}`))
		is.True(len(a.ID) > len("sha256:") && a.ID != b.ID) // kept, once each
	})
	t.Run("OddTypesAreEmpty", func(t *testing.T) {
		is := is.New(t)
		p, err := company.ParsePSC([]byte(`{"name":7,"natures_of_control":"x","address":[],"links":{"self":"/company/1/persons-with-significant-control/individual/z"}}`))
		is.NoErr(err)
		is.Equal(p.Name, "")
		is.Equal(len(p.NaturesOfControl), 0)
		is.Equal(p.ID, "z")
	})
	t.Run("NotAnObject", func(t *testing.T) {
		_, err := company.ParsePSC([]byte(`[1]`))
		is.New(t).True(err != nil)
	})
}

func FuzzParsePSC(f *testing.F) {
	b, _ := os.ReadFile("testdata/psc_items.json")
	var items []json.RawMessage
	json.Unmarshal(b, &items)
	for _, it := range items {
		f.Add([]byte(it))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := company.ParsePSC(raw)
		if err == nil && p.ID == "" {
			t.Fatal("a parsed PSC without an id")
		}
	})
}

func replacePSCs(tb testing.TB, d *db.DB, number string, ps []company.PSC, at time.Time) company.PSCsResult {
	tb.Helper()
	ctx := context.Background()
	var res company.PSCsResult
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		if res, err = company.ReplacePSCsTx(ctx, tx, seq, number, ps, at); err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func TestReplacePSCs(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100))
	all := pscItems(t)
	pscCount := func() int64 { return counters(t, d)[company.CounterPSCs] }

	res := replacePSCs(t, d, "SC571653", append(all, all[0]), at(10)) // a duplicate item is written once
	is.Equal(res, company.PSCsResult{Written: true, Stored: 4})
	is.Equal(count(t, d, "SELECT count(*) FROM pscs WHERE company_number = 'SC571653'"), int64(4))
	is.Equal(pscCount(), int64(4))
	var natures, ceased, raw sql.NullString
	var fetched string
	is.NoErr(d.R.QueryRow("SELECT natures_of_control, ceased_on, raw, fetched_at FROM pscs WHERE psc_id = 'C0rporatePscId0000000000002'").Scan(&natures, &ceased, &raw, &fetched))
	is.Equal(natures.String, "significant-influence-or-control")
	is.Equal(ceased.String, "2021-06-30")
	is.Equal(fetched, db.FormatTime(at(10)))
	var m map[string]any
	is.NoErr(json.Unmarshal([]byte(raw.String), &m))
	is.True(m["identification"] != nil) // what has no column is kept
	var name sql.NullString
	is.NoErr(d.R.QueryRow("SELECT name FROM pscs WHERE psc_id = 'SuperSecurePscId00000000003'").Scan(&name))
	is.Equal(name.Valid, false)
	is.Equal(count(t, d, "SELECT count(DISTINCT change_seq) FROM pscs"), int64(4)) // each row its own change_seq
	firstMax := count(t, d, "SELECT max(change_seq) FROM pscs")

	// A later list without two of them: those go, the others are rewritten.
	res = replacePSCs(t, d, "SC571653", all[:2], at(20))
	is.Equal(res, company.PSCsResult{Written: true, Stored: 2, Removed: 2})
	is.Equal(count(t, d, "SELECT count(*) FROM pscs WHERE change_seq > ?", firstMax), int64(2))
	is.Equal(pscCount(), int64(2))

	// An empty list empties the company.
	res = replacePSCs(t, d, "SC571653", nil, at(30))
	is.Equal(res, company.PSCsResult{Written: true, Removed: 2})
	is.Equal(pscCount(), int64(0))
}

func TestReplacePSCsWritesNothingOutsideStrikeOff(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	apply(t, d, a, co("00000006", active, "", "e1", at(0), 101), co("OC301234", active, strikeOff, "e1", at(0), 103), gone("OC301234", at(1), 104))
	all := pscItems(t)
	is.Equal(replacePSCs(t, d, "00000006", all, at(1)).Written, false) // never in strike-off
	is.Equal(replacePSCs(t, d, "NI012345", all, at(1)).Written, false) // unknown to chwatch
	is.Equal(replacePSCs(t, d, "OC301234", all, at(2)).Written, false) // deleted
	is.Equal(count(t, d, "SELECT count(*) FROM pscs"), int64(0))
	is.Equal(counters(t, d)[company.CounterPSCs], int64(0))

	// Without an id the whole list rolls back.
	apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100))
	ctx := context.Background()
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, _ := db.BeginSeq(ctx, tx)
		_, err := company.ReplacePSCsTx(ctx, tx, seq, "SC571653", append(all, company.PSC{Name: "X"}), at(1))
		return err
	})
	is.True(err != nil)
	is.Equal(count(t, d, "SELECT count(*) FROM pscs"), int64(0))
}

// PSCs follow officers: queued on entry only with Policy.PSCs, cancelled
// on exit whatever it says, and deleted on exit unless on_exit keeps them.
func TestApplyPSCsBesideOfficers(t *testing.T) {
	t.Run("QueuedOnlyWhenOn", func(t *testing.T) {
		is := is.New(t)
		d := dbtest.Open(t)
		apply(t, d, &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}, co("00000001", active, strikeOff, "a1", at(0), 1))
		apply(t, d, &company.Applier{Policy: company.Policy{ConfirmExit: "stream", PSCs: true}}, co("00000002", active, strikeOff, "b1", at(0), 2))
		is.Equal(jobs(t, d, queue.PSCs, "00000001"), int64(0))
		is.Equal(jobs(t, d, queue.PSCs, "00000002"), int64(1))
		is.Equal(jobs(t, d, queue.Officers, "00000002"), int64(1))
		// Leaving cancels the queued fetch even with the option off now.
		apply(t, d, &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}, co("00000002", active, "", "b2", at(1), 3))
		is.Equal(jobs(t, d, queue.PSCs, "00000002"), int64(0))
	})
	for _, keep := range []bool{false, true} {
		name := map[bool]string{false: "DeletedOnExit", true: "KeptOnExitWithKeep"}[keep]
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			d := dbtest.Open(t)
			a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream", KeepOfficers: keep, PSCs: true}}
			apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100), co("00000006", active, strikeOff, "x1", at(0), 99))
			replacePSCs(t, d, "SC571653", pscItems(t), at(1))
			replacePSCs(t, d, "00000006", pscItems(t)[:1], at(1))
			apply(t, d, a, co("SC571653", "dissolved", "", "e2", at(2), 101))
			want := map[bool]int64{false: 0, true: 4}[keep]
			is.Equal(count(t, d, "SELECT count(*) FROM pscs WHERE company_number = 'SC571653'"), want)
			is.Equal(count(t, d, "SELECT count(*) FROM pscs WHERE company_number = '00000006'"), int64(1)) // others untouched
			is.Equal(counters(t, d)[company.CounterPSCs], want+1)                                          // the counter moves with the rows
		})
	}
}
