package sim

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

const (
	body401 = `{"error":"Invalid Authorization","type":"ch:service"}`
	body416 = "the specified timepoint is invalid or too old"
	body429 = "client has been rate-limited"
)

var gatewayErrors = []struct {
	code int
	text string
}{
	{http.StatusServiceUnavailable, "503 Service Temporarily Unavailable"},
	{http.StatusBadGateway, "502 Bad Gateway"},
	{http.StatusGatewayTimeout, "504 Gateway Time-out"},
}

// authorized reports whether r carries Basic auth with key as the user name (any
// password; the real services use an empty one). An empty key accepts anything.
func authorized(r *http.Request, key string) bool {
	if key == "" {
		return true
	}
	user, _, ok := r.BasicAuth()
	return ok && user == key
}

func writeJSONError(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}

// serveStream serves GET /companies.
func (s *Sim) serveStream(w http.ResponseWriter, r *http.Request) {
	attempt := s.attempts.Add(1)
	f := &s.cfg.Faults
	if !authorized(r, s.cfg.StreamKey) {
		writeJSONError(w, http.StatusUnauthorized, body401)
		return
	}
	switch {
	case every(f.Status401Every, attempt):
		writeJSONError(w, http.StatusUnauthorized, body401)
		return
	case every(f.Status429Every, attempt):
		writeText(w, http.StatusTooManyRequests, body429)
		return
	case every(f.Status5xxEvery, attempt):
		g := gatewayErrors[(s.streamGW.Add(1)-1)%int64(len(gatewayErrors))]
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(g.code)
		fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n</body>\r\n</html>\r\n", g.text, g.text)
		return
	}

	s.mu.Lock()
	s.advanceLocked()
	next := s.cfg.FirstTimepoint + s.n
	if q, ok := r.URL.Query()["timepoint"]; ok {
		tp, err := strconv.ParseInt(q[0], 10, 64)
		if err != nil || tp < s.oldestLocked() {
			s.mu.Unlock()
			writeText(w, http.StatusRequestedRangeNotSatisfiable, body416)
			return
		}
		next = tp
	}
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	c := &streamConn{s: s, w: w, rc: rc, next: next}
	c.run(r)
}

func every(n int, k int64) bool { return n > 0 && k%int64(n) == 0 }

// streamConn is one open stream connection.
type streamConn struct {
	s     *Sim
	w     http.ResponseWriter
	rc    *http.ResponseController
	next  int64 // next timepoint to send
	lines int64 // event lines sent
	buf   []byte
}

const (
	batchMax = 256
	// With Rate 0 a reader generates events on demand, but only when it asks for
	// at most maxAhead events past the end: a far-future ?timepoint just waits.
	maxAhead = 100_000
)

func (c *streamConn) run(r *http.Request) {
	s, f := c.s, &c.s.cfg.Faults
	ctx := r.Context()
	life := time.NewTimer(s.maxConn)
	defer life.Stop()
	hb := time.NewTicker(s.cfg.Heartbeat)
	defer hb.Stop()
	var recs []rec
	oversizePending, tricklePending := false, false
	for {
		s.mu.Lock()
		idx := c.next - s.cfg.FirstTimepoint
		s.advanceLocked()
		if s.cfg.Rate == 0 && idx >= s.n && idx-s.n <= maxAhead {
			s.generateLocked(idx + batchMax)
		}
		if c.next < s.oldestLocked() {
			// This reader fell out of the retention window: drop it, as the real
			// service does; its reconnect gets 416.
			s.mu.Unlock()
			return
		}
		recs = recs[:0]
		if idx < s.n {
			end := min(s.n, idx+batchMax)
			recs = append(recs, s.recs[idx-s.recBase:end-s.recBase]...)
		}
		ch, due := s.changed, s.nextDueLocked()
		s.mu.Unlock()

		if len(recs) == 0 {
			t := time.NewTimer(due)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-life.C:
				t.Stop()
				return
			case <-hb.C:
				t.Stop()
				if !c.write([]byte("\n")) || c.rc.Flush() != nil {
					return
				}
			case <-ch:
				t.Stop()
			case <-t.C:
			}
			continue
		}

		for k, rc := range recs {
			idx := c.next - s.cfg.FirstTimepoint
			if oversizePending {
				oversizePending = false
				c.buf = s.appendOversize(c.buf[:0], idx, rc, f.OversizeBytes)
				if !c.write(c.buf) {
					return
				}
			}
			select { // heartbeats go on while events flow
			case <-hb.C:
				if !c.write([]byte("\n")) {
					return
				}
			default:
			}
			c.buf = s.appendLine(c.buf[:0], idx, rc, 0)
			if tricklePending {
				tricklePending = false
				if !c.trickle(ctx, c.buf, f.TrickleDelay) {
					return
				}
				c.lines++
				c.next++
				continue
			}
			c.lines++
			c.next++
			if every(f.CutEvery, c.lines) {
				c.write(c.buf[:len(c.buf)/2])
				_ = c.rc.Flush()
				panic(http.ErrAbortHandler) // the server drops the TCP connection
			}
			if !c.write(c.buf) {
				return
			}
			if every(f.ReplayEvery, c.lines) && !c.write(c.buf) {
				return
			}
			if every(f.AbsurdEvery, c.lines) && !c.write(absurdLine(c.buf)) {
				return
			}
			if every(f.NotJSONEvery, c.lines) && !c.write([]byte(garbage[(c.lines/int64(f.NotJSONEvery)-1)%int64(len(garbage))])) {
				return
			}
			if every(f.OversizeEvery, c.lines) {
				oversizePending = true
			}
			if every(f.TrickleEvery, c.lines) {
				tricklePending = true
			}
			// Flush at the live edge and before a stall; during catch-up the
			// response buffer fills and goes out by itself.
			last := k == len(recs)-1
			if last || every(f.StallEvery, c.lines) {
				if c.rc.Flush() != nil {
					return
				}
			}
			if every(f.StallEvery, c.lines) {
				t := time.NewTimer(f.StallFor)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				hb.Reset(s.cfg.Heartbeat)
			}
			select {
			case <-ctx.Done():
				return
			case <-life.C:
				_ = c.rc.Flush()
				return
			default:
			}
		}
	}
}

// trickle sends line a byte at a time, delay apart, flushing each: a
// connection that never goes idle yet delivers almost nothing.
func (c *streamConn) trickle(ctx context.Context, line []byte, delay time.Duration) bool {
	if c.rc.Flush() != nil {
		return false
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for i := range line {
		if !c.write(line[i:i+1]) || c.rc.Flush() != nil {
			return false
		}
		t.Reset(delay)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

func (c *streamConn) write(b []byte) bool {
	_, err := c.w.Write(b)
	return err == nil
}
