package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// maxPages bounds one list: 1,000 pages of even 35 items is far beyond
// any company.
const maxPages = 1000

// listPage is what every paged Companies House list (officers, persons
// with significant control) answers; absent counts stay nil.
type listPage struct {
	TotalResults *int              `json:"total_results"`
	ItemsPerPage int               `json:"items_per_page"`
	ActiveCount  *int              `json:"active_count"`
	CeasedCount  *int              `json:"ceased_count"`
	Items        []json.RawMessage `json:"items"`
}

// list is every page of one paged list, its items parsed.
type list[T any] struct {
	items  []T
	found  bool // false: the list answered Companies House's 404
	total  int  // total_results as last sent, -1 when absent
	active int  // active_count as last sent, -1 when absent
	ceased int  // ceased_count as last sent, -1 when absent
	pages  int
	date   time.Time
}

// readList reads every page of the list at path (which has no query),
// asking for PageSize items a page and moving on by the items_per_page the
// server answers. It stops at an empty page (asking past the end gives the
// same empty 200), at total_results, or after a short page. Items are
// de-duplicated by id (the first copy kept): the lists' order has no
// unique tie-break, so an item can appear on two pages. A 404 for the
// first page that Companies House sent is a result (found false, no
// items); what is 404 means depends on the list, and the caller says.
func readList[T any](ctx context.Context, c *Client, op, what, path string, parse func([]byte) (T, error), id func(T) string) (list[T], error) {
	out := list[T]{found: true, total: -1, active: -1, ceased: -1}
	seen := map[string]bool{}
	for start := 0; ; {
		if out.pages == maxPages {
			return list[T]{}, &Error{Kind: ErrBadResponse, Op: op, Detail: fmt.Sprintf("more than %d pages", maxPages)}
		}
		pageOp := op
		if start > 0 {
			pageOp += " from " + strconv.Itoa(start)
		}
		a, err := c.get(ctx, pageOp, path+"?items_per_page="+strconv.Itoa(PageSize)+"&start_index="+strconv.Itoa(start))
		if err != nil {
			return list[T]{}, err
		}
		out.date = a.date
		switch {
		case a.status == http.StatusNotFound && start == 0 && companiesHouseJSON(a.body):
			return list[T]{total: 0, active: 0, ceased: 0, date: a.date}, nil
		case a.status == http.StatusNotFound && start == 0:
			e := c.refused(pageOp, a)
			e.Detail = "404 that is not Companies House's (is api.url right?): " + e.Detail
			return list[T]{}, e
		case a.status == http.StatusNotFound:
			// The list vanished mid-way (the company was removed): the
			// pages read so far are not a list; the job tries again.
			return list[T]{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "the list vanished after " + strconv.Itoa(start) + " items"}
		case a.status != http.StatusOK:
			return list[T]{}, c.refused(pageOp, a)
		}
		var p listPage
		if err := json.Unmarshal(a.body, &p); err != nil {
			return list[T]{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "decode " + what + ": " + err.Error(), Err: err}
		}
		out.pages++
		if p.TotalResults != nil {
			out.total = *p.TotalResults
		}
		if p.ActiveCount != nil {
			out.active = *p.ActiveCount
		}
		if p.CeasedCount != nil {
			out.ceased = *p.CeasedCount
		}
		if len(p.Items) == 0 {
			break
		}
		fresh := 0
		for _, raw := range p.Items {
			item, err := parse(raw)
			if err != nil {
				return list[T]{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: err.Error(), Err: err}
			}
			if k := id(item); !seen[k] {
				seen[k] = true
				out.items = append(out.items, item)
				fresh++
			}
		}
		per := p.ItemsPerPage // the server may cap what was asked for
		if per <= 0 {
			per = len(p.Items)
		}
		start += per
		if (out.total >= 0 && start >= out.total) || len(p.Items) < per {
			break
		}
		if fresh == 0 {
			// A full page of items already seen: the server is not
			// paging; a partial list must not pass for the whole.
			return list[T]{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "a full page repeats earlier items only (start_index ignored?)"}
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
