package bulk_test

import (
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/chwatch/chwatch/bulk"
)

func TestMapStatus(t *testing.T) {
	tests := []struct {
		text, status, detail string
		known                bool
	}{
		{"Active", "active", "", true},
		{"active", "active", "", true},
		{"ACTIVE", "active", "", true},
		{"Active - Proposal to Strike off", "active", "active-proposal-to-strike-off", true},
		{"ACTIVE - PROPOSAL TO STRIKE OFF", "active", "active-proposal-to-strike-off", true},
		{"  active  -  proposal to  strike off ", "active", "active-proposal-to-strike-off", true},
		{"Active-Proposal to Strike off", "active", "active-proposal-to-strike-off", true},
		{"Liquidation", "liquidation", "", true},
		{"In Administration", "administration", "", true},
		{"Administration Order", "administration", "", true},
		{"In Administration/Administrative Receiver", "administration", "", true},
		{"In Administration/Receiver Manager", "administration", "", true},
		{"Administrative Receiver", "receivership", "", true},
		{"ADMINISTRATIVE RECEIVER", "receivership", "", true},
		{"RECEIVER MANAGER / ADMINISTRATIVE RECEIVER", "receivership", "", true},
		{"Receiver Manager", "receivership", "", true},
		{"Receivership", "receivership", "", true},
		{"Live but Receiver Manager on at least one charge", "receivership", "", true},
		{"Voluntary Arrangement", "voluntary-arrangement", "", true},
		{"Voluntary Arrangement / Administrative Receiver", "voluntary-arrangement", "", true},
		{"VOLUNTARY ARRANGEMENT / RECEIVER MANAGER", "voluntary-arrangement", "", true},
		{"Insolvency Proceedings", "insolvency-proceedings", "", true},
		{"Dissolved", "dissolved", "", true},
		{"Converted / Closed", "converted-closed", "", true},
		{"Converted/Closed", "converted-closed", "", true},
		{"Registered", "registered", "", true},
		{" Some New Status ", "Some New Status", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			is := is.New(t)
			status, detail, known := bulk.MapStatus(tt.text)
			is.Equal(status, tt.status)
			is.Equal(detail, tt.detail)
			is.Equal(known, tt.known)
		})
	}
}

func TestMapCategory(t *testing.T) {
	tests := []struct {
		text, apiType string
		known         bool
	}{
		{"Private Limited Company", "ltd", true},
		{"PRIVATE LIMITED COMPANY", "ltd", true},
		{"Public Limited Company", "plc", true},
		{"PRI/LBG/NSC (Private, Limited by guarantee, no share capital, use of 'Limited' exemption)", "private-limited-guarant-nsc-limited-exemption", true},
		{"PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)", "private-limited-guarant-nsc", true},
		{"Private Unlimited Company", "private-unlimited", true},
		{"Private Unlimited", "private-unlimited", true},
		{"Limited Liability Partnership", "llp", true},
		{"Limited Partnership", "limited-partnership", true},
		{"Community Interest Company", "ltd", true},
		{"Scottish Partnership", "scottish-partnership", true},
		{"Charitable Incorporated Organisation", "charitable-incorporated-organisation", true},
		{"Scottish Charitable Incorporated Organisation", "scottish-charitable-incorporated-organisation", true},
		{"Royal Charter Company", "royal-charter", true},
		{"Overseas Entity", "registered-overseas-entity", true},
		{"Other company type", "other", true},
		{"European Public Limited-Liability Company (SE)", "european-public-limited-liability-company-se", true},
		{"Investment Company with Variable Capital", "investment-company-with-variable-capital", true},
		{"Industrial and Provident Society", "industrial-and-provident-society", true},
		{"Registered Society", "registered-society-non-jurisdictional", true},
		{"Further Education and Sixth Form College Corps", "further-education-or-sixth-form-college-corporation", true},
		{"Old Public Company", "old-public-company", true},
		{"Protected Cell Company", "protected-cell-company", true},
		{"UK Establishment", "uk-establishment", true},
		{"Converted/Closed", "converted-or-closed", true},
		{"", "", true},
		{" Galactic Federation Company ", "Galactic Federation Company", false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			is := is.New(t)
			apiType, known := bulk.MapCategory(tt.text)
			is.Equal(apiType, tt.apiType)
			is.Equal(known, tt.known)
		})
	}
}

func TestMapSIC(t *testing.T) {
	tests := []struct {
		text, code string
		ok         bool
	}{
		{"70229 - Management consultancy activities other than financial management", "70229", true},
		{"99999 - Dormant Company", "99999", true},
		{" 7415 - Holding Companies including Head Offices", "7415", true},
		{"62020", "62020", true},
		{"62020-IT consultancy", "62020", true},
		{"None Supplied", "", false},
		{"", "", false},
		{"123 - Too short", "", false},
		{"123456 - Too long", "", false},
		{"70229A - Letters", "", false},
		{"Not a SIC text", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			is := is.New(t)
			code, ok := bulk.MapSIC(tt.text)
			is.Equal(code, tt.code)
			is.Equal(ok, tt.ok)
		})
	}
}

// withIncorporation is a bulk file of one sample row with IncorporationDate
// date.
func withIncorporation(tb testing.TB, date string) string {
	tb.Helper()
	rows, err := csv.NewReader(strings.NewReader(sampleRows(tb, 1))).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	col := slices.IndexFunc(rows[0], func(h string) bool { return strings.TrimSpace(h) == "IncorporationDate" })
	rows[1][col] = date
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	w.WriteAll(rows)
	return b.String()
}

// A bulk date, DD/MM/YYYY, is read as ISO YYYY-MM-DD; one that does not
// exist (31/02/2020) makes its row a bad row.
func TestReadDates(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"05/04/2001", "2001-04-05", false},
		{" 29/02/2016 ", "2016-02-29", false},
		{"29/02/2000", "2000-02-29", false},
		{"31/12/1856", "1856-12-31", false},
		{"", "", false},
		{"   ", "", false},
		{"31/02/2020", "", true},
		{"29/02/2019", "", true},
		{"29/02/1900", "", true},
		{"31/04/2020", "", true},
		{"00/01/2020", "", true},
		{"01/13/2020", "", true},
		{"01/01/0000", "", true},
		{"1/1/2020", "", true},
		{"2020-01-01", "", true},
		{"01-01-2020", "", true},
		{"aa/bb/cccc", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			is := is.New(t)
			got := readAll(t, mustReader(t, strings.NewReader(withIncorporation(t, tt.in))))
			is.Equal(len(got), 1)
			if tt.bad {
				is.True(got[0].Error != nil)
				is.Equal(got[0].Error.Reason, fmt.Sprintf("bad IncorporationDate %q", strings.TrimSpace(tt.in)))
				return
			}
			is.True(got[0].Error == nil)
			is.Equal(got[0].Record.DateOfCreation, tt.want)
		})
	}
}

func TestMapJurisdiction(t *testing.T) {
	tests := []struct {
		number, origin, want string
		known                bool
	}{
		{"01234567", "United Kingdom", "england-wales", true},
		{"01234567", "", "england-wales", true},
		{"01234567", "Wales", "wales", true},
		{"01234567", "ENGLAND", "england", true},
		{"OC301234", "United Kingdom", "england-wales", true},
		{"SC571653", "United Kingdom", "scotland", true},
		{"SL000123", "", "scotland", true},
		{"SO301234", "United Kingdom", "scotland", true},
		{"NI012345", "United Kingdom", "northern-ireland", true},
		{"R0000123", "", "northern-ireland", true},
		{"FC033333", "FRANCE", "european-union", true},
		{"FC033334", "UNITED STATES", "noneu", true},
		{"OE012345", "Cayman Islands", "noneu", true},
		{"OE012346", "", "", true},
		{"01234567", "Narnia", "england-wales", false},
	}
	for _, tt := range tests {
		t.Run(tt.number+"/"+tt.origin, func(t *testing.T) {
			is := is.New(t)
			got, known := bulk.MapJurisdiction(tt.number, tt.origin)
			is.Equal(got, tt.want)
			is.Equal(known, tt.known)
		})
	}
}

func TestAsOfFromName(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"BasicCompanyDataAsOneFile-2026-11-01.zip", "2026-11-01"},
		{"BasicCompanyData-2026-11-01-part1_7.csv", "2026-11-01"},
		{"/data/2025-01-01/BasicCompanyData-2026-11-01-part7_7.zip", "2026-11-01"},
		{"BasicCompanyDataAsOneFile-2026-13-01.zip", ""},
		{"BasicCompanyDataAsOneFile.zip", ""},
		{"x-20261-11-01.csv", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			got, ok := bulk.AsOfFromName(tt.name)
			is.Equal(ok, tt.want != "")
			if tt.want != "" {
				want, _ := time.Parse(time.DateOnly, tt.want)
				is.Equal(got, want)
				is.Equal(got.Location(), time.UTC)
			}
		})
	}
}
