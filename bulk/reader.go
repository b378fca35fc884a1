// Package bulk reads the Free Company Data Product as a stream of company
// records in the API's vocabulary.
//
// The product is a CSV file (BasicCompanyDataAsOneFile-YYYY-MM-01.csv, or its
// parts) usually delivered zipped. Open returns the CSV stream inside a .csv or
// .zip without unpacking it; NewReader checks the header and Next returns one
// Record per row, mapped to the API's enums (see MapStatus, MapCategory,
// MapSIC and MapJurisdiction) and its dates to ISO. The package never
// touches a database.
package bulk

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// HeaderLine is the header of the bulk file, verbatim, including the leading
// spaces of some names.
const HeaderLine = "CompanyName, CompanyNumber,RegAddress.CareOf,RegAddress.POBox,RegAddress.AddressLine1, RegAddress.AddressLine2,RegAddress.PostTown,RegAddress.County,RegAddress.Country,RegAddress.PostCode,CompanyCategory,CompanyStatus,CountryOfOrigin,DissolutionDate,IncorporationDate,Accounts.AccountRefDay,Accounts.AccountRefMonth,Accounts.NextDueDate,Accounts.LastMadeUpDate,Accounts.AccountCategory,Returns.NextDueDate,Returns.LastMadeUpDate,Mortgages.NumMortCharges,Mortgages.NumMortOutstanding,Mortgages.NumMortPartSatisfied,Mortgages.NumMortSatisfied,SICCode.SicText_1,SICCode.SicText_2,SICCode.SicText_3,SICCode.SicText_4,LimitedPartnerships.NumGenPartners,LimitedPartnerships.NumLimPartners,URI,PreviousName_1.CONDATE, PreviousName_1.CompanyName, PreviousName_2.CONDATE, PreviousName_2.CompanyName,PreviousName_3.CONDATE, PreviousName_3.CompanyName,PreviousName_4.CONDATE, PreviousName_4.CompanyName,PreviousName_5.CONDATE, PreviousName_5.CompanyName,PreviousName_6.CONDATE, PreviousName_6.CompanyName,PreviousName_7.CONDATE, PreviousName_7.CompanyName,PreviousName_8.CONDATE, PreviousName_8.CompanyName,PreviousName_9.CONDATE, PreviousName_9.CompanyName,PreviousName_10.CONDATE, PreviousName_10.CompanyName,ConfStmtNextDueDate, ConfStmtLastMadeUpDate"

// ErrNotBulkFile means the stream is not the Free Company Data Product: it is
// empty or its header lacks a column this package reads.
var ErrNotBulkFile = errors.New("not a Free Company Data Product file")

// Record is one company in the API's vocabulary, with strings as they are
// stored in SQLite.
type Record struct {
	// Line is the 1-based physical line where the row starts (the header is
	// line 1). Quoted fields may hold newlines, so it is not the row number.
	Line int64
	// Offset is the byte offset in the CSV stream just after this row. To
	// resume after this row, keep Reader.Line too (see NewReaderAt).
	Offset int64

	CompanyNumber string
	CompanyName   string
	// CompanyStatus and CompanyStatusDetail are the API's company_status and
	// company_status_detail (see MapStatus).
	CompanyStatus       string
	CompanyStatusDetail string
	// CompanyType is the API's company type (see MapCategory).
	CompanyType string
	// Jurisdiction is the API's jurisdiction (see MapJurisdiction).
	Jurisdiction string
	// DateOfCreation (IncorporationDate) and DateOfCessation
	// (DissolutionDate) are YYYY-MM-DD, or "" when blank.
	DateOfCreation  string
	DateOfCessation string
	// SICCodes holds the codes of SICCode.SicText_1..4, in order, without
	// descriptions; nil when there are none.
	SICCodes []string

	// The registered office address. RegAddress.CareOf ("c/o NAME") and
	// RegAddress.POBox ("PO Box N") are folded into AddressLine1, in that
	// order and joined with ", ", ahead of RegAddress.AddressLine1.
	// PostTown is Locality and County is Region.
	AddressLine1 string
	AddressLine2 string
	Locality     string
	Region       string
	PostalCode   string
	Country      string

	// Unknown lists the texts no mapping table knew, as "status:TEXT",
	// "category:TEXT", "sic:TEXT" or "country_of_origin:TEXT". Unknown status
	// and category texts are also kept verbatim in their fields; unknown SIC
	// texts are left out of SICCodes.
	Unknown []string
}

// RowError is a row the reader could not turn into a Record. The reader
// stays usable after it.
type RowError struct {
	Line   int64  // physical line where the row starts
	Reason string // what is wrong, e.g. `bad IncorporationDate "31/02/2020"`
	Raw    string // the row's first 200 bytes, as read
}

func (e *RowError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// column indexes of the fields the reader uses.
type columns struct {
	name, number, careOf, poBox, line1, line2, town, county, country, postCode,
	category, status, origin, dissolution, incorporation int
	sic [4]int
}

// columnNames lists, in the order of the columns struct, the header names the
// reader needs.
var columnNames = []string{
	"CompanyName", "CompanyNumber", "RegAddress.CareOf", "RegAddress.POBox",
	"RegAddress.AddressLine1", "RegAddress.AddressLine2", "RegAddress.PostTown",
	"RegAddress.County", "RegAddress.Country", "RegAddress.PostCode",
	"CompanyCategory", "CompanyStatus", "CountryOfOrigin", "DissolutionDate",
	"IncorporationDate",
	"SICCode.SicText_1", "SICCode.SicText_2", "SICCode.SicText_3", "SICCode.SicText_4",
}

func (c *columns) ptrs() []*int {
	return []*int{
		&c.name, &c.number, &c.careOf, &c.poBox, &c.line1, &c.line2, &c.town,
		&c.county, &c.country, &c.postCode, &c.category, &c.status, &c.origin,
		&c.dissolution, &c.incorporation, &c.sic[0], &c.sic[1], &c.sic[2], &c.sic[3],
	}
}

// parseHeader finds the needed columns in a header record by trimmed name.
func parseHeader(header []string) (columns, error) {
	idx := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := idx[h]; !dup {
			idx[h] = i
		}
	}
	var c columns
	var missing []string
	for i, p := range c.ptrs() {
		j, ok := idx[columnNames[i]]
		if !ok {
			missing = append(missing, columnNames[i])
			continue
		}
		*p = j
	}
	if missing != nil {
		return c, fmt.Errorf("%w: header lacks %s", ErrNotBulkFile, strings.Join(missing, ", "))
	}
	return c, nil
}

// standardColumns are the columns of HeaderLine.
var standardColumns, standardWidth = func() (columns, int) {
	h := strings.Split(HeaderLine, ",")
	c, err := parseHeader(h)
	if err != nil {
		panic(err)
	}
	return c, len(h)
}()

// Reader reads Records from the CSV stream of a bulk file. It is not safe
// for concurrent use.
type Reader struct {
	csv      *csv.Reader
	in       *window
	cols     columns
	width    int   // fields per row
	base     int64 // stream offset where the csv.Reader started
	lineBase int64 // physical lines before the csv.Reader started
	offset   int64 // stream offset after the last row
	lines    int64 // physical lines consumed after the last row
	enc      Encoding
	row      Row // Next's
}

// NewReader checks the header of a bulk CSV stream and returns a Reader
// positioned on the first row. Header names are trimmed and columns are found
// by name, so a reordered or widened file still reads. A stream that is empty
// or lacks a needed column is refused with an error wrapping ErrNotBulkFile
// that names the missing columns.
func NewReader(r io.Reader) (*Reader, error) {
	rd := newReader(r, 0, 0)
	header, err := rd.csv.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: empty stream", ErrNotBulkFile)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("%w: header: %v", ErrNotBulkFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read bulk header: %w", err)
	}
	if rd.cols, err = parseHeader(header); err != nil {
		return nil, err
	}
	rd.width = len(header)
	rd.advance()
	return rd, nil
}

// NewReaderAt returns a Reader for a stream already positioned just after a
// row, to resume an interrupted read. offset is the byte offset of that
// position in the whole CSV stream (Record.Offset or Reader.Offset) and line
// the physical lines consumed up to it (Reader.Line); they keep Record.Line,
// Record.Offset and RowError.Line true to the whole file. The caller positions
// r: Seek a .csv file, or discard offset bytes of a zip entry with
// io.CopyN(io.Discard, rc, offset).
//
// There is no header to read, so the rows are taken to have the layout of
// HeaderLine, the layout of every published file. Resume only a file whose
// header NewReader accepted and whose HasStandardLayout was true.
func NewReaderAt(r io.Reader, offset int64, line int64) *Reader {
	rd := newReader(r, offset, line)
	rd.cols, rd.width = standardColumns, standardWidth
	return rd
}

func newReader(r io.Reader, offset, line int64) *Reader {
	w := &window{r: r}
	c := csv.NewReader(w)
	c.FieldsPerRecord = -1 // counted by Next, so a short row is a RowError
	c.ReuseRecord = true
	c.LazyQuotes = false
	return &Reader{csv: c, in: w, base: offset, lineBase: line, offset: offset, lines: line}
}

// HasStandardLayout reports whether the file's columns are where HeaderLine
// puts them, so that NewReaderAt can resume it.
func (r *Reader) HasStandardLayout() bool {
	return r.cols == standardColumns && r.width == standardWidth
}

// Offset returns the bytes of the CSV stream consumed so far, counted from
// the start of the whole stream, after the last row Next returned.
func (r *Reader) Offset() int64 { return r.offset }

// Line returns the physical lines consumed so far, after the last row Next
// returned; pass it with Offset to NewReaderAt.
func (r *Reader) Line() int64 { return r.lines }

// advance moves Offset and Line past the bytes the csv.Reader consumed and
// returns those bytes (valid until the next read).
func (r *Reader) advance() []byte {
	end := r.base + r.csv.InputOffset()
	raw := r.in.take(end - r.base)
	r.lines += int64(bytes.Count(raw, []byte{'\n'}))
	r.offset = end
	return raw
}

// Next returns the next Record. A row that cannot be read or mapped gives a
// *RowError, after which Next may be called again; the end of the stream
// gives io.EOF. A byte that is not text in the reader's encoding (see
// SetEncoding) gives an *EncodingError, and any other error is from the
// underlying reader: both are fatal. Next is Map of ReadRow.
func (r *Reader) Next() (Record, error) {
	if err := r.ReadRow(&r.row); err != nil {
		return Record{}, err
	}
	return r.Map(&r.row)
}

// Row is a row as ReadRow parsed it, before Map turns it into a Record:
// parsing the CSV and mapping its fields take about the same time, so an
// import does them in two goroutines. A Row is reused: ReadRow overwrites
// what it holds.
type Row struct {
	fields []string
	head   []byte // the row's first bytes, for a RowError (see rawHead)
	line   int64  // physical line where the row starts
	offset int64  // stream offset after the row
	bad    *RowError
}

// Offset is the stream offset after the row, as Reader.Offset was then.
func (row *Row) Offset() int64 { return row.offset }

// ReadRow parses the next row into row. It returns io.EOF at the end of
// the stream, and an *EncodingError or the underlying reader's error, both
// fatal; a row the CSV parser refused is not an error here but row's, for
// Map to return.
func (r *Reader) ReadRow(row *Row) error {
	fields, err := r.csv.Read()
	if err == io.EOF {
		return io.EOF
	}
	// csv.Reader returns its *ParseError unwrapped; a type assertion, unlike
	// errors.As, costs no allocation per row.
	pe, _ := err.(*csv.ParseError)
	if err != nil && pe == nil {
		return fmt.Errorf("read bulk file: %w", err)
	}
	firstLine := r.lines + 1 // the row's bytes start after the last line consumed
	raw := r.advance()
	// Decoded before anything else reads the row, so that no text in the
	// wrong encoding goes anywhere, not even into a RowError.
	if err := r.decode(raw, firstLine, fields); err != nil {
		return err
	}
	row.offset, row.bad = r.offset, nil
	if pe != nil {
		reason := fmt.Sprintf("%v (at line %d, column %d)", pe.Err, r.lineBase+int64(pe.Line), pe.Column)
		row.bad = &RowError{Line: r.lineBase + int64(pe.StartLine), Reason: reason, Raw: r.rawText(rawHead(raw))}
		return nil
	}
	line, _ := r.csv.FieldPos(0)
	row.line = r.lineBase + int64(line)
	row.fields = append(row.fields[:0], fields...)
	row.head = append(row.head[:0], rawHead(raw)...)
	return nil
}

// Map turns a row ReadRow parsed into a Record, or a *RowError. It reads
// nothing ReadRow changes, so another goroutine may call it meanwhile.
func (r *Reader) Map(row *Row) (Record, error) {
	if row.bad != nil {
		return Record{}, row.bad
	}
	rec := Record{Line: row.line, Offset: row.offset}
	if reason := r.fill(&rec, row.fields); reason != "" {
		return Record{}, &RowError{Line: rec.Line, Reason: reason, Raw: r.rawText(row.head)}
	}
	return rec, nil
}

// fill maps fields into rec, or returns why the row is bad.
func (r *Reader) fill(rec *Record, f []string) string {
	if len(f) != r.width {
		return fmt.Sprintf("got %d fields, want %d", len(f), r.width)
	}
	c := &r.cols
	num := trim(f[c.number])
	if num == "" {
		return "empty CompanyNumber"
	}
	if !validNumber(num) {
		return fmt.Sprintf("bad CompanyNumber %q: want 8 letters or digits", num)
	}
	rec.CompanyNumber = num

	// Both dates share one allocation.
	var dates [20]byte
	created, ceased := trim(f[c.incorporation]), trim(f[c.dissolution])
	if created != "" {
		y, m, d, ok := parseDMY(created)
		if !ok {
			return fmt.Sprintf("bad IncorporationDate %q", created)
		}
		putISO(dates[0:10], y, m, d)
	}
	if ceased != "" {
		y, m, d, ok := parseDMY(ceased)
		if !ok {
			return fmt.Sprintf("bad DissolutionDate %q", ceased)
		}
		putISO(dates[10:20], y, m, d)
	}
	if created != "" || ceased != "" {
		s := string(dates[:])
		if created != "" {
			rec.DateOfCreation = s[0:10]
		}
		if ceased != "" {
			rec.DateOfCessation = s[10:20]
		}
	}

	rec.CompanyName = trim(f[c.name])

	status := f[c.status]
	var known bool
	rec.CompanyStatus, rec.CompanyStatusDetail, known = MapStatus(status)
	if !known {
		rec.Unknown = append(rec.Unknown, "status:"+strings.TrimSpace(status))
	}
	category := f[c.category]
	if rec.CompanyType, known = MapCategory(category); !known {
		rec.Unknown = append(rec.Unknown, "category:"+strings.TrimSpace(category))
	}
	origin := f[c.origin]
	if rec.Jurisdiction, known = MapJurisdiction(num, origin); !known {
		rec.Unknown = append(rec.Unknown, "country_of_origin:"+strings.TrimSpace(origin))
	}

	var codes [4]string
	n := 0
	for _, i := range c.sic {
		if code, ok := MapSIC(f[i]); ok {
			codes[n] = code
			n++
		} else if !isNoSIC(f[i]) {
			rec.Unknown = append(rec.Unknown, "sic:"+strings.TrimSpace(f[i]))
		}
	}
	if n > 0 {
		rec.SICCodes = append([]string(nil), codes[:n]...)
	}

	rec.AddressLine1 = foldAddress(f[c.careOf], f[c.poBox], f[c.line1])
	rec.AddressLine2 = trim(f[c.line2])
	rec.Locality = trim(f[c.town])
	rec.Region = trim(f[c.county])
	rec.PostalCode = trim(f[c.postCode])
	rec.Country = trim(f[c.country])
	return ""
}

// trim is strings.TrimSpace with a fast path for the usual field, which
// has no surrounding space.
func trim(s string) string {
	if s == "" || s[0] > ' ' && s[0] < utf8.RuneSelf && s[len(s)-1] > ' ' && s[len(s)-1] < utf8.RuneSelf {
		return s
	}
	return strings.TrimSpace(s)
}

// validNumber reports whether n is 8 ASCII letters or digits.
func validNumber(n string) bool {
	if len(n) != 8 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// foldAddress puts care-of and PO box ahead of the first address line:
// "c/o SMITH & CO, PO Box 12, 1 High Street". Prefixes already present in the
// text are not repeated.
func foldAddress(careOf, poBox, line1 string) string {
	careOf, poBox, line1 = trim(careOf), trim(poBox), trim(line1)
	if careOf == "" && poBox == "" {
		return line1
	}
	parts := make([]string, 0, 3)
	if careOf != "" {
		if !hasPrefixFold(careOf, "c/o") {
			careOf = "c/o " + careOf
		}
		parts = append(parts, careOf)
	}
	if poBox != "" {
		if !hasPrefixFold(poBox, "po box") && !hasPrefixFold(poBox, "p.o.") && !hasPrefixFold(poBox, "pobox") {
			poBox = "PO Box " + poBox
		}
		parts = append(parts, poBox)
	}
	if line1 != "" {
		parts = append(parts, line1)
	}
	return strings.Join(parts, ", ")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// rawText is a row's head (rawHead) in UTF-8, for a row decode accepted.
func (r *Reader) rawText(head []byte) string {
	if r.enc == Latin1 {
		return fromLatin1(string(head))
	}
	return string(head)
}

// rawHead returns the row's bytes without surrounding line breaks, cut to
// at most 200 bytes on a UTF-8 boundary.
func rawHead(raw []byte) []byte {
	raw = bytes.Trim(raw, "\r\n")
	if len(raw) > 200 {
		n := 200
		for n > 0 && !utf8.RuneStart(raw[n]) {
			n--
		}
		raw = raw[:n]
	}
	return raw
}

// window is an io.Reader that keeps the bytes it has passed on and not yet
// taken, so the reader can count a row's line breaks and quote a bad row
// exactly as it was in the file.
type window struct {
	r     io.Reader
	buf   []byte // stream bytes [start, start+len(buf))
	start int64  // stream offset of buf[0], relative to the csv.Reader's start
	taken int    // bytes of buf already taken
}

func (w *window) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.buf = append(w.buf, p[:n]...)
	return n, err
}

// take returns the bytes from the end of the last take up to stream offset
// end. The slice is valid until the next take.
func (w *window) take(end int64) []byte {
	// Drop the bytes taken before, once they dominate, so the buffer stays
	// about the size of a row plus the csv.Reader's read-ahead.
	if w.taken >= 64<<10 && w.taken*2 >= len(w.buf) {
		rest := copy(w.buf, w.buf[w.taken:])
		w.buf = w.buf[:rest]
		w.start += int64(w.taken)
		w.taken = 0
	}
	from, to := w.taken, int(end-w.start)
	w.taken = to
	return w.buf[from:to]
}
