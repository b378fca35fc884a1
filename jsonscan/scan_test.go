package jsonscan_test

import (
	"encoding/json"
	"testing"

	"github.com/chwatch/chwatch/jsonscan"
	"github.com/matryer/is"
)

// Text decodes every string as encoding/json does, and refuses what is not
// a string.
func TestText(t *testing.T) {
	tests := []struct {
		raw  string
		ok   bool
		want string
	}{
		{`"plain"`, true, "plain"},
		{`""`, true, ""},
		{`"a \"q\" \u00e9 \n"`, true, "a \"q\" é \n"},
		{"\"caf\xe9\"", true, "caf\uFFFD"},
		{`7`, false, ""},
		{`null`, false, ""},
		{`"open`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			is := is.New(t)
			got, ok := jsonscan.Text([]byte(tt.raw))
			is.Equal(ok, tt.ok)
			is.Equal(got, tt.want)
			if ok {
				var ref string
				is.NoErr(json.Unmarshal([]byte(tt.raw), &ref))
				is.Equal(got, ref) // as encoding/json decodes it
			}
		})
	}
}

// Object and Array hand out raw members and elements, and refuse what
// json.Valid refuses.
func TestObjectAndArray(t *testing.T) {
	is := is.New(t)
	var keys, vals []string
	err := jsonscan.Object([]byte(` {"a":[1,{"b":null}], "c" : "d"} `), func(k, v []byte) {
		keys, vals = append(keys, string(k)), append(vals, string(v))
	})
	is.NoErr(err)
	is.Equal(keys, []string{"a", "c"})
	is.Equal(vals, []string{`[1,{"b":null}]`, `"d"`})

	var elems []string
	is.NoErr(jsonscan.Array([]byte(`[1, "x", {}, []]`), func(v []byte) { elems = append(elems, string(v)) }))
	is.Equal(elems, []string{"1", `"x"`, "{}", "[]"})

	for _, bad := range []string{``, `[`, `{"a":}`, `{"a":1,}`, `[1,]`, `{} x`, `[1] 2`, `{"a":01}`} {
		var err error
		if len(bad) > 0 && bad[0] == '[' {
			err = jsonscan.Array([]byte(bad), func(v []byte) {})
		} else {
			err = jsonscan.Object([]byte(bad), func(k, v []byte) {})
		}
		is.True(err != nil) // refused
		is.True(!json.Valid([]byte(bad)))
	}
}
