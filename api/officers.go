package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/chwatch/chwatch/company"
)

// PageSize is the items_per_page the client asks for; the server may grant
// fewer, and says so in its answer.
const PageSize = 100

// maxPages bounds one list: 1,000 pages of even 35 officers is far beyond
// any company.
const maxPages = 1000

// OfficerList is every page of GET /company/{number}/officers.
type OfficerList struct {
	// Officers holds every item of every page once (the first copy, by
	// links.self: the list's order has no unique tie-break, so an item can
	// appear on two pages), in list order, each with its raw JSON.
	Officers []company.Officer
	// Found is false when the list answered 404, the older way of saying
	// "no officers". An empty 200 is Found with no officers.
	Found bool
	// Total is total_results as last sent, -1 when the answers lacked it.
	Total int
	// ActiveCount is active_count as last sent, -1 when absent. A dissolved
	// company's is 0 while its former officers may lack resigned_on.
	ActiveCount int
	Pages       int       // pages read
	Date        time.Time // the last answer's Date
}

type officerPage struct {
	TotalResults *int              `json:"total_results"`
	ItemsPerPage int               `json:"items_per_page"`
	ActiveCount  *int              `json:"active_count"`
	Items        []json.RawMessage `json:"items"`
}

// Officers reads every page of a company's officer list, asking for
// PageSize items a page and moving on by the items_per_page the server
// answers. It stops at an empty page, at total_results, or after a short
// page. A 404 for the list and an empty 200 are both zero officers.
func (c *Client) Officers(ctx context.Context, number string) (OfficerList, error) {
	op := "get officers of " + printable(number, 40)
	if err := checkNumber(op, number); err != nil {
		return OfficerList{}, err
	}
	out := OfficerList{Found: true, Total: -1, ActiveCount: -1}
	seen := map[string]bool{}
	for start := 0; ; {
		if out.Pages == maxPages {
			return OfficerList{}, &Error{Kind: ErrBadResponse, Op: op, Detail: fmt.Sprintf("more than %d pages", maxPages)}
		}
		pageOp := op
		if start > 0 {
			pageOp += " from " + strconv.Itoa(start)
		}
		a, err := c.get(ctx, pageOp, "/company/"+number+"/officers?items_per_page="+strconv.Itoa(PageSize)+"&start_index="+strconv.Itoa(start))
		if err != nil {
			return OfficerList{}, err
		}
		out.Date = a.date
		switch {
		case a.status == http.StatusNotFound && start == 0 && companiesHouseJSON(a.body):
			return OfficerList{Total: 0, ActiveCount: 0, Date: a.date}, nil
		case a.status == http.StatusNotFound && start == 0:
			e := c.refused(pageOp, a)
			e.Detail = "404 that is not Companies House's (is api.url right?): " + e.Detail
			return OfficerList{}, e
		case a.status == http.StatusNotFound:
			// The list vanished mid-way (the company was removed): the
			// pages read so far are not a list; the job tries again.
			return OfficerList{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "the list vanished after " + strconv.Itoa(start) + " items"}
		case a.status != http.StatusOK:
			return OfficerList{}, c.refused(pageOp, a)
		}
		var p officerPage
		if err := json.Unmarshal(a.body, &p); err != nil {
			return OfficerList{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "decode officer list: " + err.Error(), Err: err}
		}
		out.Pages++
		if p.TotalResults != nil {
			out.Total = *p.TotalResults
		}
		if p.ActiveCount != nil {
			out.ActiveCount = *p.ActiveCount
		}
		if len(p.Items) == 0 {
			break // asking past the end gives the same empty 200
		}
		fresh := 0
		for _, raw := range p.Items {
			o, err := company.ParseOfficer(raw)
			if err != nil {
				return OfficerList{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: err.Error(), Err: err}
			}
			if !seen[o.ID] {
				seen[o.ID] = true
				out.Officers = append(out.Officers, o)
				fresh++
			}
		}
		per := p.ItemsPerPage // the server may cap what was asked for
		if per <= 0 {
			per = len(p.Items)
		}
		start += per
		if (out.Total >= 0 && start >= out.Total) || len(p.Items) < per {
			break
		}
		if fresh == 0 {
			// A full page of items already seen: the server is not
			// paging; a partial list must not pass for the whole.
			return OfficerList{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "a full page repeats earlier items only (start_index ignored?)"}
		}
	}
	return out, nil
}

// companiesHouseJSON tells Companies House's 404 for an empty list (a JSON
// object, or nothing at all) from a web server's error page.
func companiesHouseJSON(body []byte) bool {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return true
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(body, &m) == nil
}
