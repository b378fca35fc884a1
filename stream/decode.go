package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/chwatch/chwatch/jsonscan"
)

// Reject reasons.
const (
	ReasonNotJSON     = "not_json"
	ReasonOversized   = "oversized"
	ReasonNoTimepoint = "no_timepoint"
	// ReasonImplausibleTimepoint: a timepoint far beyond the previous one
	// of its connection (see Config.MaxTimepointJump), or the largest
	// int64, after which nothing could be resumed.
	ReasonImplausibleTimepoint = "implausible_timepoint"
)

// Sentinel errors returned by Decode alongside a Reject.
var (
	ErrNotJSON     = errors.New("line is not a JSON object")
	ErrNoTimepoint = errors.New("line has no usable event.timepoint")
)

// excerptBytes is how much of a rejected line is kept.
const excerptBytes = 200

// envelope holds the raw values of the members of a stream line Decode
// reads. Every one is checked on its own, so that one member of the wrong
// type cannot hide a usable timepoint. Keys match exactly (a key written
// with escapes, or in another case, is an unknown field).
type envelope struct {
	resourceKind, resourceID, resourceURI, data, event []byte
}

type eventField struct {
	timepoint, publishedAt, typ, fieldsChanged []byte
}

// Decode decodes one stream line (without its newline). It always returns an
// Item holding an Event or a Reject. The error is non-nil exactly when the
// item is a Reject, and wraps ErrNotJSON or ErrNoTimepoint. An Event whose
// envelope is unusable beyond its timepoint carries the reason in Invalid.
// Decode keeps no reference to line; Event.Data shares Event.Raw's memory.
func Decode(line []byte, received time.Time) (Item, error) {
	raw := make([]byte, len(line))
	copy(raw, line)
	var env envelope
	err := jsonscan.Object(raw, func(key, value []byte) {
		switch string(key) {
		case "resource_kind":
			env.resourceKind = value
		case "resource_id":
			env.resourceID = value
		case "resource_uri":
			env.resourceURI = value
		case "data":
			env.data = value
		case "event":
			env.event = value
		}
	})
	if err != nil {
		return rejectItem(line, ReasonNotJSON, received, recoverTimepoint(tailOf(line))),
			fmt.Errorf("decode stream line: %w", ErrNotJSON)
	}
	var ev eventField
	if !isObject(env.event) {
		return rejectItem(line, ReasonNoTimepoint, received, 0),
			fmt.Errorf("decode stream line: %w: event is missing or not an object", ErrNoTimepoint)
	}
	_ = jsonscan.Object(env.event, func(key, value []byte) {
		switch string(key) {
		case "timepoint":
			ev.timepoint = value
		case "published_at":
			ev.publishedAt = value
		case "type":
			ev.typ = value
		case "fields_changed":
			ev.fieldsChanged = value
		}
	})
	tp, ok := parseTimepoint(ev.timepoint)
	if !ok {
		return rejectItem(line, ReasonNoTimepoint, received, 0),
			fmt.Errorf("decode stream line: %w: event.timepoint %.40q is not a positive integer", ErrNoTimepoint, ev.timepoint)
	}

	e := &Event{Timepoint: tp, Raw: raw, ReceivedAt: received}
	invalid := func(format string, args ...any) {
		if e.Invalid == "" {
			e.Invalid = fmt.Sprintf(format, args...)
		}
	}

	var isString bool
	if e.Type, isString = stringField(ev.typ); !isString || e.Type == "" {
		invalid("event.type is missing or not a string")
	}
	if s, ok := stringField(ev.publishedAt); !ok {
		invalid("event.published_at is missing or not a string")
	} else if t, err := parsePublished(s); err != nil {
		invalid("event.published_at %.40q is not a time", s)
	} else {
		e.PublishedAt = t
	}
	if len(ev.fieldsChanged) > 0 && !isNull(ev.fieldsChanged) {
		if err := json.Unmarshal(ev.fieldsChanged, &e.FieldsChanged); err != nil {
			e.FieldsChanged = nil
			invalid("event.fields_changed is not a list of strings")
		}
	}
	if !optionalString(env.resourceKind, &e.ResourceKind) {
		invalid("resource_kind is not a string")
	}
	if !optionalString(env.resourceURI, &e.ResourceURI) {
		invalid("resource_uri is not a string")
	}
	if !optionalString(env.resourceID, &e.ResourceID) {
		invalid("resource_id is not a string")
	}
	if len(env.data) > 0 && !isNull(env.data) {
		e.Data = json.RawMessage(env.data)
	}
	switch e.Type {
	case "changed":
		if e.ResourceID == "" {
			invalid("resource_id is missing for a changed event")
		}
		if e.Data == nil {
			invalid("data is missing for a changed event")
		} else if !isObject(e.Data) {
			invalid("data is not an object")
		}
	case "deleted":
		if e.ResourceID == "" {
			invalid("resource_id is missing for a deleted event")
		}
	}
	return Item{Event: e}, nil
}

func rejectItem(line []byte, reason string, received time.Time, tp int64) Item {
	n := min(len(line), excerptBytes)
	ex := make([]byte, n)
	copy(ex, line[:n])
	return Item{Reject: &Reject{
		Reason:     reason,
		Bytes:      int64(len(line)),
		Excerpt:    ex,
		Timepoint:  tp,
		ReceivedAt: received,
	}}
}

func isNull(v []byte) bool { return string(v) == "null" }

func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// stringField decodes a JSON string; it reports false when v is absent or
// not a string.
func stringField(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	// Fast path: no escapes.
	if bytes.IndexByte(v[1:len(v)-1], '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// optionalString fills dst when v is a string; absent and null are fine.
func optionalString(v []byte, dst *string) bool {
	if len(v) == 0 || isNull(v) {
		return true
	}
	s, ok := stringField(v)
	*dst = s
	return ok
}

// parseTimepoint accepts only a plain positive JSON integer.
func parseTimepoint(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// publishedLayouts are tried in order: the documented form (no zone, no
// fraction, read as UTC), then the same with a fraction, then RFC 3339.
var publishedLayouts = []string{
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.999999999",
	time.RFC3339Nano,
}

func parsePublished(s string) (time.Time, error) {
	var err error
	for _, layout := range publishedLayouts {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// tailBytes bounds the tail kept to recover a timepoint from a line that
// cannot be decoded whole.
const tailBytes = 4096

func tailOf(line []byte) []byte {
	if len(line) > tailBytes {
		return line[len(line)-tailBytes:]
	}
	return line
}

var timepointKey = []byte(`"timepoint"`)

// recoverTimepoint finds the last `"timepoint": N` in tail whose number is
// complete (followed by a comma, a closing brace or white space). The event
// object comes last in a line, so its timepoint is the last one. It returns 0
// when none is found.
func recoverTimepoint(tail []byte) int64 {
	for len(tail) > 0 {
		i := bytes.LastIndex(tail, timepointKey)
		if i < 0 {
			return 0
		}
		rest := skipSpace(tail[i+len(timepointKey):])
		if len(rest) > 0 && rest[0] == ':' {
			rest = skipSpace(rest[1:])
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if j > 0 && j < len(rest) && (rest[j] == ',' || rest[j] == '}' || isSpace(rest[j])) {
				if n, ok := parseTimepoint(rest[:j]); ok {
					return n
				}
			}
		}
		tail = tail[:i]
	}
	return 0
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func skipSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}
