package importer

import (
	"fmt"
	"strings"
	"time"

	"github.com/chwatch/chwatch/bulk"
)

// Limits on what the summary keeps, so memory stays constant whatever the
// file holds.
const (
	keepBadRows      = 5   // bad rows quoted in the summary (--errors has all)
	keepUnknownTexts = 200 // distinct unknown texts counted one by one
	showUnknownTexts = 5   // unknown texts named in the summary line
)

// Summary is what an import did in this run.
type Summary struct {
	Files []string
	AsOf  string

	RowsRead  int64 // good rows read
	Applied   int64 // rows that changed a company
	Unchanged int64
	Stale     int64 // newer data kept
	Bad       int64
	Entered   int64 // entered strike-off
	FirstSeen int64 // of which first seen
	Left      int64 // left strike-off
	Missing   int64 // marked missing_from_bulk
	// StatusChecks counts the companies in strike-off marked missing that
	// were queued for a status check.
	StatusChecks int64
	GapsResolved int64
	// OfficersRefused counts officer fetches refused because the queue was
	// past queue.max_depth (also counted in jobs_refused).
	OfficersRefused int64

	// Unknown counts the texts no mapping knew ("status:TEXT", ...) in
	// the order first met; UnknownOther counts those past the first
	// keepUnknownTexts distinct ones.
	Unknown      map[string]int64
	UnknownOrder []string
	UnknownOther int64

	// BadRows are the first few bad rows.
	BadRows []BadRow

	Resumed      []Resume
	AlreadyDone  []string // files imported completely before
	Complete     bool     // every part of the as-of is in
	PartsOf      int      // parts of the as-of (0: a single file)
	PartsMissing []int    // parts not imported yet
	// MissingSkipped is set when a newer file was imported completely
	// before, so this older one marks nothing missing.
	MissingSkipped string

	Elapsed time.Duration
	// Sorting is the part of Elapsed spent reading and sorting the files
	// (phase 1), before their rows were applied.
	Sorting time.Duration
}

// BadRow is a bad row quoted in the summary.
type BadRow struct {
	File   string
	Line   int64
	Reason string
}

// Resume says where an interrupted import of a file went on.
type Resume struct {
	File string
	// Number and Line are the last row applied before, in company-number
	// order; Number is "" when an older chwatch applied the rows up to
	// Line in file order.
	Number string
	Line   int64
	Rows   int64 // rows applied before
}

func newSummary(files []string, asOf string) *Summary {
	return &Summary{Files: files, AsOf: asOf, Unknown: map[string]int64{}}
}

func (s *Summary) add(t *tally, read int64) {
	s.RowsRead += read
	s.Applied += t.applied
	s.Unchanged += t.unchanged
	s.Stale += t.stale
	s.Entered += t.entered
	s.FirstSeen += t.firstSeen
	s.Left += t.left
	s.OfficersRefused += t.refused
	for _, u := range t.unknown {
		if _, ok := s.Unknown[u]; !ok {
			if len(s.UnknownOrder) >= keepUnknownTexts {
				s.UnknownOther++
				continue
			}
			s.UnknownOrder = append(s.UnknownOrder, u)
		}
		s.Unknown[u]++
	}
}

func (s *Summary) badRow(file string, re *bulk.RowError) {
	s.Bad++
	if len(s.BadRows) < keepBadRows {
		s.BadRows = append(s.BadRows, BadRow{File: file, Line: re.Line, Reason: re.Reason})
	}
}

// String is the one-line summary.
func (s *Summary) String() string {
	var b strings.Builder
	files := strings.Join(s.Files, ", ")
	if len(s.AlreadyDone) == len(s.Files) && s.RowsRead == 0 && s.Bad == 0 {
		fmt.Fprintf(&b, "%s (as of %s) was already imported completely (recognised by sha256): nothing changed", files, s.AsOf)
		if s.Missing > 0 {
			fmt.Fprintf(&b, " but the interrupted end of that import: %d marked missing", s.Missing)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "imported %s (as of %s): %d rows read, %d applied, %d unchanged, %d stale (newer data kept), %d bad, %d entered strike-off (%d first seen), %d left, %d marked missing",
		files, s.AsOf, s.RowsRead, s.Applied, s.Unchanged, s.Stale, s.Bad, s.Entered, s.FirstSeen, s.Left, s.Missing)
	b.WriteString("; unknown texts: ")
	if len(s.UnknownOrder) == 0 {
		b.WriteString("none")
	}
	for i, u := range s.UnknownOrder {
		if i == showUnknownTexts {
			fmt.Fprintf(&b, " and %d more", len(s.UnknownOrder)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q %d", u, s.Unknown[u])
	}
	if s.UnknownOther > 0 {
		fmt.Fprintf(&b, " (+%d of other texts)", s.UnknownOther)
	}
	s.writeBadRows(&b)
	s.writeResumed(&b)
	switch {
	case s.MissingSkipped != "":
		fmt.Fprintf(&b, "; nothing marked missing: a newer file (as of %s) was imported before", s.MissingSkipped)
	case !s.Complete && s.PartsOf > 0:
		fmt.Fprintf(&b, "; parts still to import: %s of %d (missing companies are marked once all are in)", ints(s.PartsMissing), s.PartsOf)
	}
	if s.StatusChecks > 0 {
		fmt.Fprintf(&b, "; %d status checks queued", s.StatusChecks)
	}
	if s.GapsResolved > 0 {
		fmt.Fprintf(&b, "; %d stream gaps resolved", s.GapsResolved)
	}
	if s.OfficersRefused > 0 {
		fmt.Fprintf(&b, "; %d officer fetches refused: the queue is past queue.max_depth (they are counted in status; raise queue.max_depth, or queue one by hand with chwatch queue add officers NUMBER)", s.OfficersRefused)
	}
	secs := s.Elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(s.RowsRead+s.Bad) / secs
	}
	fmt.Fprintf(&b, "; in %s (%.0f rows/s; reading and sorting %s)", s.Elapsed.Round(time.Millisecond), rate, s.Sorting.Round(time.Millisecond))
	return b.String()
}

// SoFar says what a run that stopped with an error did before it, for the
// error's message. Unlike String it never says the file was imported.
func (s *Summary) SoFar() string {
	var b strings.Builder
	// Bad rows are never committed, and the good rows read before a stop
	// in the sort phase were not applied: only the applied, unchanged and
	// stale rows went into the database.
	fmt.Fprintf(&b, "before it stopped this run committed %d rows (%d applied, %d unchanged, %d stale: newer data kept) and found %d bad",
		s.Applied+s.Unchanged+s.Stale, s.Applied, s.Unchanged, s.Stale, s.Bad)
	s.writeBadRows(&b)
	s.writeResumed(&b)
	return b.String()
}

func (s *Summary) writeBadRows(b *strings.Builder) {
	if len(s.BadRows) == 0 {
		return
	}
	b.WriteString("; bad rows: ")
	for i, r := range s.BadRows {
		if i > 0 {
			b.WriteString(", ")
		}
		if len(s.Files) > 1 {
			fmt.Fprintf(b, "%s ", r.File)
		}
		fmt.Fprintf(b, "line %d (%s)", r.Line, r.Reason)
	}
	if s.Bad > int64(len(s.BadRows)) {
		fmt.Fprintf(b, " and %d more", s.Bad-int64(len(s.BadRows)))
	}
}

func (s *Summary) writeResumed(b *strings.Builder) {
	for _, r := range s.Resumed {
		if r.Number == "" {
			fmt.Fprintf(b, "; resumed %s after line %d (%d rows done before)", r.File, r.Line, r.Rows)
			continue
		}
		fmt.Fprintf(b, "; resumed %s after company %s, line %d, in company-number order (%d rows done before)", r.File, r.Number, r.Line, r.Rows)
	}
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
