package stream

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// queries returns the query string of every request the server saw.
func (h *harness) queries() []string {
	var qs []string
	for _, r := range h.srv.requests() {
		qs = append(qs, r.RawQuery)
	}
	return qs
}

// An absurd timepoint is a reject that never moves the resume point: on a
// resumed connection, and after the first event of a live one.
func TestImplausibleTimepointIsRejected(t *testing.T) {
	huge := int64(math.MaxInt64)
	t.Run("ResumedConnection", func(t *testing.T) {
		is := is.New(t)
		h := newHarness(t, nil, lines(event(100, "00000100"), event(huge, "00000666"), event(101, "00000101")))
		h.start(100, time.Time{})
		got := h.collect(3)
		h.waitExhausted()
		is.Equal(got[0].Event.Timepoint, int64(100))
		rj := got[1].Reject
		is.True(rj != nil)
		is.Equal(rj.Reason, ReasonImplausibleTimepoint)
		is.Equal(rj.Timepoint, huge) // kept for the operator, never resumed from
		is.True(strings.Contains(string(rj.Excerpt), `"resource_id":"00000666"`))
		is.Equal(got[2].Event.Timepoint, int64(101))
		is.Equal(h.queries(), []string{"timepoint=100", "timepoint=102"})
		is.Equal(h.c.State().Timepoint, int64(101))
		is.Equal(h.counter(`chwatch_stream_lines_total{kind="reject"}`), uint64(1))
	})
	t.Run("JumpFromTheTimepointAskedFor", func(t *testing.T) {
		is := is.New(t)
		far := 99 + DefaultMaxTimepointJump + 1 // asked for 100: the cursor was 99
		h := newHarness(t, nil, lines(event(far, "00000666"), event(100, "00000100")))
		h.start(100, time.Time{})
		got := h.collect(2)
		h.waitExhausted()
		is.True(got[0].Reject != nil) // the first event of a resumed connection is bounded too
		is.Equal(got[1].Event.Timepoint, int64(100))
		is.Equal(h.queries(), []string{"timepoint=100", "timepoint=101"})
	})
	t.Run("WithinTheBound", func(t *testing.T) {
		is := is.New(t)
		near := 99 + DefaultMaxTimepointJump
		h := newHarness(t, nil, lines(event(near, "00000001")))
		h.start(100, time.Time{})
		got := h.collect(1)
		h.waitExhausted()
		is.Equal(got[0].Event.Timepoint, near)
		is.Equal(h.queries(), []string{"timepoint=100", "timepoint=" + itoa(near+1)})
	})
	t.Run("LiveFirstEventMayJumpButNotBeyondTheLast", func(t *testing.T) {
		is := is.New(t)
		h := newHarness(t, nil, lines(event(50_000_000, "00000001"), event(50_000_000+2*DefaultMaxTimepointJump, "00000666"), event(huge, "00000667")),
			lines(event(huge, "00000668")))
		h.start(0, time.Time{})
		got := h.collect(4)
		h.waitExhausted()
		is.Equal(got[0].Event.Timepoint, int64(50_000_000))
		is.True(got[1].Reject != nil)
		is.True(got[2].Reject != nil)
		is.True(got[3].Reject != nil)
		is.Equal(h.queries(), []string{"", "timepoint=50000001", "timepoint=50000001"})
	})
	t.Run("LiveFirstEventCannotBeTheLastTimepoint", func(t *testing.T) {
		// No timepoint follows 2^63-1: resuming after it is impossible.
		is := is.New(t)
		h := newHarness(t, nil, lines(event(huge, "00000666"), event(7, "00000007")))
		h.start(0, time.Time{})
		got := h.collect(2)
		h.waitExhausted()
		is.True(got[0].Reject != nil)
		is.Equal(got[1].Event.Timepoint, int64(7))
		is.Equal(h.queries(), []string{"", "timepoint=8"})
	})
}

// Many implausible lines in a row mean the stream itself moved on: the
// client drops the connection and resumes from its own position, so a
// renumbered stream answers 416 and the gap path takes over.
func TestSustainedJumpReconnects(t *testing.T) {
	is := is.New(t)
	var ls []string
	for i := range int64(jumpReconnectAfter + 5) {
		ls = append(ls, event(9_000_000_000+i, "00000009"))
	}
	gone := status(416, "the specified timepoint is invalid or too old")
	h := newHarness(t, nil, lines(append([]string{event(100, "00000100")}, ls...)...), gone, gone, lines(event(9_000_000_000, "00000009")))
	h.start(100, time.Time{})
	got := h.collect(1 + jumpReconnectAfter + 2)
	h.waitExhausted()
	for _, it := range got[1 : 1+jumpReconnectAfter] {
		is.True(it.Reject != nil)
	}
	is.True(got[1+jumpReconnectAfter].Gap != nil)
	is.Equal(got[1+jumpReconnectAfter].Gap.FromTimepoint, int64(101))
	is.Equal(got[1+jumpReconnectAfter+1].Event.Timepoint, int64(9_000_000_000))
	is.Equal(h.queries(), []string{"timepoint=100", "timepoint=101", "timepoint=101", "", "timepoint=9000000001"})
	is.Equal(h.reconnects(ReasonImplausible), uint64(1))
}

// A cursor no timepoint can follow cannot be resumed from: the client says
// so, starts live and reports the gap before the first live event.
func TestUnresumableCursorRecordsGap(t *testing.T) {
	is := is.New(t)
	lastPub := time.Date(2026, 10, 25, 9, 0, 0, 0, time.UTC)
	h := newHarness(t, nil, lines(event(50_000_000, "00000001")))
	h.run(Start{Cursor: math.MaxInt64, LastPublished: lastPub})
	got := h.collect(2)
	h.waitExhausted()
	g := got[0].Gap
	is.True(g != nil)
	is.Equal(g.FromTimepoint, int64(math.MaxInt64))
	is.Equal(g.ToTimepoint, int64(50_000_000))
	is.Equal(g.FromTime, lastPub)
	is.True(strings.Contains(g.Reason, "cannot be resumed"))
	is.Equal(got[1].Event.Timepoint, int64(50_000_000))
	is.Equal(h.queries(), []string{"", "timepoint=50000001"})
	is.True(strings.Contains(h.logs.String(), "cannot be resumed"))
}

// A fresh database (no cursor) whose first connection brings only rejected
// lines starts live again, never at ?timepoint=1 (which answers 416 and
// records a gap that does not exist). With a start timepoint it asks for
// that one again.
func TestRejectsOnFreshStartStayLive(t *testing.T) {
	html := "<html><body>Service temporarily unavailable</body></html>"
	for name, tc := range map[string]struct {
		from int64
		want []string
	}{
		"Live":           {0, []string{"", ""}},
		"StartTimepoint": {5000, []string{"timepoint=5000", "timepoint=5000"}},
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			h := newHarness(t, nil, lines(html, "not json at all", `{"event":{"timepoint":0}}`))
			h.start(tc.from, time.Time{})
			got := h.collect(3)
			h.waitExhausted()
			for _, it := range got {
				is.True(it.Reject != nil)
			}
			is.Equal(h.queries(), tc.want)
			is.Equal(len(h.drain()), 0) // no gap
			is.Equal(h.reconnects(Reason416), uint64(0))
		})
	}
}
