package export

import (
	"testing"

	"github.com/matryer/is"
)

// Every leading character a spreadsheet reads as a formula is neutralised,
// and nothing else is touched.
func TestNeutraliseEveryLeadingCharacter(t *testing.T) {
	is := is.New(t)
	for _, s := range []string{"=1", "+1", "-1", "@A", "\tx", "\rx"} {
		is.Equal(neutralise(s), "'"+s)
	}
	for _, s := range []string{"", "ACME", " =1", "'=1", "1-2"} {
		is.Equal(neutralise(s), s)
	}
}
