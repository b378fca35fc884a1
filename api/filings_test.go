package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/chwatch/chwatch/api"
	"github.com/matryer/is"
)

// countingLimiter counts the requests it lets through.
type countingLimiter struct{ acquired, observed atomic.Int64 }

func (l *countingLimiter) Acquire(context.Context) (api.Ticket, error) {
	return api.Ticket(l.acquired.Add(1)), nil
}
func (l *countingLimiter) Observe(api.Ticket, api.Observation) { l.observed.Add(1) }

// filingServer serves n items of filing history, granting at most capPer a
// page, as Companies House's answer is shaped; overlap repeats the previous
// page's last item first (the list's order has no unique tie-break).
func filingServer(t *testing.T, n, capPer int, overlap bool) (*httptest.Server, *[]string) {
	var urls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		urls = append(urls, r.URL.String())
		if r.URL.Path != "/company/00000006/filing-history" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if q.Get("category") != "gazette,dissolution" {
			t.Errorf("category = %q", q.Get("category"))
		}
		per, _ := strconv.Atoi(q.Get("items_per_page"))
		start, _ := strconv.Atoi(q.Get("start_index"))
		per = min(per, capPer)
		items := []map[string]any{}
		from := start
		if overlap && start > 0 {
			from--
		}
		for i := from; i < min(start+per, n); i++ {
			items = append(items, map[string]any{
				"category": "gazette", "date": fmt.Sprintf("2026-%02d-01", 12-i%12), "description": "gazette-notice-compulsory",
				"type": "GAZ1", "transaction_id": "TX" + strconv.Itoa(i), "description_values": map[string]string{},
				"links": map[string]string{"self": "/company/00000006/filing-history/TX" + strconv.Itoa(i)}, "pages": 1,
			})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"etag": "e", "filing_history_status": "filing-history-available", "kind": "filing-history",
			"items_per_page": per, "start_index": start, "total_count": n, "items": items,
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &urls
}

func TestFilingHistoryPages(t *testing.T) {
	for _, c := range []struct {
		name       string
		n, per     int
		overlap    bool
		wantPages  int
		wantStarts []string
	}{
		{name: "one page", n: 4, per: 100, wantPages: 1},
		{name: "empty", n: 0, per: 100, wantPages: 1},
		{name: "capped at 3", n: 7, per: 3, wantPages: 3},
		{name: "exact pages", n: 6, per: 3, wantPages: 2},
		{name: "overlapping pages", n: 7, per: 3, overlap: true, wantPages: 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			srv, urls := filingServer(t, c.n, c.per, c.overlap)
			lim := &countingLimiter{}
			cl := newClient(t, api.Config{URL: srv.URL, Key: testKey, Limiter: lim})
			h, err := cl.FilingHistory(context.Background(), "00000006")
			is.NoErr(err)
			is.True(h.Found)
			is.Equal(h.Total, c.n)
			is.Equal(h.Pages, c.wantPages)
			is.Equal(h.Status, "filing-history-available")
			is.Equal(len(h.Filings), c.n) // every item once, repeats dropped
			for i, f := range h.Filings {
				is.Equal(f.TransactionID, "TX"+strconv.Itoa(i)) // in list order
				is.Equal(f.Description, "gazette-notice-compulsory")
				is.True(len(f.Raw) > 0)
			}
			is.Equal(lim.acquired.Load(), int64(c.wantPages)) // every page through the budget
			is.Equal(lim.observed.Load(), int64(c.wantPages))
			is.Equal(len(*urls), c.wantPages)
		})
	}
}

func TestFilingHistoryNotFound(t *testing.T) {
	is := is.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/company/00000001/filing-history" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[{"error":"filing-history-not-found","type":"ch:service"}]}`))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<html>nginx 404</html>"))
	}))
	defer srv.Close()
	cl := newClient(t, api.Config{URL: srv.URL, Key: testKey})
	h, err := cl.FilingHistory(context.Background(), "00000001")
	is.NoErr(err)
	is.True(!h.Found)
	is.Equal(len(h.Filings), 0)

	_, err = cl.FilingHistory(context.Background(), "00000002") // a web server's 404 is no answer
	is.True(err != nil)
	_, err = cl.FilingHistory(context.Background(), "../etc")
	is.True(errors.Is(err, api.ErrBadNumber))
}

// A server that ignores start_index would repeat page one forever.
func TestFilingHistoryNotPaging(t *testing.T) {
	is := is.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items_per_page":2,"start_index":0,"items":[{"transaction_id":"A"},{"transaction_id":"B"}]}`))
	}))
	defer srv.Close()
	cl := newClient(t, api.Config{URL: srv.URL, Key: testKey})
	_, err := cl.FilingHistory(context.Background(), "00000006")
	is.True(errors.Is(err, api.ErrBadResponse))
}
