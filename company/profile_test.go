package company_test

import (
	"os"
	stdstrings "strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/matryer/is"
)

func TestParseProfileFixture(t *testing.T) {
	is := is.New(t)
	data, err := os.ReadFile("testdata/profile.json")
	is.NoErr(err)
	published := time.Date(2026, 11, 28, 15, 21, 6, 0, time.FixedZone("BST", 3600))
	v, err := company.ParseProfile(data, company.Stream, published)
	is.NoErr(err)
	is.Equal(v, company.Version{
		Number: "SC571653", Name: "ACME CATERING LTD", Status: "active", Detail: company.StrikeOffDetail,
		Type: "ltd", Jurisdiction: "scotland", DateOfCreation: "2017-07-11",
		SICCodes:     []string{"56290", "70229"},
		AddressLine1: "Unit 4 High Street", AddressLine2: "Merchant City", Locality: "Glasgow",
		Region: "Lanarkshire", PostalCode: "G1 1QX", Country: "Scotland",
		Etag: "8d5b7b0a5bc1e2f7d0e9c4b3a2f1e0d9c8b7a6f5", Source: company.Stream,
		SourceTime: time.Date(2026, 11, 28, 14, 21, 6, 0, time.UTC), // stored in UTC
	})
	is.Equal(v.SourceTime.Location(), time.UTC)
	is.True(company.InStrikeOff(v.Status, v.Detail, false))
}

func TestParseProfile(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string // substring of the error, "" for none
		line1   string
		check   func(is *is.I, v company.Version)
	}{
		{
			name:    "MissingCompanyNumber",
			json:    `{"company_name":"ACME LTD","company_status":"active","etag":"e1"}`,
			wantErr: "no company_number",
		},
		{
			name:    "MissingCompanyStatus",
			json:    `{"company_name":"ACME LTD","company_number":"00000006","etag":"e1"}`,
			wantErr: "00000006 has no company_status",
		},
		{
			name:    "NotJSON",
			json:    `<html>502 Bad Gateway</html>`,
			wantErr: "decode company profile",
		},
		{
			name:    "SICCodesNotAList",
			json:    `{"company_number":"00000006","company_status":"active","sic_codes":"56290"}`,
			wantErr: "decode company profile",
		},
		{
			name:  "PremisesAlreadyInLine1",
			json:  `{"company_number":"00000006","company_status":"active","registered_office_address":{"premises":"10","address_line_1":"10 Downing Street"}}`,
			line1: "10 Downing Street",
		},
		{
			name:  "PremisesThatPrefixesTheStreetNumber",
			json:  `{"company_number":"00000006","company_status":"active","registered_office_address":{"premises":"1","address_line_1":"12 High Street"}}`,
			line1: "1 12 High Street",
		},
		{
			name:  "PremisesOnly",
			json:  `{"company_number":"00000006","company_status":"active","registered_office_address":{"premises":"Rose Cottage"}}`,
			line1: "Rose Cottage",
		},
		{
			name:  "NoPremises",
			json:  `{"company_number":"00000006","company_status":"active","registered_office_address":{"address_line_1":"1 High Street"}}`,
			line1: "1 High Street",
		},
		{
			name: "NumberKeptAsText",
			json: `{"company_number":"00000006","company_status":"dissolved","date_of_cessation":"2020-01-07"}`,
			check: func(is *is.I, v company.Version) {
				is.Equal(v.Number, "00000006") // leading zeros kept
				is.Equal(v.DateOfCessation, "2020-01-07")
				is.Equal(len(v.SICCodes), 0)
			},
		},
		{
			name:    "NameNotAString",
			json:    `{"company_number":"00000006","company_status":"active","company_name":7}`,
			wantErr: `"company_name" has the wrong type`,
		},
		{
			name:    "SICCodeNotAString",
			json:    `{"company_number":"00000006","company_status":"active","sic_codes":["1",2]}`,
			wantErr: `"sic_codes" has the wrong type`,
		},
		{
			name:    "AddressNotAnObject",
			json:    `{"company_number":"00000006","company_status":"active","registered_office_address":"x"}`,
			wantErr: `"registered_office_address" has the wrong type`,
		},
		{
			name:    "TrailingGarbage",
			json:    `{"company_number":"00000006","company_status":"active"} x`,
			wantErr: "decode company profile",
		},
		{
			name: "EscapesNullsAndInvalidUTF8AsEncodingJSON",
			json: "{\"company_number\":\"00000006\",\"company_status\":\"active\",\"company_name\":\"A \\\"B\\\" \\u00e9 LTD\"," +
				"\"type\":null,\"sic_codes\":null,\"registered_office_address\":{\"locality\":\"Caf\xe9\",\"region\":null},\"extra\":{\"a\":[1,{}]}}",
			check: func(is *is.I, v company.Version) {
				is.Equal(v.Name, `A "B" é LTD`)
				is.Equal(v.Type, "")
				is.Equal(len(v.SICCodes), 0)
				is.Equal(v.Locality, "Caf\uFFFD") // as encoding/json decodes it
				is.Equal(v.Region, "")
			},
		},
		{
			name: "LastOfARepeatedKey",
			json: `{"company_number":"00000006","company_status":"dissolved","company_status":"active","sic_codes":["1","2"]}`,
			check: func(is *is.I, v company.Version) {
				is.Equal(v.Status, "active")
				is.Equal(v.SICCodes, []string{"1", "2"})
			},
		},
		{
			name: "DetailInStatusIsKeptVerbatim",
			json: `{"company_number":"00000006","company_status":"active-proposal-to-strike-off"}`,
			check: func(is *is.I, v company.Version) {
				is.Equal(v.Status, "active-proposal-to-strike-off")
				is.Equal(v.Detail, "")
				is.True(!company.InStrikeOff(v.Status, v.Detail, false))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			v, err := company.ParseProfile([]byte(tt.json), company.API, t0)
			if tt.wantErr != "" {
				is.True(err != nil)
				is.True(stdstrings.Contains(err.Error(), tt.wantErr)) // the error says what is wrong
				return
			}
			is.NoErr(err)
			is.Equal(v.Source, company.API)
			is.Equal(v.SourceTime, t0)
			if tt.line1 != "" {
				is.Equal(v.AddressLine1, tt.line1)
			}
			if tt.check != nil {
				tt.check(is, v)
			}
		})
	}
}

// FuzzParseProfile: any input either decodes to a version with a number and
// a status, or is an error; it never panics.
func FuzzParseProfile(f *testing.F) {
	data, err := os.ReadFile("testdata/profile.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"company_number":"00000006","company_status":"active","registered_office_address":{"premises":"1"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := company.ParseProfile(b, company.Stream, t0)
		if err == nil && (v.Number == "" || v.Status == "") {
			t.Fatalf("accepted a profile without number or status: %+v", v)
		}
	})
}
