package company

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/queue"
)

// Counter names this package keeps in the counters table.
const (
	CounterCompanies = "companies"
	CounterStrikeOff = "strike_off"
)

// Day counter names (db.DayCounter) this package keeps, by the UTC day of
// detected_at: the day's entries, its first sightings apart (SPEC: a first
// sight is no entry that day), and its exits.
const (
	DayEntered   = EnteredStrikeOff
	DayFirstSeen = EnteredStrikeOff + "_first_seen"
	DayLeft      = LeftStrikeOff
)

const columns = `company_number, ` + dataColumns

// dataColumns are the columns an update sets: all but company_number, which
// never changes for a row. An UPDATE that sets an indexed column rewrites
// its index entry even to the same value, and the primary key's entry
// lives on a random page of its index: one page more per event.
const dataColumns = `company_name, company_status, company_status_detail, company_type,
	jurisdiction, date_of_creation, date_of_cessation, sic_codes, address_line_1, address_line_2,
	locality, region, postal_code, country, etag, source, source_time, source_timepoint,
	strike_off_since, status_check_pending, missing_from_bulk, bulk_as_of, deleted_at, first_seen_at`

const updateCompany = `UPDATE companies SET (` + dataColumns + `, updated_at, change_seq)
	= (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) WHERE rowid = ?`

// LoadMany reads the stored companies among numbers in one query: a batch
// of events reads its companies at once instead of one query each.
func LoadMany(ctx context.Context, q db.Querier, numbers []string) (map[string]*Record, error) {
	out := make(map[string]*Record, len(numbers))
	if len(numbers) == 0 {
		return out, nil
	}
	// A range of numbers that holds no company has nothing to load: one
	// seek of the key index instead of building the list's index and
	// probing each number. A first import's sorted chunks all miss, and
	// spent 5% of its time there.
	lo, hi := slices.Min(numbers), slices.Max(numbers)
	var found bool
	err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM companies WHERE company_number BETWEEN ? AND ?)", lo, hi).Scan(&found)
	if err != nil {
		return nil, fmt.Errorf("load companies: %w", err)
	}
	if !found {
		return out, nil
	}
	list, err := json.Marshal(numbers)
	if err != nil {
		return nil, fmt.Errorf("load companies: %w", err)
	}
	rows, err := q.QueryContext(ctx, "SELECT rowid, "+loadColumns+" FROM companies WHERE company_number IN (SELECT value FROM json_each(?))", string(list))
	if err != nil {
		return nil, fmt.Errorf("load companies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("load companies: %w", err)
		}
		out[r.Number] = r
	}
	return out, rows.Err()
}

// loadColumns are columns as scanRecord reads them: NULL text as the
// empty string, so that each scans straight into its field. A
// sql.NullString per column escaped to the heap on its own: twenty
// allocations per company read.
const loadColumns = `company_number, company_name, company_status, coalesce(company_status_detail, ''), coalesce(company_type, ''),
	coalesce(jurisdiction, ''), coalesce(date_of_creation, ''), coalesce(date_of_cessation, ''), coalesce(sic_codes, ''),
	coalesce(address_line_1, ''), coalesce(address_line_2, ''), coalesce(locality, ''), coalesce(region, ''),
	coalesce(postal_code, ''), coalesce(country, ''), coalesce(etag, ''), source, source_time, coalesce(source_timepoint, 0),
	coalesce(strike_off_since, ''), status_check_pending, coalesce(missing_from_bulk, ''), coalesce(bulk_as_of, ''),
	coalesce(deleted_at, ''), first_seen_at`

// recordScan is what scanRecord scans into besides the Record itself.
type recordScan struct {
	sic, src, srcTime, since, deleted, firstSeen string
}

// scanRecord reads a row of loadColumns (after the rowid).
func scanRecord(row interface{ Scan(...any) error }) (*Record, error) {
	r := &Record{}
	var t recordScan
	err := row.Scan(&r.rowid, &r.Number, &r.Name, &r.Status, &r.Detail, &r.Type, &r.Jurisdiction, &r.DateOfCreation, &r.DateOfCessation,
		&t.sic, &r.AddressLine1, &r.AddressLine2, &r.Locality, &r.Region, &r.PostalCode, &r.Country,
		&r.Etag, &t.src, &t.srcTime, &r.Timepoint, &t.since, &r.StatusCheckPending, &r.MissingFromBulk, &r.BulkAsOf, &t.deleted, &t.firstSeen)
	if err != nil {
		return nil, err
	}
	if t.sic != "" {
		r.SICCodes = strings.Split(t.sic, ",")
	}
	r.Source = Source(t.src)
	r.SourceTime, _ = db.ParseTime(t.srcTime)
	r.StrikeOffSince, _ = db.ParseTime(t.since)
	r.DeletedAt, _ = db.ParseTime(t.deleted)
	r.FirstSeenAt, _ = db.ParseTime(t.firstSeen)
	return r, nil
}

// Applier applies incoming versions inside the caller's write transaction.
type Applier struct {
	Policy   Policy
	MaxDepth int64 // queue.max_depth
	// Transitions, when set, is where every writer sharing this Applier
	// counts the strike-off transitions it committed.
	Transitions *Transitions
}

// Apply runs the transition rule for one version and stores its decision
// in tx: the company row, the status_changes row, the jobs, the counters.
// seq hands out change_seq values; now is the detection time. It is a
// batch of one: many versions in one transaction go through Begin.
func (a *Applier) Apply(ctx context.Context, tx db.Querier, seq *db.Seq, in Version, now time.Time) (Decision, error) {
	b := a.Begin(tx, seq)
	d, err := b.Apply(ctx, in, now)
	if err != nil {
		return d, err
	}
	return d, b.Flush(ctx)
}

// apply runs the rule and stores the decision: a new company is buffered in
// b for a multi-row insert, a known one updated in place.
func (a *Applier) apply(ctx context.Context, tx db.Querier, seq *db.Seq, stored *Record, in Version, now time.Time, b *Batch) (Decision, error) {
	d := Decide(stored, in, a.Policy)
	if d.Write == nil {
		return d, nil
	}
	w := d.Write
	if w.FirstSeenAt.IsZero() {
		w.FirstSeenAt = now
	}
	ts, tsv := b.now.of(now)
	_, srcTime := b.source.of(w.SourceTime)
	firstSeen := tsv
	if !w.FirstSeenAt.Equal(now) {
		firstSeen = db.FormatTime(w.FirstSeenAt)
	}
	// b.args is reused: with the rowid appended below, a fresh slice per
	// row was two arrays of 27 and 54 values per update.
	args := append(b.args[:0], w.Number, w.Name, w.Status, db.NullString(w.Detail), db.NullString(w.Type), db.NullString(w.Jurisdiction),
		db.NullString(w.DateOfCreation), db.NullString(w.DateOfCessation), db.NullString(strings.Join(w.SICCodes, ",")),
		db.NullString(w.AddressLine1), db.NullString(w.AddressLine2), db.NullString(w.Locality), db.NullString(w.Region), db.NullString(w.PostalCode), db.NullString(w.Country),
		db.NullString(w.Etag), w.Source.value(), srcTime, db.NullInt(w.Timepoint),
		db.NullTime(w.StrikeOffSince), w.StatusCheckPending, db.NullString(w.MissingFromBulk), db.NullString(w.BulkAsOf), db.NullTime(w.DeletedAt),
		firstSeen, tsv, seq.Next())
	b.args = args
	if stored == nil || b.buffered(w.Number) {
		if stored == nil {
			seq.Count(CounterCompanies, 1)
		}
		b.buffer(w.Number, args)
	} else {
		// The row was just read: update it in place by rowid rather than
		// search the primary key again through an upsert.
		w.rowid = stored.rowid
		b.args = append(args, stored.rowid)
		if _, err := tx.ExecContext(ctx, updateCompany, b.args[1:]...); err != nil {
			return d, fmt.Errorf("store company %s: %w", in.Number, err)
		}
	}
	if d.Change != "" {
		a.recordChange(b, seq, stored, w, d, in, ts)
	}
	if err := a.queueWork(ctx, tx, seq, &d, in.Number, now); err != nil {
		return d, err
	}
	return d, nil
}

// recordChange buffers d's status_changes row in b and counts it.
func (a *Applier) recordChange(b *Batch, seq *db.Seq, stored, w *Record, d Decision, in Version, ts string) {
	var oldStatus, oldDetail any
	if stored != nil {
		oldStatus, oldDetail = db.NullString(stored.Status), db.NullString(stored.Detail)
	}
	_, srcTime := b.source.of(in.SourceTime)
	b.change(w.Number, d.Change, oldStatus, oldDetail, db.NullString(w.Status), db.NullString(w.Detail), string(in.Source), d.FirstSeen,
		db.NullInt(in.Timepoint), srcTime, ts, seq.Next())
	day := ts[:len(time.DateOnly)] // ts is db.FormatTime: UTC
	switch {
	case d.Change == EnteredStrikeOff && d.FirstSeen:
		seq.Count(CounterStrikeOff, 1)
		seq.Count(db.DayCounter(day, DayFirstSeen), 1)
	case d.Change == EnteredStrikeOff:
		seq.Count(CounterStrikeOff, 1)
		seq.Count(db.DayCounter(day, DayEntered), 1)
	case d.Change == LeftStrikeOff:
		seq.Count(CounterStrikeOff, -1)
		seq.Count(db.DayCounter(day, DayLeft), 1)
	}
}

func (a *Applier) queueWork(ctx context.Context, tx db.Querier, seq *db.Seq, d *Decision, number string, now time.Time) error {
	if d.QueueStatusCheck {
		if _, err := queue.EnqueueTx(ctx, tx, queue.StatusCheck, number, now, a.MaxDepth); err != nil {
			return err
		}
	}
	if d.QueueOfficers {
		res, err := queue.EnqueueTx(ctx, tx, queue.Officers, number, now, a.MaxDepth)
		if err != nil {
			return err
		}
		d.OfficersRefused = res == queue.Refused
		// The strike-off's cause and timetable, at the same priority and
		// under the same conditions (a refusal is counted in jobs_refused).
		if _, err := queue.EnqueueTx(ctx, tx, queue.FilingCheck, number, now, a.MaxDepth); err != nil {
			return err
		}
		if a.Policy.PSCs {
			// Refused past max depth like the officers (counted); the
			// two are fetched side by side.
			if _, err := queue.EnqueueTx(ctx, tx, queue.PSCs, number, now, a.MaxDepth); err != nil {
				return err
			}
		}
	}
	if d.CancelOfficers {
		// PSC fetches go whatever enrich.pscs says now: a job queued
		// while it was on is no use once the company left.
		for _, k := range []queue.Kind{queue.Officers, queue.PSCs} {
			if _, err := queue.CancelTx(ctx, tx, k, number); err != nil {
				return err
			}
		}
		if _, err := queue.CancelTx(ctx, tx, queue.FilingCheck, number); err != nil {
			return err
		}
		if err := clearStrikeOffTx(ctx, tx, seq, number); err != nil {
			return err
		}
	}
	if d.DeleteOfficers {
		if _, err := tx.ExecContext(ctx, "DELETE FROM officers WHERE company_number = ?", number); err != nil {
			return fmt.Errorf("delete officers of %s: %w", number, err)
		}
		if err := deletePSCsTx(ctx, tx, number); err != nil {
			return err
		}
	}
	return nil
}
