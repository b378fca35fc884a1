package bulk

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// WriteSample writes a synthetic bulk file of rows rows to w: the real
// header (HeaderLine), every field double-quoted, CRLF line endings, about 7%
// of rows "Active - Proposal to Strike off", and field lengths like the real
// file's (about 470 bytes a row). The same seed writes the same file. It is
// for benchmarks and demos.
func WriteSample(w io.Writer, rows int, seed int64) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	if _, err := bw.WriteString(HeaderLine + "\r\n"); err != nil {
		return fmt.Errorf("write sample header: %w", err)
	}
	f := make([]string, standardWidth)
	c := standardColumns
	for i := range rows {
		for j := range f {
			f[j] = ""
		}
		sampleRow(rng, i, f, &c)
		for j, v := range f {
			if j > 0 {
				bw.WriteByte(',')
			}
			bw.WriteByte('"')
			if strings.IndexByte(v, '"') >= 0 {
				v = strings.ReplaceAll(v, `"`, `""`)
			}
			bw.WriteString(v)
			bw.WriteByte('"')
		}
		if _, err := bw.WriteString("\r\n"); err != nil {
			return fmt.Errorf("write sample row %d: %w", i+1, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write sample: %w", err)
	}
	return nil
}

var (
	sampleWords = []string{
		"ACORN", "ALPHA", "APEX", "ATLAS", "BEACON", "BLUE", "BRIDGE", "BRIGHT",
		"CASTLE", "CEDAR", "CITY", "CLEAR", "COASTAL", "CROWN", "DELTA", "EAGLE",
		"EMERALD", "FALCON", "FIRST", "GLOBAL", "GOLDEN", "GREEN", "HARBOUR",
		"HERITAGE", "HORIZON", "IRON", "KING'S", "LAKESIDE", "LION", "MAPLE",
		"MERIDIAN", "NORTH", "OAK", "OMEGA", "PHOENIX", "PINNACLE", "PRIME",
		"QUANTUM", "RED", "RIVER", "ROYAL", "SILVER", "SOUTH", "SPRING", "STAR",
		"SUMMIT", "THAMES", "UNITED", "VALLEY", "VICTORIA", "WEST", "WILLOW",
	}
	sampleTrades = []string{
		"CONSULTING", "PROPERTIES", "HOLDINGS", "SERVICES", "TRADING", "DESIGN",
		"CONSTRUCTION", "LOGISTICS", "MEDIA", "SOLUTIONS", "VENTURES", "CAPITAL",
		"TECHNOLOGIES", "INVESTMENTS", "ENTERPRISES", "GROUP", "CARE", "FOODS",
	}
	sampleStreets = []string{
		"High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane",
		"Manor Road", "Park Avenue", "Mill Lane", "Kings Road", "Queen Street",
		"London Road", "The Broadway", "Market Place", "New Street", "York Road",
	}
	sampleTowns = []struct{ town, county, pc string }{
		{"LONDON", "", "EC1V"}, {"LONDON", "", "WC2H"}, {"MANCHESTER", "", "M1"},
		{"BIRMINGHAM", "WEST MIDLANDS", "B3"}, {"LEEDS", "WEST YORKSHIRE", "LS1"},
		{"BRISTOL", "", "BS1"}, {"CARDIFF", "", "CF10"}, {"GLASGOW", "", "G2"},
		{"EDINBURGH", "", "EH3"}, {"BELFAST", "COUNTY ANTRIM", "BT1"},
		{"READING", "BERKSHIRE", "RG1"}, {"NORWICH", "NORFOLK", "NR1"},
	}
	sampleSIC = []string{
		"70229 - Management consultancy activities other than financial management",
		"62020 - Information technology consultancy activities",
		"68209 - Other letting and operating of own or leased real estate",
		"82990 - Other business support service activities n.e.c.",
		"96090 - Other service activities n.e.c.",
		"41100 - Development of building projects",
		"56101 - Licensed restaurants",
		"99999 - Dormant Company",
		"47910 - Retail sale via mail order houses or via Internet",
		"43390 - Other building completion and finishing",
	}
	sampleAccounts = []string{
		"MICRO ENTITY", "TOTAL EXEMPTION FULL", "DORMANT", "NO ACCOUNTS FILED",
		"UNAUDITED ABRIDGED", "SMALL", "FULL", "GROUP",
	}
)

func sampleDate(rng *rand.Rand, y0, y1 int) string {
	y := y0 + rng.IntN(y1-y0+1)
	m := 1 + rng.IntN(12)
	d := 1 + rng.IntN(28)
	return fmt.Sprintf("%02d/%02d/%04d", d, m, y)
}

// sampleRow fills f (blank) with row i of a sample file.
func sampleRow(rng *rand.Rand, i int, f []string, c *columns) {
	prefix, category := "", "Private Limited Company"
	switch p := rng.IntN(100); {
	case p < 6:
		prefix = "SC"
	case p < 8:
		prefix = "NI"
	case p < 11:
		prefix, category = "OC", "Limited Liability Partnership"
	case p < 14:
		category = "PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)"
	case p < 15:
		category = "Public Limited Company"
	case p < 16:
		category = "Community Interest Company"
	}
	num := strconv.Itoa(i + 1)
	num = prefix + strings.Repeat("0", max(0, 8-len(prefix)-len(num))) + num
	if len(num) > 8 {
		num = num[len(num)-8:]
	}

	name := sampleWords[rng.IntN(len(sampleWords))] + " " + sampleTrades[rng.IntN(len(sampleTrades))]
	if rng.IntN(4) == 0 {
		name = sampleWords[rng.IntN(len(sampleWords))] + " " + name
	}
	if rng.IntN(200) == 0 {
		name = `"` + name + `", ` + sampleWords[rng.IntN(len(sampleWords))]
	}
	if category == "Limited Liability Partnership" {
		name += " LLP"
	} else if category == "Public Limited Company" {
		name += " PLC"
	} else {
		name += " LIMITED"
	}

	town := sampleTowns[rng.IntN(len(sampleTowns))]
	f[c.name] = name
	f[c.number] = num
	if rng.IntN(20) == 0 {
		f[c.careOf] = sampleWords[rng.IntN(len(sampleWords))] + " ACCOUNTANTS LLP"
	}
	if rng.IntN(100) == 0 {
		f[c.poBox] = strconv.Itoa(1 + rng.IntN(9999))
	}
	f[c.line1] = strconv.Itoa(1+rng.IntN(250)) + " " + sampleStreets[rng.IntN(len(sampleStreets))]
	if rng.IntN(3) == 0 {
		f[c.line2] = "Suite " + strconv.Itoa(1+rng.IntN(40))
	}
	f[c.town] = town.town
	f[c.county] = town.county
	f[c.country] = []string{"UNITED KINGDOM", "ENGLAND", "SCOTLAND", "WALES", ""}[rng.IntN(5)]
	f[c.postCode] = town.pc + " " + strconv.Itoa(rng.IntN(10)) + string(rune('A'+rng.IntN(26))) + string(rune('A'+rng.IntN(26)))
	f[c.category] = category
	f[c.status] = "Active"
	if rng.IntN(100) < 7 {
		f[c.status] = "Active - Proposal to Strike off"
	}
	f[c.origin] = "United Kingdom"
	f[c.incorporation] = sampleDate(rng, 1950, 2026)

	// The remaining columns by position in HeaderLine (see the header): they
	// are not read, only written for realistic row lengths.
	f[15] = strconv.Itoa(1 + rng.IntN(31))                // Accounts.AccountRefDay
	f[16] = strconv.Itoa(1 + rng.IntN(12))                // Accounts.AccountRefMonth
	f[17] = sampleDate(rng, 2026, 2027)                   // Accounts.NextDueDate
	f[18] = sampleDate(rng, 2024, 2025)                   // Accounts.LastMadeUpDate
	f[19] = sampleAccounts[rng.IntN(len(sampleAccounts))] // Accounts.AccountCategory
	f[22] = strconv.Itoa(rng.IntN(3))                     // Mortgages.NumMortCharges
	f[23], f[24], f[25] = f[22], "0", "0"                 // Outstanding, PartSatisfied, Satisfied
	f[26] = sampleSIC[rng.IntN(len(sampleSIC))]           // SICCode.SicText_1
	if rng.IntN(4) == 0 {
		f[27] = sampleSIC[rng.IntN(len(sampleSIC))] // SICCode.SicText_2
	}
	f[30], f[31] = "0", "0"                                 // LimitedPartnerships
	f[32] = "http://business.data.gov.uk/id/company/" + num // URI
	if rng.IntN(5) == 0 {
		f[33] = sampleDate(rng, 1990, 2025) // PreviousName_1.CONDATE
		f[34] = sampleWords[rng.IntN(len(sampleWords))] + " LIMITED"
	}
	f[53] = sampleDate(rng, 2026, 2027) // ConfStmtNextDueDate
	f[54] = sampleDate(rng, 2025, 2026) // ConfStmtLastMadeUpDate
}
