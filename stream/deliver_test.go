package stream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// An item the connection's end cut off before the consumer took it was not
// delivered: the resume point stays on it, so the next connection asks for
// it again, and a pending gap stays pending. (The watchdog can end a
// connection at any instant, a send blocked on a slow commit included.)
func TestUndeliveredItemIsAskedForAgain(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()               // the connection ended
	out := make(chan Item) // nobody receives: the consumer is busy
	gap := &Gap{FromTimepoint: 5, Reason: "test"}
	s := &session{out: out, next: 10, gap: gap}
	r := &reading{s: s, w: &watch{clock: h.clock, busy: new(atomic.Bool)}, prev: 9}
	items, n := h.c.items(r, rawLine{kind: lineData, data: []byte(event(10, "00000010"))}, time.Now())
	is.Equal(n, 2) // the gap, then the event
	for _, it := range items[:n] {
		is.True(!h.c.deliver(ctx, r, it))
	}
	is.Equal(s.next, int64(10)) // still asks for 10
	is.True(s.gap == gap)       // still pending

	// Once handed over, both move on.
	out2 := make(chan Item, 2)
	s.out = out2
	for _, it := range items[:n] {
		is.True(h.c.deliver(context.Background(), r, it))
	}
	is.Equal(s.next, int64(11))
	is.True(s.gap == nil)
}
