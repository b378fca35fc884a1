package company_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/queue"
	"github.com/matryer/is"
)

var detected = time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)

// apply applies the versions in one write transaction, each a batch of one.
func apply(tb testing.TB, d *db.DB, a *company.Applier, vs ...company.Version) []company.Decision {
	tb.Helper()
	ctx := context.Background()
	var out []company.Decision
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		for _, v := range vs {
			dec, err := a.Apply(ctx, tx, seq, v, detected)
			if err != nil {
				return err
			}
			out = append(out, dec)
		}
		return seq.Save(ctx, tx)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// applyBatch applies the versions through one company.Batch in one write
// transaction, flushed once at the end, as a stream batch does.
func applyBatch(tb testing.TB, d *db.DB, a *company.Applier, vs ...company.Version) {
	tb.Helper()
	ctx := context.Background()
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		b := a.Begin(tx, seq)
		for _, v := range vs {
			if _, err := b.Apply(ctx, v, detected); err != nil {
				return err
			}
		}
		if err := b.Flush(ctx); err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// co is a stream version of company number.
func co(number, status, detail, etag string, published time.Time, timepoint int64) company.Version {
	v := event(status, detail, etag, published, timepoint)
	v.Number = number
	return v
}

func gone(number string, published time.Time, timepoint int64) company.Version {
	v := deleted(published, timepoint)
	v.Number = number
	return v
}

func counters(tb testing.TB, d *db.DB) map[string]int64 {
	tb.Helper()
	c, err := db.Counters(context.Background(), d.W)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func count(tb testing.TB, d *db.DB, query string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := d.W.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// load reads one company as a batch does (nil when never seen).
func load(tb testing.TB, d *db.DB, number string) *company.Record {
	tb.Helper()
	found, err := company.LoadMany(context.Background(), d.W, []string{number})
	if err != nil {
		tb.Fatal(err)
	}
	return found[number]
}

// checkStrikeOff asserts that the view, the counters and InStrikeOff agree.
func checkStrikeOff(tb testing.TB, d *db.DB) {
	tb.Helper()
	is := is.New(tb)
	view := map[string]bool{}
	for _, n := range dbtest.Strings(tb, d.W, "SELECT company_number FROM strike_off_companies") {
		view[n] = true
	}
	numbers := dbtest.Strings(tb, d.W, "SELECT company_number FROM companies")
	for _, n := range numbers {
		r := load(tb, d, n)
		is.Equal(r.InStrikeOff(), view[n])                    // the view says what InStrikeOff says
		is.Equal(r.InStrikeOff(), !r.StrikeOffSince.IsZero()) // strike_off_since iff in strike-off
	}
	c := counters(tb, d)
	is.Equal(c[company.CounterCompanies], int64(len(numbers)))
	is.Equal(c[company.CounterStrikeOff], int64(len(view)))
}

func TestApplyCountersFollowEntriesAndExits(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	steps := []struct {
		name                 string
		in                   company.Version
		companies, strikeOff int64
	}{
		{"FirstSightActive", co("00000001", active, "", "a1", at(0), 1), 1, 0},
		{"FirstSightInStrikeOff", co("00000002", active, strikeOff, "b1", at(0), 2), 2, 1},
		{"Entering", co("00000001", active, strikeOff, "a2", at(1), 3), 2, 2},
		{"DuplicateEtag", co("00000001", active, strikeOff, "a2", at(2), 4), 2, 2},
		{"Stale", co("00000002", active, "", "b0", at(-5), 5), 2, 2},
		{"Leaving", co("00000002", active, "", "b2", at(3), 6), 2, 1},
		{"DeletedUnknown", gone("00000003", at(3), 7), 3, 1},
		{"DeletedInStrikeOff", gone("00000001", at(4), 8), 3, 0},
		{"ReenteringAfterDeleted", co("00000001", active, strikeOff, "a3", at(5), 9), 3, 1},
		{"DissolvedWhileDeleted", co("00000003", "dissolved", "", "c1", at(5), 10), 3, 1},
	}
	for _, s := range steps {
		apply(t, d, a, s.in)
		c := counters(t, d)
		is.Equal(c[company.CounterCompanies], s.companies) // companies after s.name
		is.Equal(c[company.CounterStrikeOff], s.strikeOff) // strike_off after s.name
		checkStrikeOff(t, d)
	}
	is.Equal(dbtest.Strings(t, d.W, "SELECT company_number FROM strike_off_companies"), []string{"00000001"})
}

func TestApplyStatusChangeRows(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	apply(t, d, a,
		co("00000001", active, strikeOff, "a1", at(0), 100), // first sight in strike-off
		co("00000002", active, "", "b1", at(0), 101),
	)
	apply(t, d, a,
		co("00000002", active, strikeOff, "b2", at(1), 102), // entering
		co("00000001", "dissolved", "", "a2", at(2), 103),   // leaving
	)
	bulk := bulkRow("liquidation", "", at(24*60))
	bulk.Number = "00000002"
	apply(t, d, a, bulk) // leaving through a bulk row

	type row struct {
		number, change         string
		oldStatus, oldDetail   sql.NullString
		newStatus, newDetail   sql.NullString
		source                 string
		firstSeen              bool
		timepoint              sql.NullInt64
		sourceTime, detectedAt string
		changeSeq              int64
	}
	rows, err := d.W.Query(`SELECT company_number, change, old_status, old_detail, new_status, new_detail, source,
		first_seen, timepoint, source_time, detected_at, change_seq FROM status_changes ORDER BY id`)
	is.NoErr(err)
	defer rows.Close()
	var got []row
	for rows.Next() {
		var r row
		is.NoErr(rows.Scan(&r.number, &r.change, &r.oldStatus, &r.oldDetail, &r.newStatus, &r.newDetail, &r.source,
			&r.firstSeen, &r.timepoint, &r.sourceTime, &r.detectedAt, &r.changeSeq))
		got = append(got, r)
	}
	is.NoErr(rows.Err())
	is.Equal(len(got), 4)

	s := func(v string) sql.NullString { return sql.NullString{String: v, Valid: v != ""} }
	first := got[0]
	is.Equal(first.number, "00000001")
	is.Equal(first.change, company.EnteredStrikeOff)
	is.True(first.firstSeen)                // never seen before
	is.True(!first.oldStatus.Valid)         // nothing before
	is.Equal(first.newStatus, s(active))    // new status
	is.Equal(first.newDetail, s(strikeOff)) // new detail
	is.Equal(first.source, "stream")        // source
	is.Equal(first.timepoint.Int64, int64(100))
	is.Equal(first.sourceTime, "2026-11-28T12:00:00Z")
	is.Equal(first.detectedAt, "2026-11-28T23:41:36Z")

	entered := got[1]
	is.Equal(entered.number, "00000002")
	is.Equal(entered.change, company.EnteredStrikeOff)
	is.True(!entered.firstSeen)
	is.Equal(entered.oldStatus, s(active))
	is.Equal(entered.oldDetail, s(""))
	is.Equal(entered.timepoint.Int64, int64(102))
	is.Equal(entered.sourceTime, "2026-11-28T12:01:00Z")

	left := got[2]
	is.Equal(left.number, "00000001")
	is.Equal(left.change, company.LeftStrikeOff)
	is.Equal(left.oldDetail, s(strikeOff))
	is.Equal(left.newStatus, s("dissolved"))
	is.Equal(left.timepoint.Int64, int64(103))

	viaBulk := got[3]
	is.Equal(viaBulk.number, "00000002")
	is.Equal(viaBulk.change, company.LeftStrikeOff)
	is.Equal(viaBulk.newStatus, s("liquidation"))
	is.Equal(viaBulk.source, "bulk")
	is.True(!viaBulk.timepoint.Valid) // NULL for bulk
	is.Equal(viaBulk.sourceTime, "2026-11-29T12:00:00Z")

	for i := 1; i < len(got); i++ {
		is.True(got[i].changeSeq > got[i-1].changeSeq) // change_seq strictly increases
	}
	checkStrikeOff(t, d)
}

// Every write takes a change_seq above every value committed before it, in
// this transaction or an earlier one, and the counter keeps the highest.
func TestApplyChangeSeqStrictlyIncreases(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "api"}}
	batches := [][]company.Version{
		{co("00000001", active, "", "a1", at(0), 1), co("00000002", active, strikeOff, "b1", at(0), 2)},
		{co("00000001", active, strikeOff, "a2", at(1), 3)},
		{co("00000001", active, strikeOff, "a2", at(2), 4)}, // unchanged: takes nothing
		{co("00000002", active, "", "b2", at(2), 5), gone("00000001", at(3), 6), co("00000003", "liquidation", "", "c1", at(3), 7)},
		{apiAnswer(active, "", "b2", at(10))},
	}
	batches[4][0].Number = "00000002"

	var high int64
	for i, b := range batches {
		apply(t, d, a, b...)
		seqs := []int64{}
		for _, q := range []string{
			"SELECT change_seq FROM companies WHERE change_seq > ? ORDER BY change_seq",
			"SELECT change_seq FROM status_changes WHERE change_seq > ? ORDER BY change_seq",
		} {
			rows, err := d.W.Query(q, high)
			is.NoErr(err)
			for rows.Next() {
				var n int64
				is.NoErr(rows.Scan(&n))
				seqs = append(seqs, n)
			}
			is.NoErr(rows.Err())
			rows.Close()
		}
		is.Equal(count(t, d, "SELECT count(*) FROM companies WHERE change_seq <= 0"), int64(0))
		if i == 2 {
			is.Equal(len(seqs), 0) // an unchanged version writes nothing
		} else {
			is.True(len(seqs) > 0) // the batch wrote rows above the previous high-water mark
		}
		// No value is taken twice across tables.
		seen := map[int64]bool{}
		for _, n := range seqs {
			is.True(!seen[n])
			seen[n] = true
			high = max(high, n)
		}
		is.Equal(counters(t, d)["change_seq"], high) // the counter is the highest value taken
	}
	// status_changes in insertion order have strictly increasing change_seq.
	var prev int64
	rows, err := d.W.Query("SELECT change_seq FROM status_changes ORDER BY id")
	is.NoErr(err)
	defer rows.Close()
	for rows.Next() {
		var n int64
		is.NoErr(rows.Scan(&n))
		is.True(n > prev)
		prev = n
	}
	is.NoErr(rows.Err())
}

func addOfficer(tb testing.TB, d *db.DB, number, id string) {
	tb.Helper()
	_, err := d.W.Exec(`INSERT INTO officers (company_number, officer_id, name, officer_role, fetched_at, change_seq)
		VALUES (?, ?, 'SMITH, John', 'director', '2026-11-28T13:00:00Z', 1)`, number, id)
	if err != nil {
		tb.Fatal(err)
	}
}

func TestApplyOfficersOnExit(t *testing.T) {
	tests := []struct {
		name   string
		policy company.Policy
		exit   company.Version
		want   int64
	}{
		{"DefaultDeletesOnExit", company.Policy{ConfirmExit: "stream"}, co("SC571653", active, "", "e2", at(1), 101), 0},
		{"KeepOfficersKeeps", company.Policy{ConfirmExit: "stream", KeepOfficers: true}, co("SC571653", active, "", "e2", at(1), 101), 2},
		{"DeletedEventDeletes", company.Policy{ConfirmExit: "api"}, gone("SC571653", at(1), 101), 0},
		{"DissolutionDeletes", company.Policy{ConfirmExit: "api"}, co("SC571653", "dissolved", "", "e2", at(1), 101), 0},
		{"HybridKeepsUntilConfirmed", company.Policy{ConfirmExit: "api"}, co("SC571653", active, "", "e2", at(1), 101), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			d := dbtest.Open(t)
			a := &company.Applier{Policy: tt.policy}
			apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100), co("00000006", active, strikeOff, "x1", at(0), 99))
			addOfficer(t, d, "SC571653", "abc")
			addOfficer(t, d, "SC571653", "def")
			addOfficer(t, d, "00000006", "ghi")
			apply(t, d, a, tt.exit)
			is.Equal(count(t, d, "SELECT count(*) FROM officers WHERE company_number = 'SC571653'"), tt.want)
			is.Equal(count(t, d, "SELECT count(*) FROM officers WHERE company_number = '00000006'"), int64(1)) // others untouched
		})
	}
}

func jobs(tb testing.TB, d *db.DB, kind queue.Kind, number string) int64 {
	tb.Helper()
	return count(tb, d, "SELECT count(*) FROM jobs WHERE kind = ? AND company_number = ? AND state IN ('queued', 'running')", kind, number)
}

func TestApplyQueuesAndCancelsOfficers(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}

	apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100))
	is.Equal(jobs(t, d, queue.Officers, "SC571653"), int64(1))    // first sight on the stream queues officers
	is.Equal(jobs(t, d, queue.FilingCheck, "SC571653"), int64(1)) // and its filing history
	is.Equal(counters(t, d)[queue.CounterPending], int64(2))

	apply(t, d, a, co("SC571653", active, "", "e2", at(1), 101))
	is.Equal(jobs(t, d, queue.Officers, "SC571653"), int64(0)) // leaving cancels the queued fetches
	is.Equal(jobs(t, d, queue.FilingCheck, "SC571653"), int64(0))
	is.Equal(counters(t, d)[queue.CounterPending], int64(0))

	// Two entries while the first fetch runs: still one job.
	apply(t, d, a, co("SC571653", active, strikeOff, "e3", at(2), 102))
	_, err := d.W.Exec("UPDATE jobs SET state = 'running' WHERE company_number = 'SC571653'")
	is.NoErr(err)
	apply(t, d, a, co("SC571653", active, "", "e4", at(3), 103)) // a running fetch is not cancelled
	apply(t, d, a, co("SC571653", active, strikeOff, "e5", at(4), 104))
	is.Equal(jobs(t, d, queue.Officers, "SC571653"), int64(1))
	is.Equal(jobs(t, d, queue.FilingCheck, "SC571653"), int64(1))
	is.Equal(counters(t, d)[queue.CounterPending], int64(2))
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes WHERE company_number = 'SC571653' AND change = 'entered_strike_off'"), int64(3))
}

func TestApplyBulkFirstSightQueuesOnlyWithOfficers(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	row := func(n string) company.Version {
		v := bulkRow(active, strikeOff, t0)
		v.Number = n
		return v
	}
	apply(t, d, &company.Applier{}, row("00000001"))
	apply(t, d, &company.Applier{Policy: company.Policy{OfficersOnFirstSight: true}}, row("00000002"))
	is.Equal(jobs(t, d, queue.Officers, "00000001"), int64(0))
	is.Equal(jobs(t, d, queue.Officers, "00000002"), int64(1))
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes WHERE first_seen = 1"), int64(2))
	checkStrikeOff(t, d)
}

func TestApplyOfficersRefusedPastMaxDepth(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "api"}, MaxDepth: 1}
	apply(t, d, a, co("00000001", active, strikeOff, "a1", at(0), 1), co("00000002", active, strikeOff, "b1", at(0), 2))
	is.Equal(jobs(t, d, queue.Officers, "00000001"), int64(1))
	is.Equal(jobs(t, d, queue.Officers, "00000002"), int64(0))
	is.Equal(jobs(t, d, queue.FilingCheck, "00000001"), int64(0))
	is.Equal(counters(t, d)[queue.CounterRefused], int64(3)) // officers of 2, filing checks of 1 and 2
	// A status check goes in whatever the depth.
	apply(t, d, a, co("00000002", active, "", "b2", at(1), 3))
	is.Equal(jobs(t, d, queue.StatusCheck, "00000002"), int64(1))
	checkStrikeOff(t, d) // a refused job never loses the entry itself
}

func TestApplyHybridThenAPIAnswer(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "api"}}
	apply(t, d, a, co("SC571653", active, strikeOff, "e1", at(0), 100))
	addOfficer(t, d, "SC571653", "abc")

	hybrid := co("SC571653", active, "", "e2", at(1), 101)
	hybrid.Name = "ACME HOLDINGS LTD"
	dec := apply(t, d, a, hybrid)
	is.Equal(dec[0].Outcome, company.Applied)
	r := load(t, d, "SC571653")
	is.Equal(r.Name, "ACME HOLDINGS LTD")
	is.Equal(r.Detail, strikeOff) // the status stays
	is.True(r.StatusCheckPending)
	is.Equal(r.StrikeOffSince, at(0))
	is.Equal(jobs(t, d, queue.StatusCheck, "SC571653"), int64(1))
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes"), int64(1)) // only the entry
	is.Equal(count(t, d, "SELECT count(*) FROM officers"), int64(1))
	checkStrikeOff(t, d)

	dec = apply(t, d, a, apiAnswer(active, "", "e2", at(10)))
	is.Equal(dec[0].Change, company.LeftStrikeOff)
	r = load(t, d, "SC571653")
	is.True(!r.StatusCheckPending)
	is.Equal(r.Source, company.API)
	is.Equal(r.Detail, "")
	is.Equal(count(t, d, "SELECT count(*) FROM officers"), int64(0))
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes WHERE change = 'left_strike_off' AND source = 'api'"), int64(1))
	checkStrikeOff(t, d)
}

// What Apply stores, LoadMany reads back as the same record.
func TestApplyLoadRoundTrip(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	in := co("SC571653", active, strikeOff, "e1", at(0), 100)
	in.AddressLine2 = "Second Floor"
	in.Region = "Lanarkshire"
	in.DateOfCessation = ""
	apply(t, d, &company.Applier{}, in)
	r := load(t, d, "SC571653")
	is.Equal(r.Version, company.Version{
		Number: "SC571653", Name: "ACME LTD", Status: active, Detail: strikeOff, Type: "ltd", Jurisdiction: "scotland",
		DateOfCreation: "2017-07-11", SICCodes: []string{"56290", "70229"}, AddressLine1: "1 High Street",
		AddressLine2: "Second Floor", Locality: "Glasgow", Region: "Lanarkshire", PostalCode: "G1 1AA", Country: "Scotland",
		Etag: "e1", Source: company.Stream, SourceTime: at(0), Timepoint: 100,
	})
	is.Equal(r.StrikeOffSince, at(0))
	is.Equal(r.FirstSeenAt, detected)
	is.True(r.DeletedAt.IsZero())

	is.True(load(t, d, "00000000") == nil) // never seen
}

// Every company chwatch writes has the entry of its current change_seq in
// the change log: new ones logged by the batch's INSERT (more than one
// statement's worth, one of them written twice before the flush), known
// ones by the update trigger.
func TestChangeLogHasEveryWrite(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "api"}}
	var first []company.Version
	for i := range 60 {
		first = append(first, co(fmt.Sprintf("%08d", i), active, "", "a", at(0), int64(i+1)))
	}
	first = append(first, co("00000055", active, strikeOff, "b", at(1), 61)) // again, still buffered
	applyBatch(t, d, a, first...)
	apply(t, d, a, co("00000003", active, strikeOff, "c", at(2), 62)) // a known company written again

	const current = `SELECT count(*) FROM companies c WHERE EXISTS (SELECT 1 FROM company_changes l
		WHERE l.change_seq = c.change_seq AND l.company_number = c.company_number)`
	is.Equal(count(t, d, current), int64(60))                                // every company's current entry
	is.Equal(count(t, d, "SELECT count(*) FROM company_changes"), int64(61)) // and one superseded
	is.Equal(count(t, d, "SELECT count(DISTINCT company_number) FROM company_changes"), int64(60))
}

// TestBatchStatusChanges: a batch buffers its status changes and writes
// them many to a statement; every one lands, in the order of its
// change_seq, for new and known companies alike.
func TestBatchStatusChanges(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "api"}}
	apply(t, d, a, co("00000999", active, "", "a", at(0), 1)) // known before the batch
	var vs []company.Version
	for i := range 70 { // more than two statements' worth
		vs = append(vs, co(fmt.Sprintf("%08d", i), active, strikeOff, "a", at(1), int64(i+2)))
	}
	vs = append(vs, co("00000999", active, strikeOff, "b", at(1), 72)) // a known company enters
	applyBatch(t, d, a, vs...)
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes WHERE change = 'entered_strike_off'"), int64(71))
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes WHERE first_seen = 1"), int64(70))
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes WHERE company_number = '00000999' AND first_seen = 0 AND old_status = 'active'"), int64(1))
	// ids follow change_seq: no row is out of order with the one before it.
	is.Equal(count(t, d, `SELECT count(*) FROM status_changes s JOIN status_changes p ON p.id = s.id - 1
		WHERE p.change_seq >= s.change_seq`), int64(0))
}

// TestLoadManyRanges: a list whose range holds no company loads nothing
// without a lookup of each number, and a range that holds one still finds
// exactly the companies listed.
func TestLoadManyRanges(t *testing.T) {
	d := dbtest.Open(t)
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "api"}}
	apply(t, d, a, co("00000005", active, "", "a", at(0), 1), co("SC000001", active, "", "a", at(0), 2))
	for _, tc := range []struct {
		numbers []string
		want    []string
	}{
		{[]string{"00000001", "00000004"}, nil},             // below every company
		{[]string{"00000006", "00000009", "OC000001"}, nil}, // between two
		{[]string{"00000009", "00000001"}, nil},             // around one, unsorted
		{[]string{"00000009", "00000005", "00000001"}, []string{"00000005"}},
		{[]string{"SC000001"}, []string{"SC000001"}}, // one number
		{[]string{"SC000001", "00000005"}, []string{"00000005", "SC000001"}},
	} {
		t.Run(strings.Join(tc.numbers, ","), func(t *testing.T) {
			is := is.New(t)
			found, err := company.LoadMany(context.Background(), d.W, tc.numbers)
			is.NoErr(err)
			got := slices.Sorted(maps.Keys(found))
			is.Equal(len(got), len(tc.want))
			for i := range got {
				is.Equal(got[i], tc.want[i])
			}
		})
	}
}
