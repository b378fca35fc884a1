package importer

import (
	"encoding/binary"
	"testing"

	"github.com/matryer/is"

	"github.com/chwatch/chwatch/bulk"
)

// A row comes out of a run as it went in, but for its offset (only phase 1
// needs it), and keys order as bytes do.
func TestRecordRoundTrip(t *testing.T) {
	tests := []bulk.Record{
		{Line: 2, CompanyNumber: "00000001"},
		{Line: 1 << 40, CompanyNumber: "SC123456", CompanyName: `THE "BEST" CAFÉ LIMITED`, CompanyStatus: "active",
			CompanyStatusDetail: "active-proposal-to-strike-off", CompanyType: "ltd", Jurisdiction: "scotland",
			DateOfCreation: "2016-02-29", DateOfCessation: "2026-01-01", SICCodes: []string{"56101", "56102"},
			AddressLine1: "Unit 4\nThe Old Mill", AddressLine2: "Mill Lane", Locality: "EDINBURGH", Region: "LOTHIAN",
			PostalCode: "EH2 2PR", Country: "SCOTLAND", Unknown: []string{"status:Some New Status", "sic:x"}},
		{Line: 300, CompanyNumber: "OE012345", CompanyName: string(make([]byte, 70000))}, // a length past one varint byte
	}
	for _, want := range tests {
		is := is.New(t)
		b := appendRecord([]byte("prefix"), &want)
		body := b[len("prefix"):]
		n, l := binary.Uvarint(body)
		is.Equal(int(n), len(body)-l)
		got, err := decodeRecord(body[l:])
		is.NoErr(err)
		is.Equal(got, want)
		k, ok := bodyKey(body[l:])
		is.True(ok)
		wk, _ := keyOf(want.CompanyNumber, want.Line)
		is.Equal(k, wk)
	}
	a, _ := keyOf("09999999", 9)
	b, _ := keyOf("NI000001", 2)
	c, _ := keyOf("NI000001", 3)
	is := is.New(t)
	is.Equal(a.compare(b), -1) // digits before letters, as SQLite's BINARY collation
	is.Equal(b.compare(c), -1) // then by line
	is.Equal(c.compare(c), 0)
	_, err := decodeRecord([]byte("00000001\x02\x05ab"))
	is.True(err != nil) // a string longer than what is left
}
