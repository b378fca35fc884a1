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

func officerItems(tb testing.TB) []json.RawMessage {
	tb.Helper()
	b, err := os.ReadFile("testdata/officer_items.json")
	if err != nil {
		tb.Fatal(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		tb.Fatal(err)
	}
	return items
}

func TestParseOfficer(t *testing.T) {
	items := officerItems(t)
	tests := []struct {
		name string
		item json.RawMessage
		want company.Officer
	}{
		{
			name: "DirectorWithEveryField",
			item: items[0],
			want: company.Officer{
				ID: "AbCdEfGhIjKlMnOpQrStUvWxYz0", Name: "MACDONALD, Fiona Angus", Role: "director",
				AppointedOn: "2017-07-11", Nationality: "British", Occupation: "Company Director",
				CountryOfResidence: "Scotland", BirthMonth: 3, BirthYear: 1970,
				AddressLine1: "12 High Street", Locality: "Glasgow", Region: "Lanarkshire", PostalCode: "G1 1QX", Country: "Scotland",
			},
		},
		{
			name: "ResignedCorporateSecretary",
			item: items[1],
			want: company.Officer{
				ID: "Corp0rateSecretaryAppt000001", Name: "ACME SECRETARIES LIMITED", Role: "corporate-secretary",
				AppointedOn: "2019-01-01", ResignedOn: "2021-06-30",
				AddressLine1: "1 Canary Wharf", Locality: "London", PostalCode: "E14 5AB", Country: "England",
			},
		},
		{
			// A role chwatch has never heard of, new members, and a birth
			// date written as strings.
			name: "ManagingOfficerWithNewFields",
			item: items[2],
			want: company.Officer{
				ID: "ManagingOfficerAppointment01", Name: "SILVA, Joana", Role: "managing-officer",
				AppointedOn: "2024-02-29", BirthMonth: 11, BirthYear: 1981,
				AddressLine1: "Rua Augusta 5", Locality: "Lisboa", Country: "Portugal",
			},
		},
		{
			// No resigned_on stays no resigned_on; a member of the wrong
			// type is left empty, not fatal.
			name: "NoResignedOnAndAWrongType",
			item: items[3],
			want: company.Officer{
				ID: "FormerDirectorNoResignedOn1", Name: "SMITH, John", Role: "director", AppointedOn: "2001-05-04",
				AddressLine1: "3 Mill Lane", Locality: "Leeds", PostalCode: "LS1 2AB",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			o, err := company.ParseOfficer(tt.item)
			is.NoErr(err)
			is.Equal(string(o.Raw), string(tt.item)) // kept exactly as sent
			o.Raw = nil
			is.Equal(o, tt.want)
		})
	}
	t.Run("NoLinksSelfGetsADigest", func(t *testing.T) {
		is := is.New(t)
		a, err := company.ParseOfficer([]byte(`{"name":"DOE, Jane","officer_role":"director"}`))
		is.NoErr(err)
		b, err := company.ParseOfficer([]byte(`{"name":"DOE, Jane","officer_role":"secretary"}`))
		is.NoErr(err)
		is.True(len(a.ID) > len("sha256:"))
		is.True(a.ID != b.ID)
	})
	t.Run("NotAnObject", func(t *testing.T) {
		is := is.New(t)
		for _, bad := range []string{`[]`, `"x"`, `null`, `{`} {
			_, err := company.ParseOfficer([]byte(bad))
			is.True(err != nil)
		}
	})
}

// FuzzParseOfficer: any JSON object parses with an id; nothing panics.
func FuzzParseOfficer(f *testing.F) {
	for _, it := range officerItems(f) {
		f.Add([]byte(it))
	}
	f.Add([]byte(`{"links":{"self":7},"date_of_birth":{"year":1e99}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := company.ParseOfficer(b)
		if err == nil && o.ID == "" {
			t.Fatalf("parsed an officer without an id: %q", b)
		}
	})
}

// officerRow is what a user reads back with sqlite3.
type officerRow struct {
	id, name, raw, fetched string
	resigned               sql.NullString
	seq                    int64
}

func officerRows(tb testing.TB, d *db.DB, number string) map[string]officerRow {
	tb.Helper()
	rows, err := d.R.Query("SELECT officer_id, name, resigned_on, raw, fetched_at, change_seq FROM officers WHERE company_number = ?", number)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]officerRow{}
	for rows.Next() {
		var r officerRow
		if err := rows.Scan(&r.id, &r.name, &r.resigned, &r.raw, &r.fetched, &r.seq); err != nil {
			tb.Fatal(err)
		}
		out[r.id] = r
	}
	return out
}

func replace(tb testing.TB, d *db.DB, number string, os []company.Officer, at time.Time) company.OfficersResult {
	tb.Helper()
	ctx := context.Background()
	var res company.OfficersResult
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		if res, err = company.ReplaceOfficersTx(ctx, tx, seq, number, os, at); err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func parsed(tb testing.TB) []company.Officer {
	tb.Helper()
	var out []company.Officer
	for _, it := range officerItems(tb) {
		o, err := company.ParseOfficer(it)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func TestReplaceOfficers(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100))
	all := parsed(t)

	res := replace(t, d, "SC571653", append(all, all[0]), at(10)) // a duplicate item is written once
	is.Equal(res, company.OfficersResult{Written: true, Stored: 4})
	rows := officerRows(t, d, "SC571653")
	is.Equal(len(rows), 4)
	seqs := map[int64]bool{}
	for _, r := range rows {
		is.Equal(r.fetched, db.FormatTime(at(10)))
		is.True(!seqs[r.seq]) // each row takes its own change_seq
		seqs[r.seq] = true
	}
	is.Equal(rows["FormerDirectorNoResignedOn1"].resigned.Valid, false) // nothing inferred
	is.Equal(rows["Corp0rateSecretaryAppt000001"].resigned.String, "2021-06-30")
	var raw map[string]any
	is.NoErr(json.Unmarshal([]byte(rows["ManagingOfficerAppointment01"].raw), &raw))
	is.True(raw["identity_verification_details"] != nil) // fields chwatch has no column for are kept
	firstMax := count(t, d, "SELECT max(change_seq) FROM officers")

	// A later list without two of them: those rows go, the others are rewritten.
	res = replace(t, d, "SC571653", all[:2], at(20))
	is.Equal(res, company.OfficersResult{Written: true, Stored: 2, Removed: 2})
	rows = officerRows(t, d, "SC571653")
	is.Equal(len(rows), 2)
	for _, r := range rows {
		is.Equal(r.fetched, db.FormatTime(at(20)))
		is.True(r.seq > firstMax) // an incremental export sees the rewrite
	}
	is.True(count(t, d, "SELECT value FROM counters WHERE name = 'change_seq'") >= count(t, d, "SELECT max(change_seq) FROM officers"))

	// Zero officers (an empty 200 or a 404 for the list) empties the company.
	res = replace(t, d, "SC571653", nil, at(30))
	is.Equal(res, company.OfficersResult{Written: true, Removed: 2})
	is.Equal(len(officerRows(t, d, "SC571653")), 0)
}

func TestReplaceOfficersWritesNothingOutsideStrikeOff(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream", KeepOfficers: true}}
	apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100), co("00000006", active, "", "e1", at(0), 101))
	all := parsed(t)

	is.Equal(replace(t, d, "00000006", all, at(1)).Written, false) // never in strike-off
	is.Equal(replace(t, d, "NI012345", all, at(1)).Written, false) // unknown to chwatch
	is.Equal(count(t, d, "SELECT count(*) FROM officers"), int64(0))

	// The company leaves strike-off in the same transaction, just before
	// the list lands: the check sees it.
	ctx := context.Background()
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := a.Apply(ctx, tx, seq, co("SC571653", "dissolved", "", "e2", at(2), 102), detected); err != nil {
			return err
		}
		res, err := company.ReplaceOfficersTx(ctx, tx, seq, "SC571653", all, at(3))
		is.NoErr(err)
		is.Equal(res.Written, false)
		return seq.Save(ctx, tx)
	}))
	is.Equal(count(t, d, "SELECT count(*) FROM officers"), int64(0))

	// Deleted companies are not in strike-off either.
	apply(t, d, a, co("OC301234", active, strikeOff, "e1", at(0), 103), gone("OC301234", at(1), 104))
	is.Equal(replace(t, d, "OC301234", all, at(2)).Written, false)
}

func TestReplaceOfficersNeedsIDs(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	apply(t, d, &company.Applier{}, co("SC571653", active, strikeOff, "e1", at(0), 100))
	ctx := context.Background()
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, _ := db.BeginSeq(ctx, tx)
		_, err := company.ReplaceOfficersTx(ctx, tx, seq, "SC571653", []company.Officer{{Name: "X"}}, at(1))
		return err
	})
	is.True(err != nil)
	is.Equal(count(t, d, "SELECT count(*) FROM officers"), int64(0)) // rolled back whole
}

// REST answers go through the same rule, in a Batch like the stream's: the
// answer to a pending status check settles it, a 404 deletes.
func TestBatchAppliesAPIAnswers(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "api"}, MaxDepth: 100}
	apply(t, d, a,
		co("SC571653", active, strikeOff, "e1", at(0), 100),
		co("SC571653", active, "", "e2", at(1), 101), // hybrid: pending
		co("OC301234", active, strikeOff, "e1", at(0), 102),
	)
	replace(t, d, "OC301234", parsed(t), at(2))
	is.Equal(count(t, d, "SELECT status_check_pending FROM companies WHERE company_number = 'SC571653'"), int64(1))

	answer := apiAnswer(active, "", "e2", at(5)) // the event's etag: the exit is confirmed
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		b := a.Begin(tx, seq)
		if err := b.Preload(ctx, []string{"SC571653", "OC301234"}); err != nil {
			return err
		}
		dec, err := b.Apply(ctx, answer, detected)
		is.NoErr(err)
		is.Equal(dec.Change, company.LeftStrikeOff)
		dec, err = b.Apply(ctx, company.DeletedVersion("OC301234", company.API, at(6)), detected)
		is.NoErr(err)
		is.Equal(dec.Outcome, company.Deleted)
		is.Equal(dec.Change, company.LeftStrikeOff)
		if err := b.Flush(ctx); err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	}))
	is.Equal(count(t, d, "SELECT status_check_pending FROM companies WHERE company_number = 'SC571653'"), int64(0))
	is.Equal(count(t, d, "SELECT count(*) FROM strike_off_companies"), int64(0))
	is.Equal(count(t, d, "SELECT count(*) FROM companies WHERE company_number = 'OC301234' AND deleted_at = ? AND source = 'api'", db.FormatTime(at(6))), int64(1))
	is.Equal(count(t, d, "SELECT count(*) FROM officers"), int64(0)) // on_exit delete-officers
	is.Equal(count(t, d, "SELECT count(*) FROM jobs WHERE kind = ? AND state = 'queued'", queue.Officers), int64(0))
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes WHERE source = 'api' AND change = 'left_strike_off'"), int64(2))
}
