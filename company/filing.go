package company

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Strike-off kinds, as stored in companies.strike_off_kind.
const (
	KindVoluntary  = "voluntary"
	KindCompulsory = "compulsory"
	KindUnknown    = "unknown"
)

// Filing is one item of a company's filing history (GET
// /company/{n}/filing-history), in the fields the strike-off decision reads;
// Raw holds the whole item as sent.
type Filing struct {
	TransactionID string
	Category      string // gazette, dissolution, ...
	Type          string // the form: GAZ1, GAZ1(A), DS01, ...
	Description   string // the description key of api-enumerations' filing_history_descriptions.yml
	Date          string // YYYY-MM-DD
	ActionDate    string // YYYY-MM-DD when the item has one
	Raw           []byte
}

// ParseFiling reads one filing-history item. Like ParseOfficer it is
// lenient: only an item that is not a JSON object is an error, and an item
// without transaction_id gets a digest of its JSON, so it is still told
// apart from the others.
func ParseFiling(raw []byte) (Filing, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Filing{}, fmt.Errorf("decode filing-history item: not a JSON object")
	}
	f := Filing{
		TransactionID: jsonString(m["transaction_id"]), Category: jsonString(m["category"]),
		Type: jsonString(m["type"]), Description: jsonString(m["description"]),
		Date: jsonString(m["date"]), ActionDate: jsonString(m["action_date"]),
		Raw: slices.Clone(raw),
	}
	if f.TransactionID == "" {
		sum := sha256.Sum256(raw)
		f.TransactionID = "sha256:" + hex.EncodeToString(sum[:10])
	}
	return f, nil
}

// What a recognised description means for the strike-off.
type filingRole uint8

const (
	roleOther        filingRole = iota
	roleNotice                  // a first-Gazette notice: starts a strike-off
	roleApplication             // DS01: the directors apply to strike the company off
	roleSuspension              // the strike-off is suspended (it may resume)
	roleDiscontinued            // the strike-off is discontinued: it ended
	roleDissolved               // the final Gazette notice: dissolved
	roleUnrecognised            // a description chwatch does not know
)

// descriptions are the strike-off descriptions of Companies House's
// api-enumerations (filing_history_descriptions.yml), both spellings of
// "compulsory" included.
var descriptions = map[string]struct {
	role filingRole
	kind string
}{
	"gazette-notice-compulsory":                     {roleNotice, KindCompulsory},
	"gazette-notice-compulsary":                     {roleNotice, KindCompulsory},
	"gazette-notice-voluntary":                      {roleNotice, KindVoluntary},
	"dissolution-application-strike-off-company":    {roleApplication, KindVoluntary},
	"gazette-filings-brought-up-to-date":            {roleDiscontinued, ""},
	"dissolved-compulsory-strike-off-suspended":     {roleSuspension, ""},
	"dissolution-voluntary-strike-off-suspended":    {roleSuspension, ""},
	"dissolution-voluntary-strike-off-discontinued": {roleDiscontinued, ""},
	"gazette-dissolved-compulsory":                  {roleDissolved, ""},
	"gazette-dissolved-compulsary":                  {roleDissolved, ""},
	"gazette-dissolved-voluntary":                   {roleDissolved, ""},
}

func roleOf(f Filing) (filingRole, string) {
	if d, ok := descriptions[f.Description]; ok {
		return d.role, d.kind
	}
	if strings.HasPrefix(strings.ToUpper(f.Type), "GAZ1") {
		// A first-Gazette form under a description chwatch does not know
		// still starts the clock; its cause is unknown.
		return roleNotice, KindUnknown
	}
	return roleUnrecognised, ""
}

// StrikeOff is what a company's filing history says about its current
// strike-off: the columns of the same names on companies.
type StrikeOff struct {
	Kind        string // KindVoluntary, KindCompulsory or KindUnknown
	NoticeOn    string // gazette_notice_on, "" when no notice is filed yet
	DueOn       string // dissolution_due_on: NoticeOn plus two calendar months
	SuspendedAt string // strike_off_suspended_at, "" when none
	// Unknown are the items whose description chwatch does not recognise
	// (GAZ1 forms included), kept raw and reported.
	Unknown []Filing
}

// HasNotice reports whether a first-Gazette notice was found.
func (s StrikeOff) HasNotice() bool { return s.NoticeOn != "" }

// DecideStrikeOff reads a filing history (in the API's order, newest first)
// and says what the current strike-off is. It began with the latest
// first-Gazette notice: a company that left strike-off and came back has
// several, and the earlier ones belong to strike-offs that ended. Its kind
// is that notice's. A DS01 filed after the last strike-off ended (dissolved
// or discontinued), or with no notice at all, is a voluntary strike-off
// whose notice is not filed yet (it follows within weeks); with neither the
// kind is unknown. A suspension or discontinuation filed after the notice
// sets SuspendedAt (the latest, when several are): the company is still in
// strike-off, so the notice is still the one that counts.
func DecideStrikeOff(items []Filing) StrikeOff {
	// Oldest first, stable: items of one day keep the API's order (newest
	// first), reversed.
	chrono := slices.Clone(items)
	slices.Reverse(chrono)
	slices.SortStableFunc(chrono, func(a, b Filing) int { return strings.Compare(a.Date, b.Date) })

	out := StrikeOff{Kind: KindUnknown}
	notice, ended, applied := -1, -1, -1
	for i, f := range chrono {
		role, kind := roleOf(f)
		switch role {
		case roleNotice:
			notice = i
			out.Kind = kind
		case roleApplication:
			applied = i
		case roleDiscontinued, roleDissolved:
			ended = i
		}
		if role == roleUnrecognised || (role == roleNotice && kind == KindUnknown) {
			out.Unknown = append(out.Unknown, f)
		}
	}
	if applied > ended && ended >= notice {
		return StrikeOff{Kind: KindVoluntary, Unknown: out.Unknown}
	}
	if notice < 0 {
		return StrikeOff{Kind: KindUnknown, Unknown: out.Unknown}
	}
	out.NoticeOn = chrono[notice].Date
	if d, err := time.Parse(time.DateOnly, out.NoticeOn); err == nil {
		out.DueOn = PlusMonths(d, 2).Format(time.DateOnly)
	} else {
		// A notice without a readable date starts no known clock.
		out.NoticeOn = ""
	}
	for _, f := range chrono[notice+1:] {
		if role, _ := roleOf(f); (role == roleSuspension || role == roleDiscontinued) && f.Date != "" {
			out.SuspendedAt = f.Date
		}
	}
	return out
}

// PlusMonths is d plus n calendar months, a day past the end of the target
// month clamped to its last day (2026-12-31 plus two months is 2027-02-28),
// where time.AddDate would run on into the month after.
func PlusMonths(d time.Time, n int) time.Time {
	y, m, day := d.Date()
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(day, last), 0, 0, 0, 0, time.UTC)
}
