package bulk

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// WriteSample writes a synthetic bulk file of rows rows to w: the real
// header (HeaderLine), every field double-quoted, CRLF line endings, about 7%
// of rows "Active - Proposal to Strike off", and field lengths like the real
// file's (about 470 bytes a row). Like the real file it is in CompanyName
// order (byte order), so its company numbers come in no order: each is a
// distinct number of 1..rows, placed by a seeded permutation. The same seed
// writes the same file. It is for benchmarks and demos.
//
// Memory stays constant whatever rows is: names are drawn from a fixed,
// sorted list of stems, row i taking stem i*stems/rows, and only the few rows
// that share a stem are held, to be written in name order.
func WriteSample(w io.Writer, rows int, seed int64) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	perm := newPermutation(uint64(rows), uint64(seed))
	if _, err := bw.WriteString(HeaderLine + "\r\n"); err != nil {
		return fmt.Errorf("write sample header: %w", err)
	}
	stems := sampleStems()
	c := standardColumns
	var group [][]string // the rows of one stem, reused
	for i := 0; i < rows; {
		stem := i * len(stems) / rows
		n := 0
		for ; i+n < rows && (i+n)*len(stems)/rows == stem; n++ {
			if n == len(group) {
				group = append(group, make([]string, standardWidth))
			}
			f := group[n]
			for j := range f {
				f[j] = ""
			}
			sampleRow(rng, stems[stem], f, &c)
		}
		rowsOfStem := group[:n]
		slices.SortStableFunc(rowsOfStem, func(a, b []string) int { return strings.Compare(a[c.name], b[c.name]) })
		for _, f := range rowsOfStem {
			num := sampleNumber(f[c.number], perm.at(uint64(i)))
			f[c.number] = num
			writeSampleRow(bw, f)
			i++
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write sample row %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write sample: %w", err)
	}
	return nil
}

func writeSampleRow(bw *bufio.Writer, f []string) {
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
	bw.WriteString("\r\n")
}

// sampleStems returns every "WORD TRADE" and "WORD WORD TRADE" name stem,
// sorted: about 50,000.
func sampleStems() []string {
	stems := make([]string, 0, len(sampleWords)*(len(sampleWords)+1)*len(sampleTrades))
	for _, w := range sampleWords {
		for _, t := range sampleTrades {
			stems = append(stems, w+" "+t)
			for _, w2 := range sampleWords {
				stems = append(stems, w+" "+w2+" "+t)
			}
		}
	}
	slices.Sort(stems)
	return stems
}

// sampleNumber is the company number n+1 (0-based n) with the prefix
// sampleRow chose ("SC", "NI", "OC" or none), eight characters.
func sampleNumber(prefix string, n uint64) string {
	num := strconv.FormatUint(n+1, 10)
	num = prefix + strings.Repeat("0", max(0, 8-len(prefix)-len(num))) + num
	if len(num) > 8 {
		num = num[len(num)-8:]
	}
	return num
}

// permutation is a seeded bijection of 0..n-1 in constant memory: a
// four-round Feistel network over the smallest even power of two >= n,
// walking the cycle until the value falls below n.
type permutation struct {
	n, half uint64 // half: bits of each Feistel half
	keys    [4]uint64
}

func newPermutation(n, seed uint64) *permutation {
	p := &permutation{n: n, half: 1}
	for uint64(1)<<(2*p.half) < n {
		p.half++
	}
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	for i := range p.keys {
		p.keys[i] = rng.Uint64()
	}
	return p
}

func (p *permutation) at(i uint64) uint64 {
	mask := uint64(1)<<p.half - 1
	for {
		l, r := i>>p.half, i&mask
		for _, k := range p.keys {
			x := (r ^ k) * 0x9e3779b97f4a7c15
			l, r = r, l^((x^x>>29)&mask)
		}
		i = l<<p.half | r
		if i < p.n {
			return i
		}
	}
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

// sampleRow fills f (blank) with a row whose name starts with stem. The
// number field holds only the number's prefix: WriteSample numbers the row
// once it knows its place.
func sampleRow(rng *rand.Rand, stem string, f []string, c *columns) {
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

	name := stem
	if rng.IntN(200) == 0 {
		name += ` "` + sampleWords[rng.IntN(len(sampleWords))] + `"`
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
	f[c.number] = prefix
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
	f[30], f[31] = "0", "0" // LimitedPartnerships
	if rng.IntN(5) == 0 {
		f[33] = sampleDate(rng, 1990, 2025) // PreviousName_1.CONDATE
		f[34] = sampleWords[rng.IntN(len(sampleWords))] + " LIMITED"
	}
	f[53] = sampleDate(rng, 2026, 2027) // ConfStmtNextDueDate
	f[54] = sampleDate(rng, 2025, 2026) // ConfStmtLastMadeUpDate
}
