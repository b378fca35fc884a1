package company_test

import (
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/matryer/is"
)

func TestPlusMonths(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2026-11-02", "2027-01-02"},
		{"2026-12-31", "2027-02-28"},
		{"2027-12-31", "2028-02-29"}, // leap year
		{"2026-08-31", "2026-10-31"},
		{"2026-07-31", "2026-09-30"},
		{"2026-10-31", "2026-12-31"},
		{"2026-11-30", "2027-01-30"},
		{"2027-12-29", "2028-02-29"},
		{"2027-12-30", "2028-02-29"},
		{"2026-01-01", "2026-03-01"},
	} {
		t.Run(c.in, func(t *testing.T) {
			d, err := time.Parse(time.DateOnly, c.in)
			is.New(t).NoErr(err)
			is.New(t).Equal(company.PlusMonths(d, 2).Format(time.DateOnly), c.want)
		})
	}
}

// f builds an item: description, date, and optionally its type.
func f(desc, date string, typ ...string) company.Filing {
	it := company.Filing{TransactionID: desc + date, Description: desc, Date: date, Category: "gazette"}
	if len(typ) > 0 {
		it.Type = typ[0]
	}
	return it
}

func TestDecideStrikeOff(t *testing.T) {
	for _, c := range []struct {
		name  string
		items []company.Filing // newest first, as the API lists them
		want  company.StrikeOff
		unk   []string // descriptions reported unknown
	}{
		{name: "empty", want: company.StrikeOff{Kind: "unknown"}},
		{name: "compulsory", items: []company.Filing{f("gazette-notice-compulsory", "2026-11-03", "GAZ1")},
			want: company.StrikeOff{Kind: "compulsory", NoticeOn: "2026-11-03", DueOn: "2027-01-03"}},
		{name: "compulsary spelling", items: []company.Filing{f("gazette-notice-compulsary", "2026-12-31", "GAZ1")},
			want: company.StrikeOff{Kind: "compulsory", NoticeOn: "2026-12-31", DueOn: "2027-02-28"}},
		{name: "voluntary after DS01", items: []company.Filing{
			f("gazette-notice-voluntary", "2027-12-31", "GAZ1(A)"),
			f("dissolution-application-strike-off-company", "2027-12-20", "DS01")},
			want: company.StrikeOff{Kind: "voluntary", NoticeOn: "2027-12-31", DueOn: "2028-02-29"}},
		{name: "DS01 without notice yet", items: []company.Filing{f("dissolution-application-strike-off-company", "2026-11-20", "DS01")},
			want: company.StrikeOff{Kind: "voluntary"}},
		{name: "discontinued: the notice is still the latest", items: []company.Filing{
			f("dissolution-voluntary-strike-off-discontinued", "2025-03-01"),
			f("gazette-notice-voluntary", "2025-02-01"),
			f("dissolution-application-strike-off-company", "2025-01-20", "DS01")},
			want: company.StrikeOff{Kind: "voluntary", NoticeOn: "2025-02-01", DueOn: "2025-04-01", SuspendedAt: "2025-03-01"}},
		{name: "a DS01 after a strike-off ended starts a new one, notice not yet filed", items: []company.Filing{
			f("dissolution-application-strike-off-company", "2026-11-20", "DS01"),
			f("gazette-filings-brought-up-to-date", "2024-06-01", "DISS40"),
			f("gazette-notice-compulsory", "2024-05-07", "GAZ1")},
			want: company.StrikeOff{Kind: "voluntary"}},
		{name: "a DS01 after a suspension does not", items: []company.Filing{
			f("dissolution-application-strike-off-company", "2026-11-20", "DS01"),
			f("dissolved-compulsory-strike-off-suspended", "2026-11-10", "SOAS(A)"),
			f("gazette-notice-compulsory", "2026-11-03", "GAZ1")},
			want: company.StrikeOff{Kind: "compulsory", NoticeOn: "2026-11-03", DueOn: "2027-01-03", SuspendedAt: "2026-11-10"}},
		{name: "DS01 of a dissolved company's old strike-off does not count", items: []company.Filing{
			f("gazette-dissolved-voluntary", "2019-04-01", "GAZ2(A)"),
			f("dissolution-application-strike-off-company", "2019-01-20", "DS01")},
			want: company.StrikeOff{Kind: "unknown"}},
		{name: "suspended", items: []company.Filing{
			f("dissolved-compulsory-strike-off-suspended", "2026-11-20", "SOAS(A)"),
			f("gazette-notice-compulsory", "2026-11-03", "GAZ1")},
			want: company.StrikeOff{Kind: "compulsory", NoticeOn: "2026-11-03", DueOn: "2027-01-03", SuspendedAt: "2026-11-20"}},
		{name: "voluntary suspended", items: []company.Filing{
			f("dissolution-voluntary-strike-off-suspended", "2026-11-05", "SOAS(A)"),
			f("gazette-notice-voluntary", "2026-11-03", "GAZ1(A)")},
			want: company.StrikeOff{Kind: "voluntary", NoticeOn: "2026-11-03", DueOn: "2027-01-03", SuspendedAt: "2026-11-05"}},
		{name: "discontinued the same day, listed first", items: []company.Filing{
			f("gazette-filings-brought-up-to-date", "2026-11-03", "DISS40"),
			f("gazette-notice-compulsory", "2026-11-03", "GAZ1")},
			want: company.StrikeOff{Kind: "compulsory", NoticeOn: "2026-11-03", DueOn: "2027-01-03", SuspendedAt: "2026-11-03"}},
		{name: "re-entry: the latest notice counts, the old suspension not", items: []company.Filing{
			f("gazette-notice-voluntary", "2026-10-14", "GAZ1(A)"),
			f("dissolution-application-strike-off-company", "2026-10-01", "DS01"),
			f("gazette-filings-brought-up-to-date", "2024-06-01", "DISS40"),
			f("gazette-notice-compulsory", "2024-05-07", "GAZ1"),
			f("gazette-dissolved-compulsory", "2019-01-01", "GAZ2"),
			f("gazette-notice-compulsary", "2018-10-30", "GAZ1")},
			want: company.StrikeOff{Kind: "voluntary", NoticeOn: "2026-10-14", DueOn: "2026-12-14"}},
		{name: "order of the list does not matter", items: []company.Filing{
			f("gazette-notice-compulsory", "2024-05-07", "GAZ1"),
			f("gazette-notice-voluntary", "2026-10-14", "GAZ1(A)"),
			f("gazette-filings-brought-up-to-date", "2024-06-01", "DISS40")},
			want: company.StrikeOff{Kind: "voluntary", NoticeOn: "2026-10-14", DueOn: "2026-12-14"}},
		{name: "unknown GAZ1 description starts the clock", items: []company.Filing{f("gazette-notice-something-new", "2026-11-03", "GAZ1")},
			want: company.StrikeOff{Kind: "unknown", NoticeOn: "2026-11-03", DueOn: "2027-01-03"}, unk: []string{"gazette-notice-something-new"}},
		{name: "unknown item kept, kind unaffected", items: []company.Filing{
			f("gazette-objection-received", "2026-11-10", "GAZOBJ"),
			f("gazette-notice-compulsory", "2026-11-03", "GAZ1")},
			want: company.StrikeOff{Kind: "compulsory", NoticeOn: "2026-11-03", DueOn: "2027-01-03"}, unk: []string{"gazette-objection-received"}},
		{name: "notice without a date", items: []company.Filing{f("gazette-notice-compulsory", "", "GAZ1")},
			want: company.StrikeOff{Kind: "compulsory"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			got := company.DecideStrikeOff(c.items)
			var unk []string
			for _, u := range got.Unknown {
				unk = append(unk, u.Description)
			}
			got.Unknown = nil
			is.Equal(got, c.want)
			is.Equal(unk, c.unk)
		})
	}
}

func TestParseFiling(t *testing.T) {
	is := is.New(t)
	raw := []byte(`{"category":"gazette","date":"2026-11-03","description":"gazette-notice-compulsory","type":"GAZ1","transaction_id":"MzQ1Njc4","action_date":"2026-11-03","description_values":{},"links":{"self":"/company/00000006/filing-history/MzQ1Njc4"},"pages":1,"barcode":"X1"}`)
	it, err := company.ParseFiling(raw)
	is.NoErr(err)
	is.Equal(it.TransactionID, "MzQ1Njc4")
	is.Equal(it.Category, "gazette")
	is.Equal(it.Type, "GAZ1")
	is.Equal(it.Description, "gazette-notice-compulsory")
	is.Equal(it.Date, "2026-11-03")
	is.Equal(it.ActionDate, "2026-11-03")
	is.Equal(string(it.Raw), string(raw))

	noID, err := company.ParseFiling([]byte(`{"description":"x","date":5}`))
	is.NoErr(err)
	is.True(len(noID.TransactionID) > 7 && noID.TransactionID[:7] == "sha256:")
	is.Equal(noID.Date, "") // a field of the wrong type is left empty

	_, err = company.ParseFiling([]byte(`[1]`))
	is.True(err != nil)
}
