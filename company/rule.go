// Package company keeps the mirror of companies: the one transition rule every
// source (stream, REST API, bulk file) goes through, and the statements that
// store its decisions.
//
// It owns the tables companies, officers, pscs, status_changes and
// filing_unknowns: no other package writes them, and every write takes its
// change_seq here. It also owns company_changes, the append-only log of
// companies' change_seq values that export --state reads: Batch.Flush and a
// trigger on updates keep it, and PruneChangesTx deletes its superseded
// entries. A company's strike-off cause and timetable (DecideStrikeOff, from
// its filing history) are stored here too, and cleared when it leaves. Others read companies and status_changes for exports and
// status; strike-off is the strike_off_companies view (InStrikeOff is its Go
// twin, tested to agree).
package company

import (
	"slices"
	"time"
)

// Source says where a version of a company came from.
type Source string

// The sources of company versions.
const (
	Stream Source = "stream"
	Bulk   Source = "bulk"
	API    Source = "api"
)

// value is s as a column value: a constant in an interface is not
// allocated, a string variable is, for every row.
func (s Source) value() any {
	switch s {
	case Stream:
		return string(Stream)
	case Bulk:
		return string(Bulk)
	case API:
		return string(API)
	}
	return string(s)
}

// StrikeOffDetail is the company_status_detail that, with status "active",
// means a proposal to strike off.
const StrikeOffDetail = "active-proposal-to-strike-off"

// Version is one version of a company as a source describes it, in the
// database's vocabulary.
type Version struct {
	Number, Name, Status, Detail, Type, Jurisdiction string
	DateOfCreation, DateOfCessation                  string
	SICCodes                                         []string
	AddressLine1, AddressLine2, Locality, Region     string
	PostalCode, Country                              string
	Etag                                             string
	Source                                           Source
	SourceTime                                       time.Time
	Timepoint                                        int64 // stream only
	Deleted                                          bool  // a `deleted` event: only Number is meaningful
}

// Record is a stored company: the last version applied plus what chwatch
// derived from its history.
type Record struct {
	Version
	StrikeOffSince     time.Time // zero unless in strike-off
	StatusCheckPending bool
	MissingFromBulk    string // as-of date, "" when not missing
	BulkAsOf           string // as-of date of the latest bulk file that listed it
	DeletedAt          time.Time
	FirstSeenAt        time.Time

	rowid int64 // where Load found it
}

// InStrikeOff is SPEC.md's one definition of strike-off.
func InStrikeOff(status, detail string, deleted bool) bool {
	return status == "active" && detail == StrikeOffDetail && !deleted
}

// InStrikeOff reports whether the stored company is in strike-off.
func (r *Record) InStrikeOff() bool {
	return r != nil && InStrikeOff(r.Status, r.Detail, !r.DeletedAt.IsZero())
}

// Outcome is what an incoming version did.
type Outcome string

// Outcomes, as recorded in stream_events.outcome.
const (
	Applied   Outcome = "applied"
	Unchanged Outcome = "unchanged"
	Stale     Outcome = "stale"
	Deleted   Outcome = "deleted"
)

// Change kinds recorded in status_changes.change.
const (
	EnteredStrikeOff = "entered_strike_off"
	LeftStrikeOff    = "left_strike_off"
	StatusChanged    = "status_changed"
)

// Policy is the configuration the rule depends on.
type Policy struct {
	// ConfirmExit "api": a strike-off company whose stream event drops the
	// detail but stays active keeps its status until a REST check decides.
	ConfirmExit string
	// KeepOfficers keeps officers (and PSCs) of a company leaving
	// strike-off (strike_off.on_exit = keep); otherwise they are deleted.
	KeepOfficers bool
	// PSCs queues a pscs fetch beside every officers fetch
	// (enrich.pscs).
	PSCs bool
	// OfficersOnFirstSight queues officer fetches for companies a bulk
	// row shows for the first time already in strike-off (imports set it
	// only with --officers); the stream and the API always queue them.
	OfficersOnFirstSight bool
}

// Decision is what the rule decided for one incoming version.
type Decision struct {
	Outcome Outcome
	// Write is the record to store; nil when the company is not touched.
	Write *Record
	// Change is the status_changes row to add, if any.
	Change string
	// FirstSeen marks a change for a company chwatch had never seen.
	FirstSeen        bool
	QueueOfficers    bool
	QueueStatusCheck bool
	// Exit work: cancel queued officer (and PSC) fetches, and delete
	// officers and PSCs unless the policy keeps them.
	CancelOfficers bool
	DeleteOfficers bool
	// OfficersRefused is set when storing the decision found the queue
	// past queue.max_depth, so the officers fetch was refused (counted in
	// jobs_refused); the caller logs it.
	OfficersRefused bool
}

// Decide is the transition rule: what the incoming version does to the
// stored company (nil when chwatch has never seen it). Stream events, REST
// answers and bulk rows all go through it.
func Decide(stored *Record, in Version, p Policy) Decision {
	// A REST answer to a pending status check is never stale: it was
	// fetched after the event that asked for it, whatever the two clocks
	// say (published_at carries no zone; the answer's Date is GMT).
	confirms := in.Source == API && stored != nil && stored.StatusCheckPending
	if stored != nil && !confirms && older(in, stored.Version) {
		return Decision{Outcome: Stale}
	}
	if stored != nil && !in.Deleted && sameContent(stored, in) {
		return Decision{Outcome: Unchanged}
	}

	next := &Record{Version: in}
	if stored != nil {
		next.StrikeOffSince = stored.StrikeOffSince
		next.MissingFromBulk = stored.MissingFromBulk
		next.BulkAsOf = stored.BulkAsOf
		next.FirstSeenAt = stored.FirstSeenAt
	}
	if in.Source == Bulk {
		next.MissingFromBulk = "" // the file lists it
		next.BulkAsOf = in.SourceTime.UTC().Format(time.DateOnly)
	}
	d := Decision{Outcome: Applied, Write: next}

	if in.Deleted {
		d.Outcome = Deleted
		if stored != nil {
			// A deleted event carries no profile: keep what is known.
			keep := *stored
			keep.Version.Etag, keep.Source, keep.SourceTime, keep.Timepoint = stored.Etag, in.Source, in.SourceTime, in.Timepoint
			keep.Number = in.Number
			next = &keep
			d.Write = next
		}
		next.DeletedAt = in.SourceTime
		next.StatusCheckPending = false
	}

	hybrid := in.Source == Stream && !in.Deleted && p.ConfirmExit == "api" &&
		stored.InStrikeOff() && in.Status == "active" && in.Detail == ""
	if hybrid {
		// The event's other fields apply; the REST answer decides the status.
		next.Status, next.Detail = stored.Status, stored.Detail
		next.StatusCheckPending = true
		d.QueueStatusCheck = true
	}

	was, now := stored.InStrikeOff(), next.InStrikeOff()
	switch {
	case now && !was:
		d.Change = EnteredStrikeOff
		d.FirstSeen = stored == nil
		next.StrikeOffSince = in.SourceTime
		// Only a bulk import's first sights (about 400,000 on a first
		// import) wait for --officers; the stream's are real entries.
		d.QueueOfficers = stored != nil || in.Source != Bulk || p.OfficersOnFirstSight
	case was && !now:
		d.Change = LeftStrikeOff
		next.StrikeOffSince = time.Time{}
		d.CancelOfficers = true
		d.DeleteOfficers = !p.KeepOfficers
	case !now:
		next.StrikeOffSince = time.Time{}
		if stored != nil && !in.Deleted && stored.Status != "" && stored.Status != next.Status {
			d.Change = StatusChanged
		}
	}
	return d
}

// older reports whether in is older than the stored version: by source time,
// and at equal times by stream timepoint.
func older(in, stored Version) bool {
	if in.SourceTime.Before(stored.SourceTime) {
		return true
	}
	if in.SourceTime.Equal(stored.SourceTime) && in.Source == Stream && stored.Source == Stream {
		return in.Timepoint <= stored.Timepoint
	}
	return false
}

// sameContent reports whether applying in would change nothing a user sees.
// Versions with etags compare by etag (Companies House's own content hash);
// bulk rows, which have none, compare field by field. A pending status check
// is never "unchanged" for a REST answer: that answer is what settles it.
func sameContent(stored *Record, in Version) bool {
	if !stored.DeletedAt.IsZero() {
		return false
	}
	if in.Source == API && stored.StatusCheckPending {
		return false
	}
	if in.Etag != "" {
		return in.Etag == stored.Etag
	}
	if in.Source == Bulk && stored.MissingFromBulk != "" {
		return false
	}
	s := stored.Version
	return s.Name == in.Name && s.Status == in.Status && s.Detail == in.Detail &&
		s.Type == in.Type && s.Jurisdiction == in.Jurisdiction &&
		s.DateOfCreation == in.DateOfCreation && s.DateOfCessation == in.DateOfCessation &&
		slices.Equal(s.SICCodes, in.SICCodes) &&
		s.AddressLine1 == in.AddressLine1 && s.AddressLine2 == in.AddressLine2 &&
		s.Locality == in.Locality && s.Region == in.Region &&
		s.PostalCode == in.PostalCode && s.Country == in.Country
}
