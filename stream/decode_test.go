package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestDecode(t *testing.T) {
	recv := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ev := func(event string) string {
		return `{"resource_kind":"company-profile","resource_uri":"/company/01234567","resource_id":"01234567","data":{"company_status":"active"},"event":` + event + `}`
	}
	tests := []struct {
		name      string
		line      string
		reject    string // reason when a Reject is expected
		timepoint int64  // of the Event, or recovered by the Reject
		invalid   string // substring of Event.Invalid; "" means valid
		published time.Time
	}{
		{"Changed", ev(`{"timepoint":47695461,"published_at":"2022-08-02T15:21:06","type":"changed"}`), "", 47695461, "", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"ZoneAndFraction", ev(`{"timepoint":5,"published_at":"2022-08-02T16:21:06.5+01:00","type":"changed"}`), "", 5, "", time.Date(2022, 8, 2, 15, 21, 6, 5e8, time.UTC)},
		{"FractionNoZone", ev(`{"timepoint":5,"published_at":"2022-08-02T15:21:06.250","type":"changed"}`), "", 5, "", time.Date(2022, 8, 2, 15, 21, 6, 25e7, time.UTC)},
		{"OpenEnumType", ev(`{"timepoint":5,"published_at":"2022-08-02T15:21:06","type":"merged"}`), "", 5, "", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"DeletedWithoutData", `{"resource_id":"01234567","event":{"timepoint":9,"published_at":"2022-08-02T15:21:06","type":"deleted"}}`, "", 9, "", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"UnknownFieldsIgnored", `{"x":[1,{"y":null}],"resource_id":"1","data":{"z":1},"event":{"timepoint":9,"published_at":"2022-08-02T15:21:06","type":"changed","new":{"a":1}},"trailing":"ok"}`, "", 9, "", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},

		{"NotJSON", `<html>502 Bad Gateway</html>`, ReasonNotJSON, 0, "", time.Time{}},
		{"TruncatedKeepsTailTimepoint", `{"resource_id":"1","data":{"a":"b"` + `,"event":{"timepoint":42,"type":"changed"}}`, ReasonNotJSON, 42, "", time.Time{}},
		{"TruncatedNumberNotRecovered", `{"resource_id":"1","event":{"timepoint":42`, ReasonNotJSON, 0, "", time.Time{}},
		{"Array", `[1,2,3]`, ReasonNotJSON, 0, "", time.Time{}},
		{"NoEvent", `{"resource_id":"1","data":{}}`, ReasonNoTimepoint, 0, "", time.Time{}},
		{"EventNotObject", `{"resource_id":"1","event":"x"}`, ReasonNoTimepoint, 0, "", time.Time{}},
		{"NoTimepoint", ev(`{"published_at":"2022-08-02T15:21:06","type":"changed"}`), ReasonNoTimepoint, 0, "", time.Time{}},
		{"TimepointString", ev(`{"timepoint":"5","published_at":"2022-08-02T15:21:06","type":"changed"}`), ReasonNoTimepoint, 0, "", time.Time{}},
		{"TimepointZero", ev(`{"timepoint":0,"published_at":"2022-08-02T15:21:06","type":"changed"}`), ReasonNoTimepoint, 0, "", time.Time{}},
		{"TimepointNegative", ev(`{"timepoint":-3,"published_at":"2022-08-02T15:21:06","type":"changed"}`), ReasonNoTimepoint, 0, "", time.Time{}},
		{"TimepointFloat", ev(`{"timepoint":5.5,"published_at":"2022-08-02T15:21:06","type":"changed"}`), ReasonNoTimepoint, 0, "", time.Time{}},
		{"TimepointExponent", ev(`{"timepoint":1e7,"published_at":"2022-08-02T15:21:06","type":"changed"}`), ReasonNoTimepoint, 0, "", time.Time{}},
		{"TimepointOverflow", ev(`{"timepoint":99999999999999999999,"published_at":"2022-08-02T15:21:06","type":"changed"}`), ReasonNoTimepoint, 0, "", time.Time{}},

		{"NoType", ev(`{"timepoint":5,"published_at":"2022-08-02T15:21:06"}`), "", 5, "event.type", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"BadPublishedAt", ev(`{"timepoint":5,"published_at":"yesterday","type":"changed"}`), "", 5, "published_at", time.Time{}},
		{"NoPublishedAt", ev(`{"timepoint":5,"type":"changed"}`), "", 5, "published_at", time.Time{}},
		{"ChangedWithoutData", `{"resource_id":"1","event":{"timepoint":5,"published_at":"2022-08-02T15:21:06","type":"changed"}}`, "", 5, "data is missing", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"ChangedNullData", `{"resource_id":"1","data":null,"event":{"timepoint":5,"published_at":"2022-08-02T15:21:06","type":"changed"}}`, "", 5, "data is missing", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"ChangedDataNotObject", `{"resource_id":"1","data":"x","event":{"timepoint":5,"published_at":"2022-08-02T15:21:06","type":"changed"}}`, "", 5, "not an object", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"ChangedNoResourceID", `{"data":{},"event":{"timepoint":5,"published_at":"2022-08-02T15:21:06","type":"changed"}}`, "", 5, "resource_id", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"DeletedNoResourceID", `{"event":{"timepoint":5,"published_at":"2022-08-02T15:21:06","type":"deleted"}}`, "", 5, "resource_id", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"ResourceIDNumber", `{"resource_id":7,"data":{},"event":{"timepoint":5,"published_at":"2022-08-02T15:21:06","type":"changed"}}`, "", 5, "resource_id", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
		{"FieldsChangedNotList", ev(`{"timepoint":5,"published_at":"2022-08-02T15:21:06","type":"changed","fields_changed":"x"}`), "", 5, "fields_changed", time.Date(2022, 8, 2, 15, 21, 6, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			line := []byte(tt.line)
			it, err := Decode(line, recv)
			is.True(it.Gap == nil)
			if tt.reject != "" {
				is.True(err != nil)
				is.True(it.Event == nil)
				is.Equal(it.Reject.Reason, tt.reject)
				is.Equal(it.Reject.Timepoint, tt.timepoint)
				is.Equal(it.Reject.Bytes, int64(len(line)))
				is.Equal(string(it.Reject.Excerpt), tt.line[:min(200, len(tt.line))])
				is.Equal(it.Reject.ReceivedAt, recv)
				is.True(errors.Is(err, ErrNotJSON) || errors.Is(err, ErrNoTimepoint))
				return
			}
			is.NoErr(err)
			is.True(it.Reject == nil)
			e := it.Event
			is.Equal(e.Timepoint, tt.timepoint)
			is.Equal(e.ReceivedAt, recv)
			is.Equal(string(e.Raw), tt.line)
			is.Equal(e.PublishedAt, tt.published)
			if tt.invalid == "" {
				is.Equal(e.Invalid, "")
			} else {
				is.True(strings.Contains(e.Invalid, tt.invalid)) // Invalid names the problem
			}
			// Decode keeps no reference to its input.
			for i := range line {
				line[i] = 'X'
			}
			is.Equal(string(e.Raw), tt.line)
		})
	}
}

func TestDecodeExcerptIsFirst200Bytes(t *testing.T) {
	is := is.New(t)
	line := []byte("not json " + strings.Repeat("x", 1000))
	it, _ := Decode(line, time.Time{})
	is.Equal(len(it.Reject.Excerpt), 200)
	is.True(bytes.Equal(it.Reject.Excerpt, line[:200]))
	is.Equal(it.Reject.Bytes, int64(1009))
}

// benchLine is a realistic ~2 KB companies stream line.
func benchLine(tb testing.TB) []byte {
	_, events := fixtureLines(tb)
	line := events[1] // the strike-off event with unknown fields
	// Pad the profile with previous names up to about 2 KB, as busy
	// profiles are.
	pad := `"previous_company_names":[`
	for i := 0; len(line)+len(pad) < 2000; i++ {
		if i > 0 {
			pad += ","
		}
		pad += `{"ceased_on":"2019-05-01","effective_from":"2015-11-20","name":"EXAMPLE WIDGETS HOLDINGS LIMITED"}`
	}
	pad += "],"
	return bytes.Replace(line, []byte(`"type":"ltd"`), []byte(pad+`"type":"ltd"`), 1)
}

func BenchmarkDecode(b *testing.B) {
	line := benchLine(b)
	if it, err := Decode(line, time.Time{}); err != nil || it.Event.Invalid != "" {
		b.Fatalf("bench line does not decode: %v %+v", err, it.Event)
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Decode(line, time.Time{})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func FuzzDecode(f *testing.F) {
	_, events := fixtureLines(f)
	for _, l := range events {
		f.Add(l)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"event":{}}`, `{"event":{"timepoint":1}}`,
		`{"event":{"timepoint":1,"type":"changed","published_at":"2022-08-02T15:21:06"},"data":{}}`,
		`{"event":{"timepoint":1,"type":"deleted","published_at":"x"},"resource_id":7}`,
		`{"a":"\u00e9\ud800","event":{"timepoint":18446744073709551616}}`,
		`garbage "timepoint": 12 }`,
		`{"event":{"timepoint":3,"fields_changed":[1,"a",null]},"data":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		it, err := Decode(line, time.Time{})
		n := 0
		for _, set := range []bool{it.Event != nil, it.Reject != nil, it.Gap != nil} {
			if set {
				n++
			}
		}
		if n != 1 || it.Gap != nil {
			t.Fatalf("want exactly one of Event and Reject, got %+v", it)
		}
		// The scanner agrees with encoding/json on what is a JSON object.
		trimmed := bytes.TrimLeft(line, " \t\r\n")
		isObj := json.Valid(line) && len(trimmed) > 0 && trimmed[0] == '{'
		if notJSON := it.Reject != nil && it.Reject.Reason == ReasonNotJSON; notJSON == isObj {
			t.Fatalf("json.Valid object %v but reject %+v for %q", isObj, it.Reject, line)
		}
		if (err != nil) != (it.Reject != nil) {
			t.Fatalf("error %v with item %+v", err, it)
		}
		if e := it.Event; e != nil {
			if e.Timepoint <= 0 {
				t.Fatalf("event with timepoint %d", e.Timepoint)
			}
			if !bytes.Equal(e.Raw, line) {
				t.Fatal("Raw is not the line")
			}
			if e.Invalid == "" && e.Type == "changed" && (e.ResourceID == "" || len(e.Data) == 0) {
				t.Fatalf("valid changed event without resource_id or data: %q", line)
			}
		}
		if r := it.Reject; r != nil {
			if len(r.Excerpt) > 200 || r.Bytes != int64(len(line)) || r.Timepoint < 0 {
				t.Fatalf("bad reject %+v", r)
			}
		}
	})
}
