package export_test

import (
	"context"
	"testing"
	"time"

	co "github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/export"
	"github.com/matryer/is"
)

// psc parses a PSC item as the API sends it.
func psc(tb testing.TB, raw string) co.PSC {
	tb.Helper()
	p, err := co.ParsePSC([]byte(raw))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// The pscs export holds the PSCs of strike-off companies only, through the
// same neutralising, --since and --state as the officers export.
func TestPSCs(t *testing.T) {
	d := dbtest.Open(t)
	seed(t, d)
	fetched := time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC)
	replace := func(number string, at time.Time, items ...string) {
		t.Helper()
		var list []co.PSC
		for _, it := range items {
			list = append(list, psc(t, it))
		}
		write(t, d, func(tx db.Tx, seq *db.Seq) error {
			_, err := co.ReplacePSCsTx(context.Background(), tx, seq, number, list, at)
			return err
		})
	}
	replace("00000001", fetched,
		`{"kind":"individual-person-with-significant-control","name":"=HYPERLINK(\"x\")","natures_of_control":["ownership-of-shares-75-to-100-percent","voting-rights-75-to-100-percent"],
		  "notified_on":"2016-04-06","date_of_birth":{"month":3,"year":1970},"nationality":"British","country_of_residence":"England",
		  "address":{"premises":"1","address_line_1":"Main Street","locality":"Leeds","postal_code":"LS1 1AA","country":"England"},
		  "links":{"self":"/company/00000001/persons-with-significant-control/individual/aaa"}}`,
		`{"kind":"corporate-entity-person-with-significant-control","name":"HOLDCO LIMITED","natures_of_control":["significant-influence-or-control"],
		  "notified_on":"2017-01-01","ceased_on":"2020-02-02","identification":{"registration_number":"01234567"},
		  "links":{"self":"/company/00000001/persons-with-significant-control/corporate-entity/bbb"}}`)
	// A company that left strike-off with strike_off.on_exit = keep.
	write(t, d, func(tx db.Tx, seq *db.Seq) error {
		_, err := tx.Exec(`INSERT INTO pscs (company_number, psc_id, kind, fetched_at, change_seq)
			VALUES ('00000003', 'ccc', 'super-secure-person-with-significant-control', '2026-11-06T00:00:00Z', ?)`, seq.Next())
		return err
	})

	t.Run("StrikeOffCompaniesOnly", func(t *testing.T) {
		is := is.New(t)
		recs, _ := export_(t, d, export.PSCs, export.Options{Raw: true})
		is.Equal(column(t, recs, "psc_id"), []string{"aaa", "bbb"}) // 00000003 is not in strike-off
		is.Equal(column(t, recs, "company_name"), []string{tricky, tricky})
		is.Equal(column(t, recs, "natures_of_control"), []string{"ownership-of-shares-75-to-100-percent,voting-rights-75-to-100-percent", "significant-influence-or-control"})
		is.Equal(column(t, recs, "ceased_on"), []string{"", "2020-02-02"})
		is.Equal(column(t, recs, "address_line_1"), []string{"1 Main Street", ""})
		is.Equal(column(t, recs, "birth_year"), []string{"1970", ""})
		is.Equal(column(t, recs, "name"), []string{`=HYPERLINK("x")`, "HOLDCO LIMITED"})
	})
	t.Run("Neutralised", func(t *testing.T) {
		is := is.New(t)
		recs, _ := export_(t, d, export.PSCs, export.Options{})
		is.Equal(column(t, recs, "name"), []string{`'=HYPERLINK("x")`, "HOLDCO LIMITED"})
	})
	t.Run("SinceAndState", func(t *testing.T) {
		is := is.New(t)
		_, res := export_(t, d, export.PSCs, export.Options{Incremental: true})
		later := fetched.Add(24 * time.Hour)
		replace("00000002", later, `{"kind":"individual-person-with-significant-control","name":"Ms Ann Other","links":{"self":"/company/00000002/persons-with-significant-control/individual/ddd"}}`)
		recs, _ := export_(t, d, export.PSCs, export.Options{Incremental: true, After: res.Mark})
		is.Equal(column(t, recs, "psc_id"), []string{"ddd"})
		recs, _ = export_(t, d, export.PSCs, export.Options{Since: later})
		is.Equal(column(t, recs, "psc_id"), []string{"ddd"})
	})
}
