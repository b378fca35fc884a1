package company_test

import (
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/matryer/is"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// at is t0 plus n minutes.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

// event is a stream version of SC571653 with the given status and detail.
func event(status, detail, etag string, published time.Time, timepoint int64) company.Version {
	return company.Version{
		Number: "SC571653", Name: "ACME LTD", Status: status, Detail: detail,
		Type: "ltd", Jurisdiction: "scotland", DateOfCreation: "2017-07-11",
		SICCodes: []string{"56290", "70229"}, AddressLine1: "1 High Street", Locality: "Glasgow",
		PostalCode: "G1 1AA", Country: "Scotland",
		Etag: etag, Source: company.Stream, SourceTime: published, Timepoint: timepoint,
	}
}

// bulkRow is the same company as a bulk file dated asOf describes it (no etag).
func bulkRow(status, detail string, asOf time.Time) company.Version {
	v := event(status, detail, "", asOf, 0)
	v.Source = company.Bulk
	return v
}

// apiAnswer is the same company as the REST API answers at date.
func apiAnswer(status, detail, etag string, date time.Time) company.Version {
	v := event(status, detail, etag, date, 0)
	v.Source = company.API
	return v
}

func deleted(published time.Time, timepoint int64) company.Version {
	return company.Version{Number: "SC571653", Source: company.Stream, SourceTime: published, Timepoint: timepoint, Deleted: true}
}

// stored is a stored record of v; in strike-off when v says so.
func stored(v company.Version, mods ...func(*company.Record)) *company.Record {
	r := &company.Record{Version: v, FirstSeenAt: t0.Add(-24 * time.Hour)}
	if company.InStrikeOff(v.Status, v.Detail, false) {
		r.StrikeOffSince = v.SourceTime
	}
	for _, m := range mods {
		m(r)
	}
	return r
}

const (
	active    = "active"
	strikeOff = company.StrikeOffDetail
)

var (
	inStrikeOff = event(active, strikeOff, "e1", at(0), 100)
	activePlain = event(active, "", "e1", at(0), 100)
	pending     = stored(event(active, strikeOff, "e2", at(1), 101), func(r *company.Record) {
		r.StrikeOffSince = at(0)
		r.StatusCheckPending = true
	})
	deletedInStrikeOff = stored(inStrikeOff, func(r *company.Record) {
		r.StrikeOffSince = time.Time{}
		r.DeletedAt = at(1)
		r.Source, r.SourceTime, r.Timepoint = company.Stream, at(1), 101
	})
)

func TestDecide(t *testing.T) {
	type want struct {
		outcome        company.Outcome
		write          bool
		change         string
		firstSeen      bool
		officers       bool // QueueOfficers
		statusCheck    bool // QueueStatusCheck
		cancelOfficers bool
		deleteOfficers bool
	}
	tests := []struct {
		name   string
		stored *company.Record
		in     company.Version
		policy company.Policy
		want   want
		check  func(is *is.I, w *company.Record)
	}{
		{
			name: "FirstSightInStrikeOffStreamQueuesOfficers",
			in:   event(active, strikeOff, "e1", at(0), 100),
			want: want{outcome: company.Applied, write: true, change: company.EnteredStrikeOff, firstSeen: true, officers: true},
			check: func(is *is.I, w *company.Record) {
				is.True(w.InStrikeOff())
				is.Equal(w.StrikeOffSince, at(0))
			},
		},
		{
			name: "FirstSightInStrikeOffBulkQueuesNoOfficers",
			in:   bulkRow(active, strikeOff, at(0)),
			want: want{outcome: company.Applied, write: true, change: company.EnteredStrikeOff, firstSeen: true},
		},
		{
			name:   "FirstSightInStrikeOffBulkWithOfficersFlag",
			in:     bulkRow(active, strikeOff, at(0)),
			policy: company.Policy{OfficersOnFirstSight: true},
			want:   want{outcome: company.Applied, write: true, change: company.EnteredStrikeOff, firstSeen: true, officers: true},
		},
		{
			name: "FirstSightNotInStrikeOffWritesNoChange",
			in:   event(active, "", "e1", at(0), 100),
			want: want{outcome: company.Applied, write: true},
			check: func(is *is.I, w *company.Record) {
				is.True(!w.InStrikeOff())
				is.True(w.StrikeOffSince.IsZero())
			},
		},
		{
			name:   "EnteringQueuesOfficers",
			stored: stored(activePlain),
			in:     event(active, strikeOff, "e2", at(1), 101),
			want:   want{outcome: company.Applied, write: true, change: company.EnteredStrikeOff, officers: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.StrikeOffSince, at(1))
				is.Equal(w.FirstSeenAt, t0.Add(-24*time.Hour)) // kept
			},
		},
		{
			name:   "LeavingToActiveConfirmedByStream",
			stored: stored(inStrikeOff),
			in:     event(active, "", "e2", at(1), 101),
			policy: company.Policy{ConfirmExit: "stream"},
			want:   want{outcome: company.Applied, write: true, change: company.LeftStrikeOff, cancelOfficers: true, deleteOfficers: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.Detail, "")
				is.True(w.StrikeOffSince.IsZero())
				is.True(!w.StatusCheckPending)
			},
		},
		{
			name:   "LeavingKeepOfficers",
			stored: stored(inStrikeOff),
			in:     event(active, "", "e2", at(1), 101),
			policy: company.Policy{ConfirmExit: "stream", KeepOfficers: true},
			want:   want{outcome: company.Applied, write: true, change: company.LeftStrikeOff, cancelOfficers: true},
		},
		{
			name:   "HybridWaitsForStatusCheck",
			stored: stored(inStrikeOff),
			in: func() company.Version {
				v := event(active, "", "e2", at(1), 101)
				v.Name = "ACME HOLDINGS LTD"
				return v
			}(),
			policy: company.Policy{ConfirmExit: "api"},
			want:   want{outcome: company.Applied, write: true, statusCheck: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.Status, active)
				is.Equal(w.Detail, strikeOff)         // the status stays
				is.Equal(w.Name, "ACME HOLDINGS LTD") // the other fields apply
				is.Equal(w.Etag, "e2")
				is.Equal(w.Timepoint, int64(101))
				is.True(w.StatusCheckPending)
				is.True(w.InStrikeOff())
				is.Equal(w.StrikeOffSince, at(0)) // unchanged
			},
		},
		{
			name:   "APIAnswerWithEventEtagConfirmsExit",
			stored: pending,
			in:     apiAnswer(active, "", "e2", at(5)),
			policy: company.Policy{ConfirmExit: "api"},
			want:   want{outcome: company.Applied, write: true, change: company.LeftStrikeOff, cancelOfficers: true, deleteOfficers: true},
			check: func(is *is.I, w *company.Record) {
				is.True(!w.StatusCheckPending)
				is.True(!w.InStrikeOff())
				is.True(w.StrikeOffSince.IsZero())
			},
		},
		{
			name:   "APIAnswerStillInStrikeOffClearsPending",
			stored: pending,
			in:     apiAnswer(active, strikeOff, "e3", at(5)),
			policy: company.Policy{ConfirmExit: "api"},
			want:   want{outcome: company.Applied, write: true},
			check: func(is *is.I, w *company.Record) {
				is.True(!w.StatusCheckPending)
				is.True(w.InStrikeOff())
				is.Equal(w.StrikeOffSince, at(0))
			},
		},
		{
			// published_at may be UK local time read as UTC: an answer to
			// the check it caused can carry an earlier Date.
			name:   "APIAnswerToPendingCheckIsNeverStale",
			stored: pending,
			in:     apiAnswer(active, "", "e2", at(1).Add(-time.Hour)),
			policy: company.Policy{ConfirmExit: "api"},
			want:   want{outcome: company.Applied, write: true, change: company.LeftStrikeOff, cancelOfficers: true, deleteOfficers: true},
			check: func(is *is.I, w *company.Record) {
				is.True(!w.StatusCheckPending)
			},
		},
		{
			name:   "OlderAPIAnswerWithoutPendingCheckIsStale",
			stored: stored(inStrikeOff),
			in:     apiAnswer(active, "", "e2", at(0).Add(-time.Minute)),
			want:   want{outcome: company.Stale},
		},
		{
			name:   "APIDeletedLeavesStrikeOff",
			stored: stored(inStrikeOff),
			in:     company.DeletedVersion("SC571653", company.API, at(5)),
			want:   want{outcome: company.Deleted, write: true, change: company.LeftStrikeOff, cancelOfficers: true, deleteOfficers: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.DeletedAt, at(5))
				is.Equal(w.Source, company.API)
				is.Equal(w.Name, "ACME LTD") // a 404 carries no profile: what is known stays
			},
		},
		{
			name:   "LeavingByDissolution",
			stored: stored(inStrikeOff),
			in: func() company.Version {
				v := event("dissolved", "", "e2", at(1), 101)
				v.DateOfCessation = "2026-11-28"
				return v
			}(),
			policy: company.Policy{ConfirmExit: "api"},
			want:   want{outcome: company.Applied, write: true, change: company.LeftStrikeOff, cancelOfficers: true, deleteOfficers: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.Status, "dissolved")
				is.True(!w.StatusCheckPending)
			},
		},
		{
			name:   "DeletedInStrikeOffLeaves",
			stored: stored(inStrikeOff),
			in:     deleted(at(1), 101),
			policy: company.Policy{ConfirmExit: "api"},
			want:   want{outcome: company.Deleted, write: true, change: company.LeftStrikeOff, cancelOfficers: true, deleteOfficers: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.DeletedAt, at(1))
				is.Equal(w.Name, "ACME LTD") // the profile is kept
				is.Equal(w.Status, active)
				is.Equal(w.Timepoint, int64(101))
				is.Equal(w.SourceTime, at(1))
				is.True(w.StrikeOffSince.IsZero())
				is.True(!w.InStrikeOff())
			},
		},
		{
			name: "DeletedUnknownCompanyWritesTombstone",
			in:   deleted(at(1), 101),
			want: want{outcome: company.Deleted, write: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.Number, "SC571653")
				is.Equal(w.DeletedAt, at(1))
				is.True(!w.InStrikeOff())
			},
		},
		{
			name:   "ChangedAfterDeletedReentersNotFirstSeen",
			stored: deletedInStrikeOff,
			in:     event(active, strikeOff, "e1", at(2), 102), // same etag as before the deletion
			want:   want{outcome: company.Applied, write: true, change: company.EnteredStrikeOff, officers: true},
			check: func(is *is.I, w *company.Record) {
				is.True(w.DeletedAt.IsZero())
				is.True(w.InStrikeOff())
				is.Equal(w.StrikeOffSince, at(2))
			},
		},
		{
			name:   "ChangedAfterDeletedClearsDeletedAt",
			stored: deletedInStrikeOff,
			in:     event(active, "", "e3", at(2), 102),
			want:   want{outcome: company.Applied, write: true},
			check: func(is *is.I, w *company.Record) {
				is.True(w.DeletedAt.IsZero())
			},
		},
		{
			name:   "SameEtagUnchanged",
			stored: stored(inStrikeOff),
			in:     event(active, strikeOff, "e1", at(1), 101),
			want:   want{outcome: company.Unchanged},
		},
		{
			name:   "OlderPublishedAtStale",
			stored: stored(event(active, "", "e2", at(5), 200)),
			in:     event(active, strikeOff, "e3", at(4), 201),
			want:   want{outcome: company.Stale},
		},
		{
			name:   "EqualTimeHigherTimepointWins",
			stored: stored(event(active, "", "e2", at(5), 200)),
			in:     event(active, strikeOff, "e3", at(5), 201),
			want:   want{outcome: company.Applied, write: true, change: company.EnteredStrikeOff, officers: true},
		},
		{
			name:   "EqualTimeLowerTimepointStale",
			stored: stored(event(active, "", "e2", at(5), 200)),
			in:     event(active, strikeOff, "e3", at(5), 199),
			want:   want{outcome: company.Stale},
		},
		{
			name:   "DeletedOlderThanStoredStale",
			stored: stored(event(active, strikeOff, "e2", at(5), 200)),
			in:     deleted(at(4), 201),
			want:   want{outcome: company.Stale},
		},
		{
			name:   "BulkOlderThanStreamStale",
			stored: stored(event(active, "", "e2", at(60), 200)),
			in:     bulkRow(active, strikeOff, t0),
			want:   want{outcome: company.Stale},
		},
		{
			name:   "BulkNewerApplies",
			stored: stored(event(active, "", "e2", at(0), 200)),
			in:     bulkRow(active, strikeOff, at(24*60)),
			want:   want{outcome: company.Applied, write: true, change: company.EnteredStrikeOff, officers: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.Source, company.Bulk)
				is.Equal(w.Etag, "")
				is.Equal(w.BulkAsOf, "2026-11-29") // the file that listed it
			},
		},
		{
			name:   "BulkReimportUnchanged",
			stored: stored(bulkRow(active, "", t0)),
			in:     bulkRow(active, "", at(24*60)),
			want:   want{outcome: company.Unchanged},
		},
		{
			name:   "BulkSameFieldsAsStreamUnchanged",
			stored: stored(event(active, "", "e2", at(0), 200)),
			in:     bulkRow(active, "", at(24*60)),
			want:   want{outcome: company.Unchanged},
		},
		{
			name: "BulkRowClearsMissingFromBulk",
			stored: stored(bulkRow(active, "", t0), func(r *company.Record) {
				r.MissingFromBulk = "2026-11-01"
			}),
			in:   bulkRow(active, "", at(24*60)),
			want: want{outcome: company.Applied, write: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.MissingFromBulk, "")
				is.Equal(w.BulkAsOf, "2026-11-29")
			},
		},
		{
			name: "StreamKeepsMissingFromBulk",
			stored: stored(bulkRow(active, "", t0), func(r *company.Record) {
				r.MissingFromBulk, r.BulkAsOf = "2026-11-01", "2026-11-28"
			}),
			in:   event(active, "", "e2", at(1), 101),
			want: want{outcome: company.Applied, write: true},
			check: func(is *is.I, w *company.Record) {
				is.Equal(w.MissingFromBulk, "2026-11-01")
				is.Equal(w.BulkAsOf, "2026-11-28") // still the last file that listed it
			},
		},
		{
			name:   "StatusChangedActiveToLiquidation",
			stored: stored(activePlain),
			in:     event("liquidation", "", "e2", at(1), 101),
			want:   want{outcome: company.Applied, write: true, change: company.StatusChanged},
		},
		{
			name:   "SameStatusOtherFieldsNoChangeRow",
			stored: stored(activePlain),
			in: func() company.Version {
				v := event(active, "", "e2", at(1), 101)
				v.PostalCode = "G2 2BB"
				return v
			}(),
			want: want{outcome: company.Applied, write: true},
		},
		{
			name: "DetailInStatusFieldIsNotStrikeOff",
			in:   event("active-proposal-to-strike-off", "", "e1", at(0), 100),
			want: want{outcome: company.Applied, write: true},
			check: func(is *is.I, w *company.Record) {
				is.True(!w.InStrikeOff())
				is.True(w.StrikeOffSince.IsZero())
			},
		},
		{
			name:   "StrikeOffDetailWithOtherStatusIsNotStrikeOff",
			stored: stored(activePlain),
			in:     event("liquidation", strikeOff, "e2", at(1), 101),
			want:   want{outcome: company.Applied, write: true, change: company.StatusChanged},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			d := company.Decide(tt.stored, tt.in, tt.policy)
			got := want{
				outcome: d.Outcome, write: d.Write != nil, change: d.Change, firstSeen: d.FirstSeen,
				officers: d.QueueOfficers, statusCheck: d.QueueStatusCheck,
				cancelOfficers: d.CancelOfficers, deleteOfficers: d.DeleteOfficers,
			}
			is.Equal(got, tt.want)
			if d.Write != nil {
				is.Equal(d.Write.Number, tt.in.Number)
				is.Equal(d.Write.InStrikeOff(), !d.Write.StrikeOffSince.IsZero()) // strike_off_since iff in strike-off
			}
			if tt.check != nil && d.Write != nil {
				tt.check(is, d.Write)
			}
		})
	}
}

// Decide never changes the stored record it is given.
func TestDecideLeavesStoredAlone(t *testing.T) {
	is := is.New(t)
	s := stored(inStrikeOff)
	before := *s
	before.SICCodes = append([]string(nil), s.SICCodes...)
	company.Decide(s, deleted(at(1), 101), company.Policy{})
	company.Decide(s, event(active, "", "e2", at(1), 101), company.Policy{ConfirmExit: "api"})
	is.Equal(*s, before)
}
