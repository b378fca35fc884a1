package sim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Hash domains of the filing histories, apart from gen.go's tags.
const (
	tagFilings uint64 = 0x46494c0000 + iota
	tagFilingsPrior
	tagFilingsCurrent
)

// Filing-history JSON, as GET /company/{n}/filing-history answers it.
type filingList struct {
	Etag         string       `json:"etag"`
	Status       string       `json:"filing_history_status"`
	Items        []filingItem `json:"items"`
	ItemsPerPage int          `json:"items_per_page"`
	Kind         string       `json:"kind"`
	StartIndex   int          `json:"start_index"`
	TotalCount   int          `json:"total_count"`
}

type filingItem struct {
	Category          string            `json:"category"`
	Subcategory       string            `json:"subcategory,omitempty"`
	Date              string            `json:"date"`
	ActionDate        string            `json:"action_date,omitempty"`
	Description       string            `json:"description"`
	DescriptionValues map[string]string `json:"description_values,omitempty"`
	Type              string            `json:"type"`
	TransactionID     string            `json:"transaction_id"`
	Barcode           string            `json:"barcode,omitempty"`
	Pages             int               `json:"pages"`
	PaperFiled        bool              `json:"paper_filed,omitempty"`
	Links             struct {
		Self             string `json:"self"`
		DocumentMetadata string `json:"document_metadata,omitempty"`
	} `json:"links"`
}

// FilingTruth is the simulator's truth about a company's strike-off as its
// filing history tells it: what a client that reads every page of the
// gazette and dissolution filings must conclude.
type FilingTruth struct {
	Found       bool   // false: the history answers 404 (an unknown or deleted company)
	Kind        string // voluntary | compulsory | unknown
	NoticeOn    string // the current strike-off's first-Gazette notice, "" when none is filed yet
	DueOn       string // the notice plus two calendar months, clamped to the month's end
	SuspendedAt string // a suspension or discontinuation filed after the notice
	// Unknown are the descriptions of the items a client cannot recognise.
	Unknown []string
	Items   int // items in the gazette and dissolution categories
	Notices int // first-Gazette notices among them (a re-entered company has several)
}

// filingState is what a company's filing history follows.
type filingState struct {
	status     uint8
	enteredPub uint32
	entries    uint8
}

func (s *Sim) filingState(n string) (uint32, filingState, bool) {
	ci, ok := s.byNum[n]
	if !ok {
		return 0, filingState{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	c := &s.cos[ci]
	return ci, filingState{status: c.cur.status, enteredPub: c.enteredPub, entries: c.entries}, !c.deleted
}

// history builds company ci's filing history, oldest first, and the truth
// about it. Every company may have older strike-offs that ended (paged for
// about 2%, with dozens); one in strike-off now has a current one whose kind
// and shape come from its hash: compulsory (a tenth spelt "compulsary"),
// voluntary after a DS01, a DS01 whose notice is not filed yet, a first-
// Gazette form of unknown description, or nothing filed at all; some are
// suspended or discontinued after the notice, and some hold an item of a
// description no client knows. A few items of other categories (accounts)
// are mixed in, which the category filter leaves out.
func (s *Sim) history(ci uint32, st filingState) ([]filingItem, FilingTruth) {
	num := s.statics[ci].num()
	var items []filingItem
	add := func(tag uint64, id uint64, category, typ, desc string, d time.Time) *filingItem {
		it := filingItem{Category: category, Type: typ, Description: desc, Date: d.Format(time.DateOnly), Pages: 1,
			TransactionID: idString(h4(s.seed, tag, uint64(ci), id))[:20]}
		it.Links.Self = "/company/" + num + "/filing-history/" + it.TransactionID
		it.Links.DocumentMetadata = "https://document-api.company-information.service.gov.uk/document/" + it.TransactionID
		if category == "gazette" {
			it.Barcode = "X" + strings.ToUpper(it.TransactionID[:7])
		}
		items = append(items, it)
		return &items[len(items)-1]
	}
	startDay := day(s.start0).Truncate(24 * time.Hour)
	tr := FilingTruth{Found: true, Kind: "unknown"}

	// Older strike-offs, each ended: discontinued, or dissolved and later restored.
	pr := rng{s: h3(s.seed, tagFilings, uint64(ci))}
	prior := 0
	switch u := pr.intn(100); {
	case u < 15:
		prior = 1
	case u < 20:
		prior = 2
	case u < 22:
		prior = 30 + pr.intn(30)
	}
	for j := prior; j >= 1; j-- {
		notice := startDay.AddDate(0, 0, -120-400*j-pr.intn(100))
		id := uint64(j) * 8
		add(tagFilingsPrior, id, "accounts", "AA", "accounts-with-accounts-type-micro-entity", notice.AddDate(0, 0, -200))
		switch pr.intn(3) {
		case 0:
			add(tagFilingsPrior, id+1, "gazette", "GAZ1", "gazette-notice-compulsory", notice)
			add(tagFilingsPrior, id+2, "gazette", "DISS40", "gazette-filings-brought-up-to-date", notice.AddDate(0, 0, 20+pr.intn(30)))
		case 1:
			add(tagFilingsPrior, id+1, "dissolution", "DS01", "dissolution-application-strike-off-company", notice.AddDate(0, 0, -10))
			add(tagFilingsPrior, id+2, "gazette", "GAZ1(A)", "gazette-notice-voluntary", notice)
			add(tagFilingsPrior, id+3, "dissolution", "DISS16(SOAD)", "dissolution-voluntary-strike-off-discontinued", notice.AddDate(0, 0, 10+pr.intn(30)))
		default:
			add(tagFilingsPrior, id+1, "gazette", "GAZ1", "gazette-notice-compulsary", notice)
			add(tagFilingsPrior, id+2, "gazette", "GAZ2", "gazette-dissolved-compulsory", notice.AddDate(0, 0, 70))
		}
		tr.Notices++
	}

	inNow := st.status == stStrikeOff
	if !inNow && st.entries == 0 {
		return items, s.finishTruth(items, tr)
	}
	// The current (or, after an exit, the last) strike-off.
	r := rng{s: h4(s.seed, tagFilings, uint64(ci), uint64(st.entries))}
	notice := startDay.AddDate(0, 0, -1-r.intn(55))
	if st.entries > 0 {
		notice = day(int64(st.enteredPub)).Truncate(24 * time.Hour)
	}
	id := uint64(st.entries) * 16
	hasNotice := true
	var kind string
	switch v := r.intn(100); {
	case v < 48:
		kind = "compulsory"
		desc := "gazette-notice-compulsory"
		if r.intn(10) == 0 {
			desc = "gazette-notice-compulsary"
		}
		add(tagFilingsCurrent, id+1, "gazette", "GAZ1", desc, notice)
	case v < 86:
		kind = "voluntary"
		add(tagFilingsCurrent, id+1, "dissolution", "DS01", "dissolution-application-strike-off-company", notice.AddDate(0, 0, -7-r.intn(21)))
		add(tagFilingsCurrent, id+2, "gazette", "GAZ1(A)", "gazette-notice-voluntary", notice)
	case v < 91:
		kind, hasNotice = "voluntary", false // the notice follows the DS01 within weeks
		add(tagFilingsCurrent, id+1, "dissolution", "DS01", "dissolution-application-strike-off-company", notice)
	case v < 95 || prior > 0:
		// (With older strike-offs, "nothing filed yet" would read as the
		// last of them, suspended: a client cannot tell the two apart.)
		kind = "unknown"
		add(tagFilingsCurrent, id+1, "gazette", "GAZ1", "gazette-notice-strike-off-pending-review", notice)
		tr.Unknown = append(tr.Unknown, "gazette-notice-strike-off-pending-review")
	default:
		kind, hasNotice = "unknown", false // nothing filed yet
	}
	if r.intn(20) == 0 {
		add(tagFilingsCurrent, id+3, "gazette", "GAZ(OBJ)", "gazette-objection-to-strike-off-received", notice)
		tr.Unknown = append(tr.Unknown, "gazette-objection-to-strike-off-received")
	}
	ended := ""
	switch {
	case !inNow && st.status == stDissolved && hasNotice:
		ended = "dissolved"
	case !inNow:
		ended = "discontinued"
	case hasNotice && r.intn(100) < 12:
		ended = "suspended"
	}
	if ended != "" {
		// Filed after the notice: days later for a notice older than the
		// simulator's start, the same day (listed first) for a newer one.
		at := notice
		if later := notice.AddDate(0, 0, r.intn(40)); !notice.After(startDay) && !later.After(startDay) {
			at = later
		}
		switch {
		case ended == "dissolved" && kind == "voluntary":
			add(tagFilingsCurrent, id+4, "gazette", "GAZ2(A)", "gazette-dissolved-voluntary", at)
		case ended == "dissolved":
			add(tagFilingsCurrent, id+4, "gazette", "GAZ2", "gazette-dissolved-compulsory", at)
		case kind == "voluntary" && r.intn(2) == 0:
			add(tagFilingsCurrent, id+4, "dissolution", "SOAS(A)", "dissolution-voluntary-strike-off-suspended", at)
		case kind == "voluntary":
			add(tagFilingsCurrent, id+4, "dissolution", "DISS16(SOAD)", "dissolution-voluntary-strike-off-discontinued", at)
		case r.intn(2) == 0:
			add(tagFilingsCurrent, id+4, "gazette", "SOAS(A)", "dissolved-compulsory-strike-off-suspended", at)
		default:
			add(tagFilingsCurrent, id+4, "gazette", "DISS40", "gazette-filings-brought-up-to-date", at)
		}
		if ended != "dissolved" && hasNotice {
			tr.SuspendedAt = at.Format(time.DateOnly)
		}
	}
	add(tagFilingsCurrent, id+5, "confirmation-statement", "CS01", "confirmation-statement-with-no-updates", notice.AddDate(0, 0, -90))
	tr.Kind = kind
	if hasNotice {
		tr.Notices++
		tr.NoticeOn = notice.Format(time.DateOnly)
		due := notice.AddDate(0, 2, 0)
		if due.Day() != notice.Day() { // ran into the month after: back to the end of the month before
			due = due.AddDate(0, 0, -due.Day())
		}
		tr.DueOn = due.Format(time.DateOnly)
	}
	return items, s.finishTruth(items, tr)
}

func (s *Sim) finishTruth(items []filingItem, tr FilingTruth) FilingTruth {
	for _, it := range items {
		if it.Category == "gazette" || it.Category == "dissolution" {
			tr.Items++
		}
	}
	return tr
}

// newestFirst orders a history as the API lists it: by date, newest first,
// and items of one day newest first too.
func newestFirst(items []filingItem) []filingItem {
	out := make([]filingItem, len(items))
	for i := range items {
		out[len(items)-1-i] = items[i]
	}
	// A stable sort keeps one day's items newest first.
	sortStableByDateDesc(out)
	return out
}

func sortStableByDateDesc(items []filingItem) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].Date > items[j-1].Date; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}

func (s *Sim) serveFilingHistory(w http.ResponseWriter, r *http.Request) {
	num := r.PathValue("n")
	ci, st, ok := s.filingState(num)
	if !ok {
		writeJSONError(w, http.StatusNotFound, `{"errors":[{"error":"filing-history-not-found","type":"ch:service"}]}`)
		return
	}
	all, _ := s.history(ci, st)
	q := r.URL.Query()
	if cats := q.Get("category"); cats != "" {
		want := map[string]bool{}
		for _, c := range strings.Split(cats, ",") {
			want[strings.TrimSpace(c)] = true
		}
		kept := all[:0]
		for _, it := range all {
			if want[it.Category] {
				kept = append(kept, it)
			}
		}
		all = kept
	}
	all = newestFirst(all)
	per, start := 25, 0
	if v, err := strconv.Atoi(q.Get("items_per_page")); err == nil && v > 0 {
		per = min(v, s.cfg.API.PageCap)
	}
	if v, err := strconv.Atoi(q.Get("start_index")); err == nil && v > 0 {
		start = v
	}
	l := filingList{Etag: s.etag(ci, 0xfffffffe-uint32(st.entries)), Status: "filing-history-available", Kind: "filing-history",
		ItemsPerPage: per, StartIndex: start, TotalCount: len(all), Items: []filingItem{}}
	if start < len(all) {
		l.Items = all[start:min(start+per, len(all))]
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(l)
}

// Filings returns the truth about company number's strike-off as its filing
// history tells it now.
func (s *Sim) Filings(number string) FilingTruth {
	ci, st, ok := s.filingState(number)
	if !ok {
		return FilingTruth{}
	}
	_, tr := s.history(ci, st)
	return tr
}
