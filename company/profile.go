package company

import (
	"fmt"
	"strings"
	"time"

	"github.com/chwatch/chwatch/jsonscan"
)

// ParseProfile decodes a company profile, the stream's `data` and the body
// of REST GET /company/{n}, into a Version from src at t. Unknown fields are
// ignored: enums and fields are open. A profile without company_number or
// company_status is an error: the caller records the event as invalid.
//
// The profile is read in place (package jsonscan) rather than through
// encoding/json's reflection, which was a tenth of the apply loop's time
// and a fifth of its allocations: the Version's strings share data's
// memory where they need no unescaping, so data must not change while the
// Version is in use. Keys match exactly (encoding/json also matched them
// in another case; Companies House writes them in lower case).
func ParseProfile(data []byte, src Source, t time.Time) (Version, error) {
	v := Version{Source: src, SourceTime: t.UTC()}
	var prem string
	var bad []byte // the key of a member of the wrong type
	str := func(key, val []byte, dst *string) {
		if jsonscan.IsNull(val) {
			return
		}
		s, ok := jsonscan.Text(val)
		if !ok && bad == nil {
			bad = key
		}
		*dst = s
	}
	err := jsonscan.Object(data, func(key, val []byte) {
		switch string(key) {
		case "company_name":
			str(key, val, &v.Name)
		case "company_number":
			str(key, val, &v.Number)
		case "company_status":
			str(key, val, &v.Status)
		case "company_status_detail":
			str(key, val, &v.Detail)
		case "type":
			str(key, val, &v.Type)
		case "jurisdiction":
			str(key, val, &v.Jurisdiction)
		case "date_of_creation":
			str(key, val, &v.DateOfCreation)
		case "date_of_cessation":
			str(key, val, &v.DateOfCessation)
		case "etag":
			str(key, val, &v.Etag)
		case "sic_codes":
			if jsonscan.IsNull(val) {
				v.SICCodes = nil
				return
			}
			v.SICCodes = v.SICCodes[:0]
			if jsonscan.Array(val, func(e []byte) {
				c, ok := jsonscan.Text(e)
				if !ok && bad == nil {
					bad = key
				}
				v.SICCodes = append(v.SICCodes, c)
			}) != nil && bad == nil {
				bad = key
			}
		case "registered_office_address":
			if jsonscan.IsNull(val) {
				return
			}
			if jsonscan.Object(val, func(k, a []byte) {
				switch string(k) {
				case "premises":
					str(k, a, &prem)
				case "address_line_1":
					str(k, a, &v.AddressLine1)
				case "address_line_2":
					str(k, a, &v.AddressLine2)
				case "locality":
					str(k, a, &v.Locality)
				case "region":
					str(k, a, &v.Region)
				case "postal_code":
					str(k, a, &v.PostalCode)
				case "country":
					str(k, a, &v.Country)
				}
			}) != nil && bad == nil {
				bad = key
			}
		}
	})
	if err != nil {
		return Version{}, fmt.Errorf("decode company profile: %w", err)
	}
	if bad != nil {
		return Version{}, fmt.Errorf("decode company profile: %.40q has the wrong type", bad)
	}
	if v.Number == "" {
		return Version{}, fmt.Errorf("company profile has no company_number")
	}
	if v.Status == "" {
		return Version{}, fmt.Errorf("company profile %s has no company_status", v.Number)
	}
	if prem != "" && !startsWithWord(v.AddressLine1, prem) {
		v.AddressLine1 = strings.TrimSpace(prem + " " + v.AddressLine1)
	}
	return v, nil
}

// startsWithWord reports whether line begins with word as a whole word
// ("10 Downing Street" begins with "10", "12 High Street" not with "1").
func startsWithWord(line, word string) bool {
	rest, ok := strings.CutPrefix(line, word)
	return ok && (rest == "" || strings.IndexAny(rest[:1], " ,") == 0)
}
