package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/chwatch/chwatch/api"
	chco "github.com/chwatch/chwatch/company"
	"github.com/matryer/is"
)

// Every strike-off company's filing history, read page by page through the
// client, decides to what the simulator says is true; every shape the
// issue names is among them.
func TestFilingHistoriesMatchTruth(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 9, Companies: 4000, StrikeOffShare: 0.25, APIRateLimit: 1_000_000, API: APIFaults{PageCap: 10}})
	is.NoErr(s.WaitPublished(context.Background(), s.cfg.FirstTimepoint+40_000)) // entries, exits and re-entries
	srv := serve(t, s)
	c, err := api.New(api.Config{URL: srv.URL, Key: "k"})
	is.NoErr(err)
	saw := map[string]int{}
	for _, num := range s.CompanyNumbers() {
		_, st, ok := s.filingState(num)
		if !ok || st.status != stStrikeOff {
			continue
		}
		truth := s.Filings(num)
		h, err := c.FilingHistory(context.Background(), num)
		is.NoErr(err)
		is.Equal(len(h.Filings), truth.Items) // other categories are filtered out
		for _, f := range h.Filings {
			is.True(f.Category == "gazette" || f.Category == "dissolution")
		}
		got := chco.DecideStrikeOff(h.Filings)
		is.Equal(got.Kind, truth.Kind)
		is.Equal(got.NoticeOn, truth.NoticeOn)
		is.Equal(got.DueOn, truth.DueOn)
		is.Equal(got.SuspendedAt, truth.SuspendedAt)
		var unk []string
		for _, u := range got.Unknown {
			unk = append(unk, u.Description)
		}
		is.Equal(unk, truth.Unknown)

		saw[truth.Kind]++
		switch {
		case truth.SuspendedAt != "":
			saw["suspended"]++
		case truth.NoticeOn == "":
			saw["no notice"]++
		}
		if len(truth.Unknown) > 0 {
			saw["unknown descriptions"]++
		}
		if truth.Notices > 1 {
			saw["several notices"]++
		}
		if st.entries > 1 {
			saw["re-entered while running"]++
		}
		if h.Pages > 1 {
			saw["paged"]++
		}
		for _, f := range h.Filings {
			if f.Description == "gazette-notice-compulsary" {
				saw["compulsary"]++
			}
			if slices.Contains([]string{"gazette-filings-brought-up-to-date", "dissolution-voluntary-strike-off-discontinued"}, f.Description) {
				saw["discontinued"]++
			}
		}

	}
	t.Log(saw)
	for _, k := range []string{"voluntary", "compulsory", "unknown", "suspended", "no notice", "unknown descriptions", "several notices",
		"re-entered while running", "paged", "compulsary", "discontinued"} {
		if saw[k] == 0 {
			t.Errorf("no strike-off company with %s", k)
		}
	}
}

func TestFilingHistoryShape(t *testing.T) {
	is := is.New(t)
	s := mustSim(t, Config{Seed: 9, Companies: 500, StrikeOffShare: 0.3, APIRateLimit: 1000})
	srv := serve(t, s)
	var num string
	for _, n := range s.CompanyNumbers() {
		if tr := s.Filings(n); tr.NoticeOn != "" {
			num = n
			break
		}
	}
	is.True(num != "")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/company/"+num+"/filing-history?items_per_page=1", nil)
	req.SetBasicAuth("k", "")
	resp, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	defer resp.Body.Close()
	is.Equal(resp.StatusCode, 200)
	var l filingList
	is.NoErr(json.NewDecoder(resp.Body).Decode(&l))
	is.Equal(l.Kind, "filing-history")
	is.Equal(l.Status, "filing-history-available")
	is.Equal(l.ItemsPerPage, 1)
	is.Equal(len(l.Items), 1)
	is.True(l.TotalCount > s.Filings(num).Items) // unfiltered: other categories too
	it := l.Items[0]
	is.True(it.TransactionID != "" && it.Date != "" && it.Type != "" && it.Description != "")
	is.Equal(it.Links.Self, "/company/"+num+"/filing-history/"+it.TransactionID)

	resp404, err := http.Get(srv.URL + "/company/ZZ999999/filing-history")
	is.NoErr(err)
	resp404.Body.Close()
	is.True(resp404.StatusCode == 404 || resp404.StatusCode == 401)
}
