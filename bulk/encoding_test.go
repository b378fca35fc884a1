package bulk_test

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/matryer/is"

	"github.com/chwatch/chwatch/bulk"
)

// withName returns sample rows (header on line 1) with prefix put in front
// of the name of the row on physical line 3.
func withName(t *testing.T, prefix string) string {
	t.Helper()
	lines := strings.SplitAfter(sampleRows(t, 3), "\r\n") // header, 3 rows, ""
	lines[2] = `"` + prefix + lines[2][1:]
	return strings.Join(lines, "")
}

func TestEncoding(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string        // put in front of the name on line 3
		enc      bulk.Encoding // how to read
		wantName string        // the name's prefix as read, or
		badLine  int64         // the physical line named in the error
	}{
		{name: "UTF8", prefix: "CAFÉ ", enc: bulk.UTF8, wantName: "CAFÉ "},
		{name: "Latin1AsUTF8", prefix: "CAF\xc9 ", enc: bulk.UTF8, badLine: 3},
		{name: "Latin1AsUTF8SecondLineOfARow", prefix: "X\nCAF\xc9 ", enc: bulk.UTF8, badLine: 4},
		{name: "TruncatedUTF8", prefix: "CAF\xc3", enc: bulk.UTF8, badLine: 3},
		{name: "Latin1", prefix: "CAF\xc9 ", enc: bulk.Latin1, wantName: "CAFÉ "},
		{name: "Windows1252Quote", prefix: "O\x92BRIEN ", enc: bulk.Latin1, wantName: "O’BRIEN "},
		{name: "PoundSign", prefix: "\xa3 ", enc: bulk.Latin1, wantName: "£ "},
		{name: "UndefinedInWindows1252", prefix: "A\x81 ", enc: bulk.Latin1, badLine: 3},
		{name: "UTF8ReadAsLatin1IsMojibakeNotInvalid", prefix: "CAFÉ ", enc: bulk.Latin1, wantName: "CAFÃ‰ "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			r := mustReader(t, strings.NewReader(withName(t, tt.prefix)))
			r.SetEncoding(tt.enc)
			first, err := r.Next()
			is.NoErr(err)
			is.Equal(first.Line, int64(2))
			rec, err := r.Next()
			if tt.badLine > 0 {
				// Fatal, not a bad row to skip: the rows after it are in the
				// same encoding, and nothing is stored in the wrong one.
				var re *bulk.RowError
				is.True(!errors.As(err, &re))
				is.True(errors.Is(err, bulk.ErrEncoding))
				var ee *bulk.EncodingError
				is.True(errors.As(err, &ee))
				is.Equal(ee.Line, tt.badLine)
				is.True(strings.Contains(err.Error(), "line "+strconv.FormatInt(tt.badLine, 10)))
				return
			}
			is.NoErr(err)
			is.True(strings.HasPrefix(rec.CompanyName, tt.wantName))
			is.True(utf8.ValidString(rec.CompanyName))
			_, err = r.Next()
			is.NoErr(err)
			_, err = r.Next()
			is.Equal(err, io.EOF)
		})
	}
}

// A bad row's raw text, which goes to the --errors file, is converted too.
func TestEncodingOfBadRowText(t *testing.T) {
	is := is.New(t)
	lines := strings.SplitAfter(sampleRows(t, 1), "\r\n")
	in := lines[0] + "\"CAF\xc9\",\"x\"\r\n"
	r := mustReader(t, strings.NewReader(in))
	r.SetEncoding(bulk.Latin1)
	_, err := r.Next()
	var re *bulk.RowError
	is.True(errors.As(err, &re))
	is.Equal(re.Raw, `"CAFÉ","x"`)
}

func TestParseEncoding(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]bulk.Encoding{"utf-8": bulk.UTF8, "UTF8": bulk.UTF8, "latin1": bulk.Latin1, "ISO-8859-1": bulk.Latin1, "windows-1252": bulk.Latin1, "cp1252": bulk.Latin1} {
		got, err := bulk.ParseEncoding(in)
		is.NoErr(err)
		is.Equal(got, want)
	}
	_, err := bulk.ParseEncoding("ebcdic")
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "latin1"))
}
