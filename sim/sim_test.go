package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// scaled shrinks a test's event count under the race detector.
func scaled(n int) int {
	if raceEnabled {
		return n / 4
	}
	return n
}

var t0 = time.Date(2026, 3, 4, 10, 11, 12, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// mustSim builds a simulator with a fixed clock unless cfg sets one.
func mustSim(tb testing.TB, cfg Config) *Sim {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("new sim: %v", err)
	}
	return s
}

// serve starts s on an httptest server closed at the end of the test.
func serve(tb testing.TB, s *Sim) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(s.Handler())
	tb.Cleanup(srv.Close)
	return srv
}

// open connects to the stream (path and query in q) with key as the user name.
func open(tb testing.TB, ctx context.Context, base, q, key string) *http.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/companies"+q, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readLines reads raw lines (heartbeats included) until n non-empty lines arrived.
func readLines(tb testing.TB, resp *http.Response, n int) [][]byte {
	tb.Helper()
	br := bufio.NewReaderSize(resp.Body, 1<<16)
	var out [][]byte
	for got := 0; got < n; {
		line, err := br.ReadBytes('\n')
		if err != nil {
			tb.Fatalf("read line %d: %v", got, err)
		}
		out = append(out, line)
		if len(line) > 1 {
			got++
		}
	}
	return out
}

// events reads n lines from tp first (inclusive) and drops heartbeats.
func events(tb testing.TB, base string, from int64, n int) [][]byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := open(tb, ctx, base, "?timepoint="+strconv.FormatInt(from, 10), "")
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("status %d", resp.StatusCode)
	}
	var out [][]byte
	for _, l := range readLines(tb, resp, n) {
		if len(l) > 1 {
			out = append(out, l)
		}
	}
	return out
}

type envelope struct {
	ResourceKind string          `json:"resource_kind"`
	ResourceURI  string          `json:"resource_uri"`
	ResourceID   string          `json:"resource_id"`
	Data         json.RawMessage `json:"data"`
	Event        struct {
		Timepoint     int64    `json:"timepoint"`
		PublishedAt   string   `json:"published_at"`
		Type          string   `json:"type"`
		FieldsChanged []string `json:"fields_changed"`
	} `json:"event"`
}

type profile struct {
	CompanyName   string `json:"company_name"`
	CompanyNumber string `json:"company_number"`
	Status        string `json:"company_status"`
	Detail        string `json:"company_status_detail"`
	Etag          string `json:"etag"`
}

func parse(tb testing.TB, line []byte) (envelope, profile) {
	tb.Helper()
	var e envelope
	if err := json.Unmarshal(line, &e); err != nil {
		tb.Fatalf("parse %q: %v", line, err)
	}
	var p profile
	if len(e.Data) > 0 {
		if err := json.Unmarshal(e.Data, &p); err != nil {
			tb.Fatalf("parse data: %v", err)
		}
	}
	return e, p
}

// topKeys lists an object's top-level member names in order.
func topKeys(tb testing.TB, line []byte) []string {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil {
		tb.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			tb.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			tb.Fatal(err)
		}
	}
	return keys
}

func TestDeterminism(t *testing.T) {
	is := is.New(t)
	cfg := Config{Seed: 42, Backlog: 3000}
	a := events(t, serve(t, mustSim(t, cfg)).URL, DefaultFirstTimepoint, 3000)
	b := events(t, serve(t, mustSim(t, cfg)).URL, DefaultFirstTimepoint, 3000)
	is.Equal(len(a), 3000)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("line %d differs:\n%s\n%s", i, a[i], b[i])
		}
	}
	c := events(t, serve(t, mustSim(t, Config{Seed: 43, Backlog: 10})).URL, DefaultFirstTimepoint, 10)
	is.True(!bytes.Equal(a[0], c[0])) // another seed, another log
}

func TestReplayInclusive(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, Backlog: 100, FirstTimepoint: 1_000})
	srv := serve(t, s)
	got := events(t, srv.URL, 1_050, 60) // 50 from the backlog, 10 generated on demand
	for i, l := range got {
		e, _ := parse(t, l)
		is.Equal(e.Event.Timepoint, int64(1_050+i))
	}
}

func TestLiveStartsAtNextEvent(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, Backlog: 100, Rate: 500})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := s.Truth().LastTimepoint
	resp := open(t, ctx, serve(t, s).URL, "", "")
	is.Equal(resp.StatusCode, 200)
	for _, l := range readLines(t, resp, 5) {
		if len(l) > 1 {
			e, _ := parse(t, l)
			is.True(e.Event.Timepoint > before) // nothing from the backlog
		}
	}
}

func TestBoundedLogIdlesWithHeartbeats(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, Events: 10, Backlog: 10, Heartbeat: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := open(t, ctx, serve(t, s).URL, "", "")
	br := bufio.NewReader(resp.Body)
	for range 3 {
		l, err := br.ReadBytes('\n')
		is.NoErr(err)
		is.Equal(string(l), "\n")
	}
	err := s.WaitPublished(ctx, DefaultFirstTimepoint+10)
	is.True(errors.Is(err, ErrNeverPublished))
}

func TestHeartbeatWhileEventsFlow(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, Rate: 400, Heartbeat: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := open(t, ctx, serve(t, s).URL, "", "")
	br := bufio.NewReader(resp.Body)
	beats, evs := 0, 0
	for beats < 3 || evs < 20 {
		l, err := br.ReadBytes('\n')
		is.NoErr(err)
		if len(l) == 1 {
			if evs > 0 { // a beat between events, not only on an idle line
				beats++
			}
		} else {
			evs++
		}
	}
}

func TestTimepointTooOld(t *testing.T) {
	tests := []struct {
		q    string
		code int
	}{
		{"?timepoint=100", 416},
		{"?timepoint=19099", 416},
		{"?timepoint=19100", 200}, // oldest kept: last (20099) - 1000 + 1
		{"?timepoint=20100", 200}, // next, waits live
		{"?timepoint=abc", 416},
		{"?timepoint=", 416},
		{"", 200},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			is := is.New(t)
			// A simulator each: a stream answered 200 generates events
			// on demand as fast as the socket takes them, which moves the
			// retention window under the next case.
			s := mustSim(t, Config{Seed: 1, Backlog: 20_000, Retention: 1_000, FirstTimepoint: 100})
			srv := serve(t, s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			resp := open(t, ctx, srv.URL, tt.q, "")
			is.Equal(resp.StatusCode, tt.code)
			if tt.code == 416 {
				b, _ := io.ReadAll(resp.Body)
				is.Equal(string(bytes.TrimSpace(b)), "the specified timepoint is invalid or too old")
			}
		})
	}
}

func TestAuth(t *testing.T) {
	s := mustSim(t, Config{Seed: 1, Backlog: 5, StreamKey: "stream-key", APIKey: "api-key", Heartbeat: time.Hour})
	srv := serve(t, s)
	num := s.statics[0].num()
	basic := func(v string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(v)) }
	tests := []struct {
		name, path, auth string
		code             int
	}{
		{"stream none", "/companies?timepoint=" + strconv.Itoa(DefaultFirstTimepoint), "", 401},
		{"stream wrong", "/companies", basic("nope:"), 401},
		{"stream api key", "/companies", basic("api-key:"), 401},
		{"stream no colon", "/companies", basic("stream-key"), 401},
		{"stream trailing colon", "/companies", basic("stream-key:"), 200},
		{"rest none", "/company/" + num, "", 401},
		{"rest stream key", "/company/" + num, basic("stream-key:"), 401},
		{"rest trailing colon", "/company/" + num, basic("api-key:"), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			defer resp.Body.Close()
			is.Equal(resp.StatusCode, tt.code)
			if tt.code == 401 {
				b, _ := io.ReadAll(resp.Body)
				is.Equal(string(bytes.TrimSpace(b)), `{"error":"Invalid Authorization","type":"ch:service"}`)
			}
		})
	}
}

func TestConnectFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		codes  []int // per attempt
	}{
		{"5xx", Faults{Status5xxEvery: 2}, []int{200, 503, 200, 502, 200, 504, 200, 503}},
		{"429", Faults{Status429Every: 3}, []int{200, 200, 429, 200, 200, 429}},
		{"401", Faults{Status401Every: 2}, []int{200, 401, 200, 401}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			srv := serve(t, mustSim(t, Config{Seed: 1, Backlog: 1, Faults: tt.faults, Heartbeat: time.Hour}))
			for i, want := range tt.codes {
				ctx, cancel := context.WithCancel(context.Background())
				resp := open(t, ctx, srv.URL, "", "")
				is.Equal(resp.StatusCode, want) // attempt i
				_ = i
				if want != 200 {
					b, _ := io.ReadAll(resp.Body)
					is.True(len(b) > 0 && len(b) < 512)
				}
				resp.Body.Close()
				cancel()
			}
		})
	}
}

func TestLineFaults(t *testing.T) {
	const first = DefaultFirstTimepoint
	t.Run("cut", func(t *testing.T) {
		is := is.New(t)
		srv := serve(t, mustSim(t, Config{Seed: 1, Backlog: 100, Faults: Faults{CutEvery: 3}}))
		resp := open(t, context.Background(), srv.URL, "?timepoint="+strconv.Itoa(first), "")
		body, err := io.ReadAll(resp.Body)
		is.True(err != nil) // the connection is aborted, not ended cleanly
		lines := bytes.SplitAfter(body, []byte("\n"))
		is.Equal(len(lines), 3) // two whole lines and a piece
		is.True(!bytes.HasSuffix(lines[2], []byte("\n")))
		whole := events(t, srv.URL, first+2, 1)[0] // the cut line, served whole on reconnect
		is.Equal(len(lines[2]), len(whole)/2)
		is.True(bytes.HasPrefix(whole, lines[2]))
	})
	t.Run("stall", func(t *testing.T) {
		is := is.New(t)
		srv := serve(t, mustSim(t, Config{Seed: 1, Backlog: 100, Heartbeat: 10 * time.Millisecond,
			Faults: Faults{StallEvery: 2, StallFor: 300 * time.Millisecond}}))
		resp := open(t, context.Background(), srv.URL, "?timepoint="+strconv.Itoa(first), "")
		br := bufio.NewReader(resp.Body)
		var last time.Time
		for n := 0; n < 3; {
			l, err := br.ReadBytes('\n')
			is.NoErr(err)
			if len(l) == 1 {
				is.True(n != 2) // no heartbeat during the stall
				continue
			}
			n++
			if n == 2 {
				last = time.Now()
			}
			if n == 3 {
				// 300ms on the server; allow for a late reader under load.
				is.True(time.Since(last) >= 200*time.Millisecond)
			}
		}
	})
	t.Run("not json", func(t *testing.T) {
		is := is.New(t)
		srv := serve(t, mustSim(t, Config{Seed: 1, Backlog: 100, Faults: Faults{NotJSONEvery: 2}}))
		got := events(t, srv.URL, first, 9)
		for i, l := range got {
			bad := i%3 == 2 // ev ev junk ev ev junk ...
			is.Equal(json.Valid(l), !bad)
			is.True(bad == !bytes.Contains(l, []byte(`"timepoint"`)))
		}
	})
	t.Run("oversize", func(t *testing.T) {
		is := is.New(t)
		const size = 200_000
		srv := serve(t, mustSim(t, Config{Seed: 1, Backlog: 100, Faults: Faults{OversizeEvery: 2, OversizeBytes: size}}))
		got := events(t, srv.URL, first, 5)
		is.Equal(len(got[2]), size)
		is.True(json.Valid(got[2]))
		keys := topKeys(t, got[2])
		is.Equal(keys[len(keys)-1], "event")
		big, _ := parse(t, got[2])
		next, _ := parse(t, got[3])
		is.Equal(big.Event.Timepoint, int64(first+2)) // the next event's timepoint
		is.Equal(next.Event.Timepoint, int64(first+2))
		is.True(len(got[3]) < 10_000)
		// The tail alone gives the timepoint back.
		tail := got[2][len(got[2])-200:]
		is.True(regexp.MustCompile(`"event":\{"timepoint":47000002,`).Match(tail))
	})
	t.Run("replay", func(t *testing.T) {
		is := is.New(t)
		srv := serve(t, mustSim(t, Config{Seed: 1, Backlog: 100, Faults: Faults{ReplayEvery: 3}}))
		got := events(t, srv.URL, first, 8)
		var tps []int64
		for _, l := range got {
			e, _ := parse(t, l)
			tps = append(tps, e.Event.Timepoint-first)
		}
		is.Equal(tps, []int64{0, 1, 2, 2, 3, 4, 5, 5})
		is.Equal(got[2], got[3])
	})
}

func TestConnectionLifetime(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, Heartbeat: 5 * time.Millisecond, Events: 1})
	s.maxConn = 50 * time.Millisecond
	resp := open(t, context.Background(), serve(t, s).URL, "", "")
	_, err := io.ReadAll(resp.Body)
	is.NoErr(err) // ended cleanly by the server
}

var publishedAt = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`)

func TestEnvelope(t *testing.T) {
	is := is.New(t)
	n := scaled(8_000)
	s := mustSim(t, Config{Seed: 7, Backlog: n})
	got := events(t, serve(t, s).URL, DefaultFirstTimepoint, n)
	kinds := map[string]int{}
	for i, l := range got {
		keys := topKeys(t, l)
		is.Equal(keys[len(keys)-1], "event") // event object last
		is.Equal(keys[:3], []string{"resource_kind", "resource_uri", "resource_id"})
		e, p := parse(t, l)
		is.Equal(e.Event.Timepoint, int64(DefaultFirstTimepoint+i))
		is.True(publishedAt.MatchString(e.Event.PublishedAt))
		is.Equal(e.ResourceKind, "company-profile")
		is.Equal(e.ResourceURI, "/company/"+e.ResourceID)
		is.Equal(len(e.ResourceID), 8)
		switch e.Event.Type {
		case "deleted":
			is.Equal(keys, []string{"resource_kind", "resource_uri", "resource_id", "event"})
		case "changed":
			is.Equal(p.CompanyNumber, e.ResourceID)
			is.Equal(len(p.Etag), 40)
			is.True(p.Status != "active-proposal-to-strike-off") // never the detail in the status
			if p.Detail == "active-proposal-to-strike-off" {
				is.Equal(p.Status, "active")
			}
		default:
			t.Fatalf("type %q", e.Event.Type)
		}
		if len(e.Event.FieldsChanged) > 0 {
			kinds["fields_changed"]++
		}
		if bytes.Contains(l, []byte(`"context_id"`)) {
			kinds["envelope extra"]++
		}
		for _, pre := range []string{"0", "SC", "NI", "OC"} {
			if e.ResourceID[:len(pre)] == pre {
				kinds[pre]++
			}
		}
	}
	for _, k := range []string{"fields_changed", "envelope extra", "0", "SC", "NI", "OC"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in %d events", k, n)
		}
	}
}

// refCompany is the reference rule's state of one company.
type refCompany struct {
	p       profile
	pub     string
	deleted bool
}

func (c *refCompany) in() bool {
	return c != nil && !c.deleted && c.p.Status == "active" && c.p.Detail == "active-proposal-to-strike-off"
}

// TestTruthConsistency replays every line through the simplest reading of the
// rules (etag equal: unchanged; published_at older: stale; else apply; deleted:
// leaves) and checks it agrees with the simulator's own truth.
func TestTruthConsistency(t *testing.T) {
	is := is.New(t)
	n := scaled(16_000)
	s := mustSim(t, Config{Seed: 99, Backlog: n, Events: n, Companies: 1500, APIRateLimit: 1_000_000})
	srv := serve(t, s)
	got := events(t, srv.URL, DefaultFirstTimepoint, n)
	ref := map[string]*refCompany{}
	var trans []Transition
	count := map[string]int{}
	for _, l := range got {
		e, p := parse(t, l)
		c := ref[e.ResourceID]
		was := c.in()
		switch {
		case e.Event.Type == "deleted":
			is.True(c != nil && !c.deleted) // only seen, live companies are deleted
			c.deleted = true
			count["deleted"]++
		case c != nil && p.Etag == c.p.Etag:
			is.True(!c.deleted)
			count["unchanged"]++
		case c != nil && e.Event.PublishedAt < c.pub:
			count["stale"]++
		default:
			if was && p.Status == "active" && p.Detail == "" {
				count["hybrid"]++
			}
			if c == nil {
				c = &refCompany{}
				ref[e.ResourceID] = c
			}
			c.p, c.pub, c.deleted = p, e.Event.PublishedAt, false
			count["applied"]++
		}
		if now := c.in(); now != was {
			trans = append(trans, Transition{e.Event.Timepoint, e.ResourceID, now})
		}
	}
	tr := s.Truth()
	is.Equal(tr.LastTimepoint, int64(DefaultFirstTimepoint+n-1))
	is.Equal(len(tr.Timepoints), n)
	is.Equal(tr.Transitions, trans)
	is.Equal(len(tr.Companies), len(ref))
	inStrikeOff := 0
	for num, c := range ref {
		want := CompanyTruth{Name: c.p.CompanyName, Status: c.p.Status, Detail: c.p.Detail, Etag: c.p.Etag, Deleted: c.deleted, InStrikeOff: c.in()}
		is.Equal(tr.Companies[num], want)
		if c.in() {
			inStrikeOff++
		}
	}
	t.Logf("outcomes %v, transitions %d, in strike-off %d of %d", count, len(trans), inStrikeOff, len(ref))
	share := func(k string) float64 { return float64(count[k]) / float64(n) }
	is.True(share("unchanged") > 0.07 && share("unchanged") < 0.13)
	is.True(share("stale") > 0.01 && share("stale") < 0.03)
	is.True(share("deleted") > 0.002 && share("deleted") < 0.01)
	is.True(share("hybrid") > 0.004 && share("hybrid") < 0.02)
	so := float64(inStrikeOff) / float64(len(ref))
	is.True(so > 0.04 && so < 0.11) // the share holds near StrikeOffShare

	// REST agrees with truth.
	checked := 0
	for num, c := range tr.Companies {
		if checked++; checked > 200 {
			break
		}
		resp, err := http.Get(srv.URL + "/company/" + num)
		is.NoErr(err)
		if c.Deleted {
			is.Equal(resp.StatusCode, 404)
		} else {
			var p profile
			is.NoErr(json.NewDecoder(resp.Body).Decode(&p))
			is.Equal(p.Etag, c.Etag)
			is.Equal(p.Status, c.Status)
		}
		resp.Body.Close()
	}
}

func TestStrikeOffShareOverTime(t *testing.T) {
	if raceEnabled {
		t.Skip("single-goroutine arithmetic; slow under -race")
	}
	s := mustSim(t, Config{Seed: 5, Companies: 5000, Backlog: 300_000})
	so := 0
	for _, c := range s.cos {
		if c.cur.status == stStrikeOff && !c.deleted {
			so++
		}
	}
	if sh := float64(so) / 5000; sh < 0.055 || sh > 0.085 {
		t.Fatalf("strike-off share after 300k events is %.3f, want about 0.07", sh)
	}
}

func TestRESTProfile(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 3})
	srv := serve(t, s)
	num := s.statics[10].num()
	resp, err := http.Get(srv.URL + "/company/" + num)
	is.NoErr(err)
	defer resp.Body.Close()
	is.Equal(resp.StatusCode, 200)
	is.Equal(resp.Header.Get("Date"), t0.Format(http.TimeFormat))
	var m map[string]any
	is.NoErr(json.NewDecoder(resp.Body).Decode(&m))
	for _, k := range []string{"company_name", "company_number", "company_status", "etag", "links", "registered_office_address", "type", "sic_codes", "date_of_creation", "jurisdiction"} {
		_, ok := m[k]
		is.True(ok) // always present
	}
	resp2, err := http.Get(srv.URL + "/company/ZZ999999")
	is.NoErr(err)
	resp2.Body.Close()
	is.Equal(resp2.StatusCode, 404)
}

func TestOfficers(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 11, Companies: 2000, APIRateLimit: 100_000})
	srv := serve(t, s)
	get := func(num string, per, start int) (int, officerList) {
		resp, err := http.Get(srv.URL + "/company/" + num + "/officers?items_per_page=" + strconv.Itoa(per) + "&start_index=" + strconv.Itoa(start))
		is.NoErr(err)
		defer resp.Body.Close()
		var l officerList
		if resp.StatusCode == 200 {
			is.NoErr(json.NewDecoder(resp.Body).Decode(&l))
		}
		return resp.StatusCode, l
	}
	var big, none, empty, twoRoles string
	for ci := range s.statics {
		n := s.officerCount(uint32(ci))
		empty404, noTotal := s.listShape(uint32(ci))
		switch {
		case n > 100 && big == "" && !noTotal && s.cos[ci].cur.status != stDissolved:
			big = s.statics[ci].num()
		case n == 0 && none == "" && empty404:
			none = s.statics[ci].num()
		case n == 0 && empty == "" && !empty404 && !noTotal:
			empty = s.statics[ci].num()
		}
		if twoRoles == "" && n >= 2 {
			os := s.officers(uint32(ci))
			if os[0].Name == os[1].Name {
				twoRoles = s.statics[ci].num()
			}
		}
	}
	is.True(big != "" && none != "" && empty != "" && twoRoles != "")

	code, _ := get(none, 100, 0)
	is.Equal(code, 404) // no officers, the older way
	code, l := get(empty, 100, 0)
	is.Equal(code, 200) // no officers, since 2023
	is.Equal(*l.TotalResults, 0)
	is.Equal(len(l.Items), 0)

	// Page through a company with more than 100 officers.
	var all []officer
	total := -1
	for start := 0; total < 0 || start < total; {
		code, l := get(big, 100, start)
		is.Equal(code, 200)
		is.Equal(l.Kind, "officer-list")
		is.Equal(l.StartIndex, start)
		is.True(len(l.Items) <= 100)
		total = *l.TotalResults
		is.Equal(l.ActiveCount+l.ResignedCount, total)
		all = append(all, l.Items...)
		start += len(l.Items)
	}
	is.Equal(len(all), total)
	is.True(total > 100)
	seen := map[string]bool{}
	for _, o := range all {
		is.True(!seen[o.Links.Self]) // appointment ids unique
		seen[o.Links.Self] = true
		is.True(regexp.MustCompile(`^/company/` + big + `/appointments/[A-Za-z0-9_-]{27}$`).MatchString(o.Links.Self))
		is.True(regexp.MustCompile(`^[A-Z' ]+, [A-Z][a-z]+`).MatchString(o.Name))
	}
	code, l = get(big, 500, 0) // items_per_page is capped at 100
	is.Equal(code, 200)
	is.Equal(l.ItemsPerPage, 100)
	is.Equal(len(l.Items), 100)

	_, l = get(twoRoles, 100, 0)
	a, b := l.Items[0], l.Items[1]
	is.Equal(a.Name, b.Name)
	is.Equal(a.OfficerRole, "director")
	is.Equal(b.OfficerRole, "secretary")
	is.True(a.Links.Self != b.Links.Self)
	is.Equal(a.Links.Officer.Appointments, b.Links.Officer.Appointments)
	is.True(a.DateOfBirth != nil && a.DateOfBirth.Year > 1900)
}

func TestRateLimit(t *testing.T) {
	is := is.New(t)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := mustSim(t, Config{Seed: 1, APIRateLimit: 3, Now: clock})
	srv := serve(t, s)
	num := s.statics[0].num()
	get := func() *http.Response {
		resp, err := http.Get(srv.URL + "/company/" + num)
		is.NoErr(err)
		resp.Body.Close()
		return resp
	}
	reset := strconv.FormatInt(t0.Add(5*time.Minute).Unix(), 10)
	for i, want := range []string{"2", "1", "0"} {
		resp := get()
		is.Equal(resp.StatusCode, 200) // within budget
		is.Equal(resp.Header.Get("X-Ratelimit-Limit"), "3")
		is.Equal(resp.Header.Get("X-Ratelimit-Remain"), want)
		is.Equal(resp.Header.Get("X-Ratelimit-Reset"), reset)
		is.Equal(resp.Header.Get("X-Ratelimit-Window"), "5m")
		_ = i
	}
	for range 2 {
		resp := get()
		is.Equal(resp.StatusCode, 429)
		is.Equal(resp.Header.Get("Retry-After"), "")
		is.Equal(resp.Header.Get("X-Ratelimit-Remain"), "0")
	}
	mu.Lock()
	now = t0.Add(5*time.Minute + time.Second)
	mu.Unlock()
	resp := get()
	is.Equal(resp.StatusCode, 200) // a new window
	is.Equal(resp.Header.Get("X-Ratelimit-Remain"), "2")
}

func TestWaitPublishedLive(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, Rate: 2000, Backlog: 10, Events: 200})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	is.NoErr(s.WaitPublished(ctx, DefaultFirstTimepoint+199))
	is.Equal(s.Truth().LastTimepoint, int64(DefaultFirstTimepoint+199))
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"companies", Config{Companies: -1}},
		{"too many companies", Config{Companies: 2_000_000}},
		{"share", Config{StrikeOffShare: 0.9}},
		{"backlog beyond events", Config{Events: 5, Backlog: 6}},
		{"rate", Config{Rate: -1}},
		{"fault", Config{Faults: Faults{CutEvery: -2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			is.New(t).True(err != nil)
		})
	}
}

func TestServe(t *testing.T) {
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", Config{Seed: 1}, nil) }()
	cancel()
	select {
	case err := <-done:
		is.NoErr(err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	is.True(Serve(context.Background(), "256.0.0.1:1", Config{}, nil) != nil)
}

func TestReaderFallsOutOfRetention(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 1, Backlog: 1_000, Retention: 1_000, Heartbeat: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := open(t, ctx, serve(t, s).URL, "?timepoint="+strconv.Itoa(DefaultFirstTimepoint), "")
	is.Equal(resp.StatusCode, 200)
	is.NoErr(s.WaitPublished(ctx, DefaultFirstTimepoint+50_000)) // the reader's place is trimmed
	body, err := io.ReadAll(resp.Body)
	is.NoErr(err) // the server ends the connection
	is.True(bytes.Count(body, []byte("\n")) < 50_000)
	again := open(t, ctx, serve(t, s).URL, "?timepoint="+strconv.Itoa(DefaultFirstTimepoint), "")
	is.Equal(again.StatusCode, 416)
}
