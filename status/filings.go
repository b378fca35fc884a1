package status

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// Filings is what filing checks found about the strike-off companies: why
// (the kinds), when (the dissolutions due by month), the backfill of the
// upgrade that brought them, and the filing items chwatch could not read.
// Everything comes from counters kept with the rows, and a few rows of the
// small filing_unknowns table.
type Filings struct {
	// Kinds counts strike-off companies by strike_off_kind; Checked is
	// their sum (companies in strike-off whose filing history was read).
	Kinds     map[string]int64 `json:"kinds"`
	Checked   int64            `json:"checked"`
	Suspended int64            `json:"suspended"`
	// Due counts strike-off companies, not suspended, whose
	// dissolution_due_on falls in each month (YYYY-MM); Overdue those due
	// before this month (still in strike-off: Companies House has not
	// dissolved them yet), ThisMonth and NextMonth the next two.
	Due       map[string]int64 `json:"due_by_month"`
	Overdue   int64            `json:"due_before_this_month"`
	ThisMonth int64            `json:"due_this_month"`
	NextMonth int64            `json:"due_next_month"`
	// Backfill is how many companies already in strike-off the upgrade to
	// filing checks queued; Pending the filing checks queued or running now
	// (the backfill's and new entries').
	Backfill int64 `json:"backfill"`
	Pending  int64 `json:"pending"`
	// UnknownItems are the filing items of a description chwatch does not
	// recognise, kept raw in filing_unknowns; UnknownDescriptions a few of
	// their descriptions.
	UnknownItems        int64    `json:"unknown_items"`
	UnknownDescriptions []string `json:"unknown_descriptions"`
}

// unknownShown is how many unknown descriptions the screen names.
const unknownShown = 5

// readFilings: the filing counters, and a few unknown descriptions.
func (r *Report) readFilings(ctx context.Context, s source) error {
	short, err := db.CountersPrefix(ctx, s.tx, company.CounterFilingPrefix)
	if err != nil {
		return err
	}
	c := make(map[string]int64, len(short)) // by full name, as company names them
	for k, v := range short {
		c[company.CounterFilingPrefix+k] = v
	}
	f := Filings{Kinds: map[string]int64{}, Due: map[string]int64{}, UnknownDescriptions: []string{}}
	for _, k := range []string{company.KindVoluntary, company.KindCompulsory, company.KindUnknown} {
		f.Kinds[k] = c[company.CounterFilingKind(k)]
		f.Checked += f.Kinds[k]
	}
	f.Suspended, f.Backfill, f.UnknownItems = c[company.CounterFilingSuspended], c[company.CounterFilingBackfill], c[company.CounterFilingUnknown]
	y, m, _ := s.now.UTC().Date()
	this := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	next := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	for name, n := range c {
		month, ok := strings.CutPrefix(name, company.CounterFilingDuePrefix)
		if !ok || n == 0 {
			continue
		}
		f.Due[month] = n
		switch {
		case month < this:
			f.Overdue += n
		case month == this:
			f.ThisMonth += n
		case month == next:
			f.NextMonth += n
		}
	}
	f.Pending = r.REST.Jobs.Count(queue.FilingCheck, queue.StateQueued) + r.REST.Jobs.Count(queue.FilingCheck, queue.StateRunning)
	if f.UnknownItems > 0 {
		rows, err := s.tx.QueryContext(ctx, "SELECT description FROM filing_unknowns GROUP BY description ORDER BY count(*) DESC, description LIMIT ?", unknownShown)
		if err != nil {
			return fmt.Errorf("read unknown filing descriptions: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				return fmt.Errorf("read unknown filing descriptions: %w", err)
			}
			f.UnknownDescriptions = append(f.UnknownDescriptions, d)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read unknown filing descriptions: %w", err)
		}
	}
	r.Filings = f
	return nil
}

// filings prints why and when the strike-off companies go, in a row or
// three.
func (p *printer) filings() {
	f, r := p.r.Filings, p.r
	if f.Checked == 0 && f.Pending == 0 && f.UnknownItems == 0 {
		return
	}
	p.row("strike-off", "%s of %s checked: %s voluntary, %s compulsory, %s unknown; %s suspended",
		count(f.Checked), count(r.StrikeOff), count(f.Kinds[company.KindVoluntary]), count(f.Kinds[company.KindCompulsory]),
		count(f.Kinds[company.KindUnknown]), count(f.Suspended))
	p.row("", "due for dissolution: %s this month, %s next month, %s overdue (export strike-off --due-before DATE lists them)",
		count(f.ThisMonth), count(f.NextMonth), count(f.Overdue))
	if f.Backfill > 0 && f.Pending > 0 {
		p.row("", "backfill: %s companies already in strike-off were queued at the upgrade; %s filing checks still to run", count(f.Backfill), count(f.Pending))
	}
	if f.UnknownItems > 0 {
		d := append([]string(nil), f.UnknownDescriptions...)
		sort.Strings(d)
		p.row("", "%s of descriptions chwatch does not know, kept raw in filing_unknowns: %s",
			plural(f.UnknownItems, "filing item", "filing items"), strings.Join(d, ", "))
	}
}
