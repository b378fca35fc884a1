package bulk

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Encoding is the character encoding a bulk file is read in. Whatever it
// is, a Record holds valid UTF-8 only.
type Encoding int

const (
	// UTF8 is the encoding of the Free Company Data Product. Invalid UTF-8
	// is an *EncodingError.
	UTF8 Encoding = iota
	// Latin1 reads each byte as one character of ISO-8859-1, with bytes
	// 0x80 to 0x9F read as Windows-1252 (€, ’, “ ...), as the WHATWG
	// encoding standard reads the label "latin1": a file saved as
	// "Latin-1" by a spreadsheet is Windows-1252 in practice. The five
	// bytes Windows-1252 leaves undefined are an *EncodingError.
	Latin1
)

// String is the encoding's name as --encoding spells it.
func (e Encoding) String() string {
	if e == Latin1 {
		return "latin1"
	}
	return "utf-8"
}

// ParseEncoding reads an encoding name: utf-8 (utf8), or latin1
// (iso-8859-1, windows-1252, cp1252), in any case.
func ParseEncoding(name string) (Encoding, error) {
	switch strings.ToLower(name) {
	case "utf-8", "utf8":
		return UTF8, nil
	case "latin1", "latin-1", "iso-8859-1", "iso8859-1", "windows-1252", "cp1252":
		return Latin1, nil
	}
	return UTF8, fmt.Errorf("unknown encoding %q: want utf-8 or latin1", name)
}

// ErrEncoding is wrapped by every *EncodingError.
var ErrEncoding = errors.New("text not in the file's encoding")

// EncodingError is a byte that is not text in the file's encoding. It is
// fatal: the rows after it are in the same encoding, and none may be stored
// as invalid text. The rows before it are good.
type EncodingError struct {
	Line     int64 // physical line of the byte (the header is line 1)
	Column   int   // 1-based byte offset of it in that line
	Byte     byte
	Encoding Encoding
}

func (e *EncodingError) Error() string {
	if e.Encoding == Latin1 {
		return fmt.Sprintf("line %d, column %d: byte 0x%02X is no character in latin1 (Windows-1252)", e.Line, e.Column, e.Byte)
	}
	return fmt.Sprintf("line %d, column %d: invalid UTF-8 (byte 0x%02X): the Free Company Data Product is UTF-8", e.Line, e.Column, e.Byte)
}

func (e *EncodingError) Unwrap() error { return ErrEncoding }

// encodingError locates the byte at raw[i] of a row whose first byte is on
// physical line firstLine.
func encodingError(raw []byte, i int, firstLine int64, enc Encoding) *EncodingError {
	before := raw[:i]
	return &EncodingError{
		Line:     firstLine + int64(bytes.Count(before, []byte{'\n'})),
		Column:   i - bytes.LastIndexByte(before, '\n'),
		Byte:     raw[i],
		Encoding: enc,
	}
}

// firstInvalidUTF8 returns the index of the first byte of raw that does not
// start a valid UTF-8 sequence, or -1.
func firstInvalidUTF8(raw []byte) int {
	for i := 0; i < len(raw); {
		if raw[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// windows1252 maps bytes 0x80 to 0x9F; 0 marks the five it leaves undefined.
var windows1252 = [32]rune{
	'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
}

// firstUndefinedLatin1 returns the index of the first byte of raw Latin1
// cannot read, or -1.
func firstUndefinedLatin1(raw []byte) int {
	for i, c := range raw {
		if c >= 0x80 && c < 0xA0 && windows1252[c-0x80] == 0 {
			return i
		}
	}
	return -1
}

// fromLatin1 converts s, checked by firstUndefinedLatin1, to UTF-8.
func fromLatin1(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < utf8.RuneSelf:
			b.WriteByte(c)
		case c < 0xA0:
			b.WriteRune(windows1252[c-0x80])
		default:
			b.WriteRune(rune(c))
		}
	}
	return b.String()
}

// SetEncoding sets the encoding of the rows Next reads (UTF8 until set).
// The header is read before it can be set; its names are ASCII.
func (r *Reader) SetEncoding(e Encoding) { r.enc = e }

// decode checks the bytes of a row starting on physical line firstLine in
// the reader's encoding and, for Latin1, converts fields to UTF-8.
func (r *Reader) decode(raw []byte, firstLine int64, fields []string) error {
	if r.enc == UTF8 {
		if utf8.Valid(raw) { // the fast path: a word of ASCII at a time
			return nil
		}
		return encodingError(raw, firstInvalidUTF8(raw), firstLine, UTF8)
	}
	if i := firstUndefinedLatin1(raw); i >= 0 {
		return encodingError(raw, i, firstLine, Latin1)
	}
	for i, f := range fields {
		fields[i] = fromLatin1(f)
	}
	return nil
}
