package api

import (
	"context"
	"time"

	"github.com/chwatch/chwatch/company"
)

// PageSize is the items_per_page the client asks for; the server may grant
// fewer, and says so in its answer.
const PageSize = 100

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

// Officers reads every page of a company's officer list (readList says
// how). A 404 for the list and an empty 200 are both zero officers.
func (c *Client) Officers(ctx context.Context, number string) (OfficerList, error) {
	op := "get officers of " + printable(number, 40)
	if err := checkNumber(op, number); err != nil {
		return OfficerList{}, err
	}
	l, err := readList(ctx, c, op, "officer list", "/company/"+number+"/officers", company.ParseOfficer,
		func(o company.Officer) string { return o.ID })
	if err != nil {
		return OfficerList{}, err
	}
	return OfficerList{Officers: l.items, Found: l.found, Total: l.total, ActiveCount: l.active, Pages: l.pages, Date: l.date}, nil
}
