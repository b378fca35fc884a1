package api

import (
	"context"
	"time"

	"github.com/chwatch/chwatch/company"
)

// PSCList is every page of GET /company/{number}/persons-with-significant-control.
type PSCList struct {
	// PSCs holds every item of every page once (the first copy, by
	// links.self), in list order, each with its raw JSON: active and
	// ceased alike (ceased ones carry ceased_on).
	PSCs []company.PSC
	// Found is false when the list answered Companies House's 404 (the
	// company is not known to the PSC register): no PSCs. A company with
	// none answers an empty 200.
	Found bool
	// Total, ActiveCount and CeasedCount are total_results, active_count
	// and ceased_count as last sent, -1 when absent.
	Total, ActiveCount, CeasedCount int
	Pages                           int       // pages read
	Date                            time.Time // the last answer's Date
}

// PSCs reads every page of a company's list of persons with significant
// control, as Officers reads officers (readList says how). Statements
// ("no registrable person") are another list, not read here.
func (c *Client) PSCs(ctx context.Context, number string) (PSCList, error) {
	op := "get PSCs of " + printable(number, 40)
	if err := checkNumber(op, number); err != nil {
		return PSCList{}, err
	}
	l, err := readList(ctx, c, op, "PSC list", "/company/"+number+"/persons-with-significant-control", company.ParsePSC,
		func(p company.PSC) string { return p.ID })
	if err != nil {
		return PSCList{}, err
	}
	return PSCList{PSCs: l.items, Found: l.found, Total: l.total, ActiveCount: l.active, CeasedCount: l.ceased, Pages: l.pages, Date: l.date}, nil
}
