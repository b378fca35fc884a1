package bulk

import (
	"strings"
)

// statusTable maps the bulk file's CompanyStatus texts to the API's
// company_status and company_status_detail enums (api-enumerations,
// constants.yml). Texts are compared after normalisation (see normKey): case,
// runs of spaces and spaces around "/" and "-" do not matter.
//
// Decisions:
//   - Plain "Active" has an empty detail, as the API sends it: only strike-off
//     carries a detail, so bulk and stream rows for the same company agree.
//   - "Live but Receiver Manager on at least one charge" is receivership: a
//     receiver is acting (the API labels receivership "Receiver Action"), and
//     the company is certainly not in strike-off.
//   - Administrative receivers and receiver managers are receivership;
//     administration orders are administration.
//   - Combined texts ("Voluntary Arrangement / Administrative Receiver") take
//     the first-named proceeding.
var statusTable = []struct{ text, status, detail string }{
	{"Active", "active", ""},
	{"Active - Proposal to Strike off", "active", "active-proposal-to-strike-off"},
	{"Liquidation", "liquidation", ""},
	{"In Liquidation", "liquidation", ""},
	{"In Administration", "administration", ""},
	{"Administration", "administration", ""},
	{"Administration Order", "administration", ""},
	{"In Administration / Administrative Receiver", "administration", ""},
	{"In Administration / Receiver Manager", "administration", ""},
	{"Administrative Receiver", "receivership", ""},
	{"Receiver Manager", "receivership", ""},
	{"Receiver Manager / Administrative Receiver", "receivership", ""},
	{"Receivership", "receivership", ""},
	{"Receiver Action", "receivership", ""},
	{"Live but Receiver Manager on at least one charge", "receivership", ""},
	{"Voluntary Arrangement", "voluntary-arrangement", ""},
	{"Voluntary Arrangement / Administrative Receiver", "voluntary-arrangement", ""},
	{"Voluntary Arrangement / Receiver Manager", "voluntary-arrangement", ""},
	{"Insolvency Proceedings", "insolvency-proceedings", ""},
	{"Dissolved", "dissolved", ""},
	{"Converted / Closed", "converted-closed", ""},
	{"Open", "open", ""},
	{"Closed", "closed", ""},
	{"Registered", "registered", ""},
	{"Removed", "removed", ""},
}

// categoryTable maps the bulk file's CompanyCategory texts to the API's
// company `type` enum (api-enumerations, constants.yml, company_type).
//
// Decisions:
//   - "Community Interest Company" is ltd. The API types a CIC as ltd (or
//     private-limited-guarant-nsc) with subtype community-interest-company; the
//     bulk file cannot tell the two apart and most CICs are limited by shares.
//   - "Investment Company with Variable Capital" is the generic
//     investment-company-with-variable-capital; the icvc-* subtypes are mapped
//     only when the text names them.
var categoryTable = []struct{ text, apiType string }{
	{"Private Limited Company", "ltd"},
	{"Public Limited Company", "plc"},
	{"PRI/LBG/NSC (Private, Limited by guarantee, no share capital, use of 'Limited' exemption)", "private-limited-guarant-nsc-limited-exemption"},
	{"PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)", "private-limited-guarant-nsc"},
	{"Private Limited by guarantee without share capital", "private-limited-guarant-nsc"},
	{"Private Unlimited Company", "private-unlimited"},
	{"Private Unlimited", "private-unlimited"},
	{"Private Unlimited Company without share capital", "private-unlimited-nsc"},
	{"Private Limited Company, use of 'Limited' exemption", "private-limited-shares-section-30-exemption"},
	{"Limited Liability Partnership", "llp"},
	{"Limited Partnership", "limited-partnership"},
	{"Community Interest Company", "ltd"},
	{"Scottish Partnership", "scottish-partnership"},
	{"Scottish Qualifying Partnership", "scottish-partnership"},
	{"Charitable Incorporated Organisation", "charitable-incorporated-organisation"},
	{"Scottish Charitable Incorporated Organisation", "scottish-charitable-incorporated-organisation"},
	{"Royal Charter Company", "royal-charter"},
	{"Overseas Entity", "registered-overseas-entity"},
	{"Other company type", "other"},
	{"Other", "other"},
	{"European Public Limited-Liability Company (SE)", "european-public-limited-liability-company-se"},
	{"Investment Company with Variable Capital", "investment-company-with-variable-capital"},
	{"Investment Company with Variable Capital (Securities)", "icvc-securities"},
	{"Investment Company with Variable Capital (Umbrella)", "icvc-umbrella"},
	{"Investment Company with Variable Capital (Warrant)", "icvc-warrant"},
	{"Industrial and Provident Society", "industrial-and-provident-society"},
	{"Registered Society", "registered-society-non-jurisdictional"},
	{"Further Education and Sixth Form College Corps", "further-education-or-sixth-form-college-corporation"},
	{"Further Education or Sixth Form College Corporation", "further-education-or-sixth-form-college-corporation"},
	{"Old Public Company", "old-public-company"},
	{"Protected Cell Company", "protected-cell-company"},
	{"UK Establishment", "uk-establishment"},
	{"UK Establishment Company", "uk-establishment"},
	{"Converted / Closed", "converted-or-closed"},
	{"Assurance Company", "assurance-company"},
	{"Overseas Company", "oversea-company"},
	{"Oversea Company", "oversea-company"},
	{"European Economic Interest Grouping (EEIG)", "eeig"},
	{"United Kingdom Economic Interest Grouping", "ukeig"},
	{"United Kingdom Societas", "united-kingdom-societas"},
	{"Unregistered Company", "unregistered-company"},
	{"Northern Ireland Company", "northern-ireland"},
	{"Credit Union (Northern Ireland)", "northern-ireland-other"},
}

type statusValue struct{ status, detail string }

var (
	statusByKey = index("status", statusTable, func(s struct{ text, status, detail string }) (string, statusValue) {
		return s.text, statusValue{s.status, s.detail}
	})
	categoryByKey = index("category", categoryTable, func(c struct{ text, apiType string }) (string, string) { return c.text, c.apiType })
	countryByKey  = index("country", countryTable, func(c struct{ text, jurisdiction string }) (string, string) { return c.text, c.jurisdiction })
)

// index keys a table's values by the normKey of their texts. A text too
// long for a key, or two texts with one key, is a mistake in the table.
func index[R, V any](what string, table []R, entry func(R) (string, V)) map[string]V {
	by := make(map[string]V, len(table))
	var buf [maxKey]byte
	for _, r := range table {
		text, v := entry(r)
		k, ok := normKey(buf[:0], text)
		if !ok {
			panic("bulk: " + what + " text too long: " + text)
		}
		if _, dup := by[string(k)]; dup {
			panic("bulk: duplicate " + what + " text: " + text)
		}
		by[string(k)] = v
	}
	return by
}

// maxKey bounds the texts normKey normalises on the stack; longer texts are
// never in a table.
const maxKey = 128

// normKey appends the lookup key of text to dst: ASCII lower case, surrounding
// space trimmed, runs of white space collapsed to one space, and no space next
// to '/' or '-'. It reports false when the key would exceed maxKey bytes.
func normKey(dst []byte, text string) ([]byte, bool) {
	text = strings.TrimSpace(text)
	if len(text) > maxKey {
		return dst, false
	}
	space := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch c {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			space = true
			continue
		case '/', '-':
			space = false
			for len(dst) > 0 && dst[len(dst)-1] == ' ' {
				dst = dst[:len(dst)-1]
			}
			dst = append(dst, c)
			continue
		}
		if space && len(dst) > 0 && dst[len(dst)-1] != '/' && dst[len(dst)-1] != '-' {
			dst = append(dst, ' ')
		}
		space = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// MapStatus maps a CompanyStatus text to the API's company_status and
// company_status_detail ("Active - Proposal to Strike off", in any case and
// spacing, is "active" and "active-proposal-to-strike-off"). For a text no
// table knows it returns the trimmed text as status, an empty detail and
// known false.
func MapStatus(text string) (status, detail string, known bool) {
	var buf [maxKey]byte
	if k, ok := normKey(buf[:0], text); ok {
		if v, ok := statusByKey[string(k)]; ok {
			return v.status, v.detail, true
		}
	}
	return strings.TrimSpace(text), "", false
}

// MapCategory maps a CompanyCategory text to the API's company type enum
// ("Private Limited Company" is "ltd"). For a text no table knows it returns
// the trimmed text and known false. A blank text is known and maps to "".
func MapCategory(text string) (apiType string, known bool) {
	var buf [maxKey]byte
	k, ok := normKey(buf[:0], text)
	if ok && len(k) == 0 {
		return "", true
	}
	if ok {
		if v, ok := categoryByKey[string(k)]; ok {
			return v, true
		}
	}
	return strings.TrimSpace(text), false
}

// MapSIC extracts the code from a SICCode.SicText_n text: "70229 - Management
// consultancy activities other than financial management" is "70229". Codes
// are 4 (SIC 2003) or 5 (SIC 2007) digits. Blank text, "None Supplied" and
// anything else without a leading code report ok false.
func MapSIC(text string) (code string, ok bool) {
	t := strings.TrimSpace(text)
	i := 0
	for i < len(t) && '0' <= t[i] && t[i] <= '9' {
		i++
	}
	if i < 4 || i > 5 {
		return "", false
	}
	if i < len(t) && t[i] != ' ' && t[i] != '-' {
		return "", false
	}
	return t[:i], true
}

// isNoSIC reports whether a SIC text says there is no code, which is not worth
// reporting as unknown.
func isNoSIC(text string) bool {
	t := strings.TrimSpace(text)
	return t == "" || strings.EqualFold(t, "None Supplied")
}

// parseDMY parses a trimmed DD/MM/YYYY date and checks it exists.
func parseDMY(s string) (y, m, d int, ok bool) {
	if len(s) != 10 || s[2] != '/' || s[5] != '/' {
		return 0, 0, 0, false
	}
	d, ok1 := atoiDigits(s[0:2])
	m, ok2 := atoiDigits(s[3:5])
	y, ok3 := atoiDigits(s[6:10])
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

func atoiDigits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(y, m int) int {
	switch m {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// putISO writes YYYY-MM-DD into b[:10].
func putISO(b []byte, y, m, d int) {
	b[0] = byte('0' + y/1000)
	b[1] = byte('0' + y/100%10)
	b[2] = byte('0' + y/10%10)
	b[3] = byte('0' + y%10)
	b[4] = '-'
	b[5] = byte('0' + m/10)
	b[6] = byte('0' + m%10)
	b[7] = '-'
	b[8] = byte('0' + d/10)
	b[9] = byte('0' + d%10)
}

// Company number prefixes that decide the jurisdiction. Numbers without a
// prefix, and the other prefixes (OC, LP, IP, RC, AC, ZC, IC, CE, PC, SE, GE,
// FE, ...), are England and Wales unless CountryOfOrigin says otherwise.
var (
	scottishPrefixes = map[string]bool{
		"SC": true, "SA": true, "SG": true, "SI": true, "SL": true, "SO": true,
		"SP": true, "SR": true, "SZ": true, "CS": true, "GS": true,
	}
	northernIrishPrefixes = map[string]bool{
		"NI": true, "NA": true, "NC": true, "NL": true, "NO": true, "NP": true,
		"NR": true, "NZ": true, "R0": true, "GN": true,
	}
	overseasPrefixes = map[string]bool{"FC": true, "SF": true, "NF": true, "OE": true}
)

// countryTable maps CountryOfOrigin texts. UK names map to a jurisdiction;
// EU member states map to "european-union" and are used for overseas
// companies only.
var countryTable = []struct{ text, jurisdiction string }{
	{"", "england-wales"},
	{"United Kingdom", "england-wales"},
	{"UK", "england-wales"},
	{"Great Britain", "england-wales"},
	{"England & Wales", "england-wales"},
	{"England and Wales", "england-wales"},
	{"England / Wales", "england-wales"},
	{"England", "england"},
	{"Wales", "wales"},
	{"Scotland", "scotland"},
	{"Northern Ireland", "northern-ireland"},
	{"Austria", "european-union"}, {"Belgium", "european-union"},
	{"Bulgaria", "european-union"}, {"Croatia", "european-union"},
	{"Cyprus", "european-union"}, {"Czech Republic", "european-union"},
	{"Czechia", "european-union"}, {"Denmark", "european-union"},
	{"Estonia", "european-union"}, {"Finland", "european-union"},
	{"France", "european-union"}, {"Germany", "european-union"},
	{"Greece", "european-union"}, {"Hungary", "european-union"},
	{"Ireland", "european-union"}, {"Republic of Ireland", "european-union"},
	{"Irish Republic", "european-union"}, {"Italy", "european-union"},
	{"Latvia", "european-union"}, {"Lithuania", "european-union"},
	{"Luxembourg", "european-union"}, {"Malta", "european-union"},
	{"Netherlands", "european-union"}, {"The Netherlands", "european-union"},
	{"Holland", "european-union"}, {"Poland", "european-union"},
	{"Portugal", "european-union"}, {"Romania", "european-union"},
	{"Slovakia", "european-union"}, {"Slovenia", "european-union"},
	{"Spain", "european-union"}, {"Sweden", "european-union"},
}

// MapJurisdiction derives the API jurisdiction from a company number and its
// CountryOfOrigin. The rule, first match wins:
//
//  1. Overseas prefixes (FC, SF, NF, OE): "european-union" when the country
//     of origin is an EU member state, "" when it is blank, else "noneu".
//  2. Scottish prefixes (SC, SA, SG, SI, SL, SO, SP, SR, SZ, CS, GS): "scotland".
//  3. Northern Irish prefixes (NI, NA, NC, NL, NO, NP, NR, NZ, R0, GN):
//     "northern-ireland".
//  4. A UK country of origin names it: "Scotland", "Northern Ireland",
//     "Wales" and "England" map to themselves; "United Kingdom", blank and
//     the like are "england-wales".
//  5. Anything else (a domestic number with a foreign country of origin) is
//     "england-wales" with known false, so the importer can report it.
func MapJurisdiction(companyNumber, countryOfOrigin string) (jurisdiction string, known bool) {
	var buf [maxKey]byte
	k, ok := normKey(buf[:0], countryOfOrigin)
	country, found := "", false
	if ok {
		country, found = countryByKey[string(k)]
	}
	prefix := ""
	if n := strings.TrimSpace(companyNumber); len(n) >= 2 {
		prefix = strings.ToUpper(n[:2])
	}
	switch {
	case overseasPrefixes[prefix]:
		switch {
		case ok && len(k) == 0:
			return "", true
		case country == "european-union":
			return country, true
		}
		return "noneu", true
	case scottishPrefixes[prefix]:
		return "scotland", true
	case northernIrishPrefixes[prefix]:
		return "northern-ireland", true
	case found && country != "european-union":
		return country, true
	}
	return "england-wales", false
}
