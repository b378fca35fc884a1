package status_test

import (
	"context"
	"encoding"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/status"
	"github.com/matryer/is"
)

// contractKeys are the `status --json` keys scripts and monitoring rely on,
// with their JSON types, as of the release that froze them. Keys are only
// ever added: never remove or rename one here. (`version` is added by the
// command; app tests check it.)
var contractKeys = map[string]string{
	"verdict": "string", "reasons": "array", "now": "string", "running": "bool",
	"database": "object", "database.path": "string", "database.bytes": "number", "database.wal_bytes": "number",
	"database.schema_version": "number", "database.disk_free_bytes": "number", "database.disk_full": "bool",
	"service": "object", "service.pid": "number", "service.version": "string", "service.started_at": "string",
	"service.heartbeat_at": "string", "service.stopped_at": "string", "service.stream_state": "string",
	"service.stream_since": "string", "service.stream_error": "string", "service.stream_url": "string",
	"service.reconnects": "number", "service.lag_seconds": "number", "service.last_event_at": "string",
	"service.breaker_state": "string", "service.api_unauthorized": "bool", "service.api_budget_remaining": "number",
	"service.disk_full": "bool", "service.last_error": "string", "service.sweep": "string",
	"cursor": "object", "cursor.timepoint": "number", "cursor.url": "string", "cursor.published_at": "string",
	"cursor.updated_at": "string", "last_event_age_seconds": "number",
	"events": "map", "rejects": "number", "companies": "number", "strike_off": "number",
	"entered_today": "number", "left_today": "number",
	"recent_transitions": "array", "recent_transitions[].company_number": "string", "recent_transitions[].company_name": "string",
	"recent_transitions[].change": "string", "recent_transitions[].first_seen": "bool", "recent_transitions[].source": "string",
	"recent_transitions[].source_time": "string",
	"open_gaps":                        "array", "open_gaps[].id": "number", "open_gaps[].from_timepoint": "number", "open_gaps[].to_timepoint": "number",
	"open_gaps[].from_time": "string", "open_gaps[].to_time": "string", "open_gaps[].detected_at": "string",
	"queue": "object", "queue.pending": "number", "queue.dead": "number", "queue.status_checks_pending": "number",
	"queue.refused": "number",
}

// TestJSONKeys: every contract key is still in the report, with its type,
// and the whole key list is pinned in testdata/json-keys.txt, so an added
// key is a visible change (-update rewrites the list, never the contract).
func TestJSONKeys(t *testing.T) {
	is := is.New(t)
	got := map[string]string{}
	jsonKeys(reflect.TypeFor[status.Report](), "", got)
	for k, typ := range contractKeys {
		if got[k] != typ {
			t.Errorf("contract key %q: %q in the report, want %q (keys are added, never renamed or retyped)", k, got[k], typ)
		}
	}
	var lines []string
	for k, typ := range got {
		lines = append(lines, k+" "+typ)
	}
	sort.Strings(lines)
	golden(t, "testdata/json-keys.txt", strings.Join(lines, "\n")+"\n")

	// And the encoder agrees: a gathered report carries every key that
	// is never omitted.
	d := dbtest.Open(t)
	setService(t, d, running())
	r, err := status.Gather(context.Background(), d, th, now)
	is.NoErr(err)
	b, err := json.Marshal(r)
	is.NoErr(err)
	var m map[string]any
	is.NoErr(json.Unmarshal(b, &m))
	for _, k := range []string{"verdict", "reasons", "now", "database", "service", "running", "cursor", "last_event_age_seconds",
		"events", "rejects", "companies", "strike_off", "entered_today", "left_today", "recent_transitions", "open_gaps", "queue",
		"today", "rest", "feed", "uptime_seconds", "heartbeat_age_seconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("the JSON lacks %q: %s", k, b)
		}
	}
	for _, k := range []string{"path", "bytes", "wal_bytes", "schema_version", "disk_free_bytes", "disk_full"} {
		if _, ok := m["database"].(map[string]any)[k]; !ok {
			t.Errorf("the JSON lacks database.%s", k)
		}
	}
}

var (
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	timeType      = reflect.TypeFor[time.Time]()
)

// jsonKeys records the JSON key paths of t's fields and their JSON types
// (arrays' elements as path[].key, maps as "map").
func jsonKeys(t reflect.Type, prefix string, out map[string]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			jsonKeys(f.Type, prefix, out) // inlined, as encoding/json does
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		out[path] = jsonType(ft)
		switch {
		case out[path] == "object":
			jsonKeys(ft, path+".", out)
		case out[path] == "array" && ft.Elem().Kind() == reflect.Struct:
			jsonKeys(ft.Elem(), path+"[].", out)
		}
	}
}

func jsonType(t reflect.Type) string {
	switch {
	case t == timeType || t.Implements(textMarshaler):
		return "string"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "object"
	case reflect.Map:
		return "map"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.Kind().String()
}
