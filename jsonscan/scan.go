// Package jsonscan walks a JSON object in place: a small validating
// scanner that hands out each member's raw key and value as sub-slices.
// encoding/json scans a document twice (validate, then decode), copies
// every json.RawMessage and builds values through reflection; the stream's
// envelope and the company profile it carries are read through this
// instead, which keeps decoding well above the stream's peak rate on a
// small box. It accepts exactly the documents json.Valid accepts
// (stream.FuzzDecode checks the two against each other).
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
	"unsafe"
)

// ErrSyntax is returned for a document that is not valid JSON.
var ErrSyntax = errors.New("invalid JSON")

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// Object walks the object that fills b (white space around it allowed)
// and calls f for each member with its raw key (without quotes, escapes
// left as they are: an escaped key never matches a plain name) and its raw
// value. It validates every value.
func Object(b []byte, f func(key, value []byte)) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ErrSyntax
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		if skipWS(b, i+1) != len(b) {
			return ErrSyntax
		}
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return ErrSyntax
		}
		end, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : end-1]
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return ErrSyntax
		}
		i = skipWS(b, i+1)
		vend, err := skipValue(b, i, 1)
		if err != nil {
			return err
		}
		f(key, b[i:vend])
		i = skipWS(b, vend)
		if i >= len(b) {
			return ErrSyntax
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			if skipWS(b, i+1) != len(b) {
				return ErrSyntax
			}
			return nil
		default:
			return ErrSyntax
		}
	}
}

// Array walks the array that fills b (white space around it allowed) and
// calls f for each raw element. It validates every element.
func Array(b []byte, f func(value []byte)) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return ErrSyntax
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		if skipWS(b, i+1) != len(b) {
			return ErrSyntax
		}
		return nil
	}
	for {
		end, err := skipValue(b, i, 1)
		if err != nil {
			return err
		}
		f(b[i:end])
		i = skipWS(b, end)
		if i >= len(b) {
			return ErrSyntax
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			if skipWS(b, i+1) != len(b) {
				return ErrSyntax
			}
			return nil
		default:
			return ErrSyntax
		}
	}
}

// Text decodes v, a raw JSON string value as Object hands out; false when v
// is not a string. A string without escapes, and valid UTF-8, is not
// copied: the result shares v's memory, so v must not change while it is in
// use. Others are decoded as encoding/json does (invalid UTF-8 becomes
// U+FFFD).
func Text(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return unsafe.String(unsafe.SliceData(in), len(in)), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// IsNull reports whether v is the literal null.
func IsNull(v []byte) bool { return string(v) == "null" }

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, ErrSyntax
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		return skipComposite(b, i, depth)
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return 0, ErrSyntax
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, ErrSyntax
	}
	return i + len(lit), nil
}

func skipComposite(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, ErrSyntax
	}
	closer := byte('}')
	obj := b[i] == '{'
	if !obj {
		closer = ']'
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, nil
	}
	for {
		if obj {
			if i >= len(b) || b[i] != '"' {
				return 0, ErrSyntax
			}
			end, err := skipString(b, i)
			if err != nil {
				return 0, err
			}
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, ErrSyntax
			}
			i = skipWS(b, i+1)
		}
		end, err := skipValue(b, i, depth+1)
		if err != nil {
			return 0, err
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return 0, ErrSyntax
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case closer:
			return i + 1, nil
		default:
			return 0, ErrSyntax
		}
	}
}

// skipString returns the index just past the string whose quote is b[i].
func skipString(b []byte, i int) (int, error) {
	i++
	for i < len(b) {
		// Fast run over ordinary bytes.
		for i < len(b) && !stringSpecial[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return 0, ErrSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, ErrSyntax
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, ErrSyntax
					}
				}
				i += 6
			default:
				return 0, ErrSyntax
			}
		case c < 0x20:
			return 0, ErrSyntax
		default:
			i++
		}
	}
	return 0, ErrSyntax
}

// stringSpecial marks the bytes that end a run of ordinary string bytes.
var stringSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber follows the JSON number grammar exactly.
func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, ErrSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, ErrSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, ErrSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}
