package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/chwatch/chwatch/api"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// findPSCs returns the first company of the register whose PSC list pred
// accepts.
func findPSCs(tb testing.TB, s *sim.Sim, pred func(sim.PSCList) bool) string {
	tb.Helper()
	for _, n := range s.CompanyNumbers() {
		if pred(s.PSCs(n)) {
			return n
		}
	}
	tb.Fatal("no company of the simulated register fits")
	return ""
}

// Every page of the simulator's PSC lists, whatever their shape, with no
// request wasted or missed.
func TestPSCs(t *testing.T) {
	ceased := func(l sim.PSCList) int {
		n := 0
		for _, p := range l.PSCs {
			if p.CeasedOn != "" {
				n++
			}
		}
		return n
	}
	shapes := []struct {
		name string
		pred func(sim.PSCList) bool
	}{
		{"MoreThanOnePage", func(l sim.PSCList) bool { return len(l.PSCs) > api.PageSize }},
		{"AFewWithCeased", func(l sim.PSCList) bool { return len(l.PSCs) > 2 && len(l.PSCs) < 10 && ceased(l) > 0 }},
		{"Empty200", func(l sim.PSCList) bool { return l.Found && len(l.PSCs) == 0 }},
		{"SuperSecure", func(l sim.PSCList) bool {
			for _, p := range l.PSCs {
				if p.Kind == "super-secure-person-with-significant-control" {
					return true
				}
			}
			return false
		}},
	}
	for _, faults := range []sim.APIFaults{{}, {PageCap: 35, OverlapPages: true}} {
		s, url := newSim(t, sim.Config{Seed: 7, Companies: 20_000, API: faults})
		c := newClient(t, api.Config{URL: url})
		for _, sh := range shapes {
			t.Run(fmt.Sprintf("cap%d/%s", faults.PageCap, sh.name), func(t *testing.T) {
				is := is.New(t)
				num := findPSCs(t, s, sh.pred)
				before := s.RESTStats().Requests
				l, err := c.PSCs(context.Background(), num)
				is.NoErr(err)
				truth := s.PSCs(num)
				is.True(l.Found)
				is.Equal(len(l.PSCs), len(truth.PSCs))
				for i, want := range truth.PSCs {
					p := l.PSCs[i]
					is.Equal(p.ID, want.ID)
					is.Equal(p.Kind, want.Kind)
					is.Equal(p.Name, want.Name)
					is.Equal(p.CeasedOn, want.CeasedOn)
					is.Equal(p.NotifiedOn, want.NotifiedOn)
					is.Equal(len(p.NaturesOfControl), len(want.NaturesOfControl))
				}
				is.Equal(l.Total, len(truth.PSCs))
				is.Equal(l.CeasedCount, ceased(truth))
				is.Equal(l.ActiveCount, len(truth.PSCs)-ceased(truth))
				per := api.PageSize
				if faults.PageCap > 0 {
					per = faults.PageCap
				}
				want := max(1, (len(truth.PSCs)+per-1)/per)
				is.Equal(s.RESTStats().Requests-before, int64(want))
				is.Equal(l.Pages, want)
			})
		}
	}
	t.Run("UnknownCompany404", func(t *testing.T) {
		is := is.New(t)
		_, url := newSim(t, sim.Config{Seed: 7})
		l, err := newClient(t, api.Config{URL: url}).PSCs(context.Background(), "ZZ999999")
		is.NoErr(err) // a result: no PSCs
		is.True(!l.Found)
		is.Equal(len(l.PSCs), 0)
	})
}

// pscServer serves a hand-written PSC list of n items in pages of at most
// pageCap, recording every start_index asked for.
type pscServer struct {
	n, pageCap int
	noTotal    bool
	ignore     bool // ignore start_index: always the first page
	mu         *sync.Mutex
	starts     []int
}

func (p *pscServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start, _ := strconv.Atoi(r.URL.Query().Get("start_index"))
	per, _ := strconv.Atoi(r.URL.Query().Get("items_per_page"))
	p.mu.Lock()
	p.starts = append(p.starts, start)
	p.mu.Unlock()
	if p.ignore {
		start = 0
	}
	per = min(per, p.pageCap)
	items := []map[string]any{}
	for i := start; i < min(start+per, p.n); i++ {
		items = append(items, map[string]any{
			"kind": "individual-person-with-significant-control", "name": fmt.Sprintf("Person %d", i),
			"natures_of_control": []string{"significant-influence-or-control"}, "notified_on": "2016-04-06",
			"links": map[string]string{"self": fmt.Sprintf("/company/00000006/persons-with-significant-control/individual/id%03d", i)},
		})
	}
	body := map[string]any{"items": items, "items_per_page": per, "start_index": start, "active_count": p.n, "ceased_count": 0}
	if !p.noTotal {
		body["total_results"] = p.n
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

func TestPSCsPaging(t *testing.T) {
	tests := []struct {
		name   string
		srv    pscServer
		starts []int
		err    error
	}{
		{"OnePage", pscServer{n: 3, pageCap: 100}, []int{0}, nil},
		{"ByTheGrantedPageSize", pscServer{n: 250, pageCap: 100}, []int{0, 100, 200}, nil},
		{"GatewayCapsThePage", pscServer{n: 70, pageCap: 30}, []int{0, 30, 60}, nil},
		{"NoTotalEndsOnAShortPage", pscServer{n: 70, pageCap: 30, noTotal: true}, []int{0, 30, 60}, nil},
		{"NoTotalEndsOnAnEmptyPage", pscServer{n: 60, pageCap: 30, noTotal: true}, []int{0, 30, 60}, nil},
		{"Empty", pscServer{n: 0, pageCap: 100}, []int{0}, nil},
		{"StartIndexIgnored", pscServer{n: 250, pageCap: 100, ignore: true}, []int{0, 100}, api.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			tt.srv.mu = &sync.Mutex{}
			srv := httptest.NewServer(&tt.srv)
			defer srv.Close()
			l, err := newClient(t, api.Config{URL: srv.URL}).PSCs(context.Background(), "00000006")
			is.Equal(tt.srv.starts, tt.starts)
			if tt.err != nil {
				is.True(errors.Is(err, tt.err)) // a partial list never passes for the whole
				return
			}
			is.NoErr(err)
			is.Equal(len(l.PSCs), tt.srv.n)
			for i, p := range l.PSCs {
				is.Equal(p.ID, fmt.Sprintf("id%03d", i)) // in order, once each
			}
		})
	}
}
