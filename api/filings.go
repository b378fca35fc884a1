package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/chwatch/chwatch/company"
)

// FilingCategories are the filing-history categories a strike-off is told
// from: the Gazette notices, and the applications, suspensions and
// discontinuations of strike-off.
const FilingCategories = "gazette,dissolution"

// FilingHistory is every page of GET
// /company/{number}/filing-history?category=gazette,dissolution.
type FilingHistory struct {
	// Filings holds every item of every page once (the first copy, by
	// transaction_id), in list order (newest first), each with its raw JSON.
	Filings []company.Filing
	// Found is false when the history answered 404 (an unknown company, or
	// one without filings): an empty history, a result.
	Found bool
	// Total is total_count as last sent, -1 when the answers lacked it.
	Total int
	// Status is filing_history_status as sent (filing-history-available, ...).
	Status string
	Pages  int       // pages read
	Date   time.Time // the last answer's Date
}

type filingPage struct {
	TotalCount   *int              `json:"total_count"`
	ItemsPerPage int               `json:"items_per_page"`
	StartIndex   int               `json:"start_index"`
	Status       string            `json:"filing_history_status"`
	Items        []json.RawMessage `json:"items"`
}

// FilingHistory reads every page of a company's gazette and dissolution
// filings, paging as Officers does: PageSize items asked for, moving on by
// the items_per_page answered, stopping at an empty page, at total_count, or
// after a short page. A 404 for the list is an empty history.
func (c *Client) FilingHistory(ctx context.Context, number string) (FilingHistory, error) {
	op := "get filing history of " + printable(number, 40)
	if err := checkNumber(op, number); err != nil {
		return FilingHistory{}, err
	}
	out := FilingHistory{Found: true, Total: -1}
	seen := map[string]bool{}
	for start := 0; ; {
		if out.Pages == maxPages {
			return FilingHistory{}, &Error{Kind: ErrBadResponse, Op: op, Detail: fmt.Sprintf("more than %d pages", maxPages)}
		}
		pageOp := op
		if start > 0 {
			pageOp += " from " + strconv.Itoa(start)
		}
		a, err := c.get(ctx, pageOp, "/company/"+number+"/filing-history?category="+FilingCategories+
			"&items_per_page="+strconv.Itoa(PageSize)+"&start_index="+strconv.Itoa(start))
		if err != nil {
			return FilingHistory{}, err
		}
		out.Date = a.date
		switch {
		case a.status == http.StatusNotFound && start == 0 && companiesHouseJSON(a.body):
			return FilingHistory{Total: 0, Date: a.date}, nil
		case a.status == http.StatusNotFound && start == 0:
			e := c.refused(pageOp, a)
			e.Detail = "404 that is not Companies House's (is api.url right?): " + e.Detail
			return FilingHistory{}, e
		case a.status == http.StatusNotFound:
			return FilingHistory{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "the list vanished after " + strconv.Itoa(start) + " items"}
		case a.status != http.StatusOK:
			return FilingHistory{}, c.refused(pageOp, a)
		}
		var p filingPage
		if err := json.Unmarshal(a.body, &p); err != nil {
			return FilingHistory{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "decode filing history: " + err.Error(), Err: err}
		}
		out.Pages++
		out.Status = p.Status
		if p.TotalCount != nil {
			out.Total = *p.TotalCount
		}
		if len(p.Items) == 0 {
			break
		}
		fresh := 0
		for _, raw := range p.Items {
			f, err := company.ParseFiling(raw)
			if err != nil {
				return FilingHistory{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: err.Error(), Err: err}
			}
			if !seen[f.TransactionID] {
				seen[f.TransactionID] = true
				out.Filings = append(out.Filings, f)
				fresh++
			}
		}
		per := p.ItemsPerPage
		if per <= 0 {
			per = len(p.Items)
		}
		start += per
		if (out.Total >= 0 && start >= out.Total) || len(p.Items) < per {
			break
		}
		if fresh == 0 {
			return FilingHistory{}, &Error{Kind: ErrBadResponse, Op: pageOp, Status: a.status, Detail: "a full page repeats earlier items only (start_index ignored?)"}
		}
	}
	return out, nil
}
