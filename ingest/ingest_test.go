package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/ingest"
	"github.com/chwatch/chwatch/stream"
	"github.com/matryer/is"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// fakeTimer is a batch timer the test fires by hand.
type fakeTimer struct {
	asked chan time.Duration
	fire  chan time.Time
}

func newFakeTimer() *fakeTimer {
	return &fakeTimer{asked: make(chan time.Duration, 100), fire: make(chan time.Time)}
}

func (f *fakeTimer) After(d time.Duration) <-chan time.Time {
	f.asked <- d
	return f.fire
}

func newProc(d *db.DB, after func(time.Duration) <-chan time.Time, maxEvents int) *ingest.Processor {
	return ingest.New(d, ingest.Config{
		BatchMaxEvents: maxEvents, BatchMaxWait: 20 * time.Millisecond, After: after,
		Applier:   &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}},
		StreamURL: "https://stream.example", OnGap: "sweep", Now: func() time.Time { return t0 },
	})
}

// event builds a changed event for company n at timepoint tp.
func event(tp int64, n, name, status, detail string, pub time.Time) stream.Item {
	return eventWith(tp, n, name, status, detail, pub, nil)
}

// largeEvent is an event whose profile fills pages of its own (a company
// with a long history of names): storing it needs new pages, which a full
// disk refuses.
func largeEvent(tp int64, n, name string, pub time.Time) stream.Item {
	var names []map[string]any
	for i := range 200 {
		names = append(names, map[string]any{"name": fmt.Sprintf("%s FORMERLY NUMBER %d", name, i), "effective_from": "2001-01-01", "ceased_on": "2002-01-01"})
	}
	return eventWith(tp, n, name, "active", "", pub, map[string]any{"previous_company_names": names})
}

func eventWith(tp int64, n, name, status, detail string, pub time.Time, extra map[string]any) stream.Item {
	data := map[string]any{"company_number": n, "company_name": name, "company_status": status,
		"etag": fmt.Sprintf("etag-%s-%d", n, tp), "type": "ltd", "registered_office_address": map[string]any{"postal_code": "AB1 2CD"}}
	if detail != "" {
		data["company_status_detail"] = detail
	}
	maps.Copy(data, extra)
	raw, _ := json.Marshal(map[string]any{"resource_kind": "company-profile", "resource_id": n, "data": data,
		"event": map[string]any{"timepoint": tp, "published_at": pub.Format("2006-01-02T15:04:05"), "type": "changed"}})
	it, err := stream.Decode(raw, pub.Add(time.Second))
	if err != nil {
		panic(err)
	}
	return it
}

func count(t *testing.T, d *db.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := d.R.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// A lone event commits when the batch timer fires, without waiting for
// more events: within batch_max_wait.
func TestLoneEventCommitsWithinMaxWait(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	timer := newFakeTimer()
	p := newProc(d, timer.After, 5000)
	in := make(chan stream.Item)
	done := make(chan error)
	go func() { done <- p.Run(context.Background(), in) }()
	in <- event(100, "SC000001", "ACME LTD", "active", "", t0)
	is.Equal(<-timer.asked, 20*time.Millisecond) // the batch waits at most batch_max_wait
	is.Equal(count(t, d, "SELECT count(*) FROM stream_events"), int64(0))
	timer.fire <- t0.Add(20 * time.Millisecond)
	close(in)
	is.NoErr(<-done)
	is.Equal(count(t, d, "SELECT count(*) FROM stream_events"), int64(1))
	is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(100))
}

// A backlog of 10,000 events commits in far fewer than 10,000 transactions.
func TestBacklogGroupCommits(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	timer := newFakeTimer()
	p := newProc(d, timer.After, 5000)
	in := make(chan stream.Item, 10000)
	for i := range 10000 {
		in <- event(int64(1000+i), fmt.Sprintf("%08d", i%3000), "CO", "active", "", t0.Add(time.Duration(i)*time.Second))
	}
	close(in)
	is.NoErr(p.Run(context.Background(), in))
	is.Equal(count(t, d, "SELECT count(*) FROM stream_events"), int64(10000))
	batches := len(timer.asked)
	t.Logf("10000 events in %d transactions", batches)
	is.True(batches <= 10) // thousands per batch (a batch closes at 5000 events or 2 MiB)
}

// Replays, stale copies, same-etag duplicates and invalid events each get
// their outcome, and a replayed timepoint writes nothing.
func TestOutcomes(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	p := newProc(d, time.After, 100)
	ctx := context.Background()
	first := event(10, "SC000001", "ACME LTD", "active", "", t0)
	dup := event(11, "SC000001", "ACME LTD", "active", "", t0.Add(time.Minute))
	dup.Event.Data = first.Event.Data // same etag: content duplicate
	strike := event(12, "SC000001", "ACME LTD", "active", company.StrikeOffDetail, t0.Add(2*time.Minute))
	stale := event(13, "SC000001", "OLD NAME LTD", "active", "", t0.Add(-time.Hour))
	bad, _ := stream.Decode([]byte(`{"resource_kind":"company-profile","resource_id":"SC000002","data":{"company_name":"X"},"event":{"timepoint":14,"published_at":"2026-11-28T12:00:00","type":"changed"}}`), t0)
	is.NoErr(p.Commit(ctx, []stream.Item{first, dup, strike, stale, bad}))
	is.NoErr(p.Commit(ctx, []stream.Item{first, strike})) // replayed: duplicates

	rows, err := d.R.Query("SELECT timepoint, outcome, coalesce(reason, '') FROM stream_events ORDER BY timepoint")
	is.NoErr(err)
	var got []string
	for rows.Next() {
		var tp int64
		var o, r string
		is.NoErr(rows.Scan(&tp, &o, &r))
		got = append(got, fmt.Sprintf("%d %s %v", tp, o, r != ""))
	}
	rows.Close()
	is.Equal(strings.Join(got, "; "), "10 applied false; 11 unchanged false; 12 applied false; 13 stale false; 14 invalid true")
	is.Equal(count(t, d, "SELECT count(*) FROM status_changes WHERE change = 'entered_strike_off'"), int64(1))
	is.Equal(count(t, d, "SELECT count(*) FROM jobs WHERE kind = 'officers'"), int64(1))
	is.Equal(count(t, d, "SELECT count(*) FROM event_payloads"), int64(5))
	c, err := db.Counters(ctx, d.R)
	is.NoErr(err)
	is.Equal(c["events_applied"], int64(2))
	is.Equal(c["events_invalid"], int64(1))
	is.Equal(c["strike_off"], int64(1))
}

// A reject is recorded, does not move the cursor, and queues a status check
// for the company named in its head.
func TestRejectQueuesStatusCheck(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	p := newProc(d, time.After, 100)
	rej := stream.Item{Reject: &stream.Reject{Reason: "oversized", Bytes: 5 << 20, Timepoint: 77, ReceivedAt: t0,
		Excerpt: []byte(`{"resource_kind":"company-profile","resource_uri":"/company/SC571653","resource_id":"SC571653","data":{"sim_padding":"xxxx`)}}
	is.NoErr(p.Commit(context.Background(), []stream.Item{rej}))
	is.Equal(count(t, d, "SELECT count(*) FROM stream_rejects WHERE timepoint = 77"), int64(1))
	is.Equal(count(t, d, "SELECT count(*) FROM stream_events"), int64(0))
	is.Equal(count(t, d, "SELECT count(*) FROM stream_cursor"), int64(0))
	is.Equal(count(t, d, "SELECT count(*) FROM jobs WHERE kind = 'status_check' AND company_number = 'SC571653'"), int64(1))
}

// A gap is recorded with both ends and, with on_gap = sweep, every company
// in strike-off gets a sweep check.
func TestGapQueuesSweep(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	p := newProc(d, time.After, 100)
	ctx := context.Background()
	is.NoErr(p.Commit(ctx, []stream.Item{
		event(10, "SC000001", "A LTD", "active", company.StrikeOffDetail, t0),
		event(11, "SC000002", "B LTD", "active", company.StrikeOffDetail, t0),
		event(12, "SC000003", "C LTD", "active", "", t0),
	}))
	gap := stream.Item{Gap: &stream.Gap{FromTimepoint: 13, ToTimepoint: 5000, FromTime: t0, ToTime: t0.Add(96 * time.Hour), Reason: "416 timepoint too old"}}
	is.NoErr(p.Commit(ctx, []stream.Item{gap, event(5000, "SC000003", "C LTD", "active", "", t0.Add(96*time.Hour))}))
	is.Equal(count(t, d, "SELECT count(*) FROM stream_gaps WHERE from_timepoint = 13 AND to_timepoint = 5000 AND resolved_at IS NULL"), int64(1))
	is.Equal(count(t, d, "SELECT count(*) FROM jobs WHERE kind = 'sweep_check'"), int64(2))
	is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(5000))
}

// A commit that fails on a full disk holds the batch and the cursor,
// reports the state, and the same batch commits once there is room again.
func TestFailedCommitHoldsCursor(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	p := newProc(d, time.After, 100)
	ctx := context.Background()
	is.NoErr(p.Commit(ctx, []stream.Item{event(10, "SC000001", "A LTD", "active", "", t0)}))
	release := dbtest.Fill(t, d)
	in := make(chan stream.Item, 1)
	in <- largeEvent(11, "SC000002", "B LTD", t0)
	close(in)
	done := make(chan error)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { done <- p.Run(runCtx, in) }()
	deadline := time.Now().Add(10 * time.Second)
	for p.State().Writable && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := p.State()
	is.True(!st.Writable)
	is.True(st.DiskFull)
	is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(10)) // the cursor holds
	release()
	is.NoErr(<-done)
	is.True(p.State().Writable)
	is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(11))
}

// After a gap the cursor follows the stream even below where it was: a
// cursor a corrupt timepoint left at 2^63-1 cannot be resumed from, and
// would otherwise never move again. The gap and its first event may fall in
// different batches. Past them the cursor only moves forward again.
func TestGapResetsUnresumableCursor(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	p := newProc(d, time.After, 100)
	ctx := context.Background()
	_, err := d.W.Exec(`INSERT INTO stream_cursor (stream, timepoint, url, updated_at) VALUES ('companies', ?, 'https://stream.example', '2026-11-20T10:00:00Z')`, int64(math.MaxInt64))
	is.NoErr(err)
	gap := stream.Item{Gap: &stream.Gap{FromTimepoint: math.MaxInt64, ToTimepoint: 5000, Reason: "cursor cannot be resumed from"}}
	is.NoErr(p.Commit(ctx, []stream.Item{gap}))
	is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(math.MaxInt64)) // no event yet
	is.NoErr(p.Commit(ctx, []stream.Item{event(5000, "SC000001", "A LTD", "active", "", t0)}))
	is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(5000))
	is.Equal(p.State().Timepoint, int64(5000))
	is.NoErr(p.Commit(ctx, []stream.Item{event(4000, "SC000002", "B LTD", "active", "", t0)}))
	is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(5000))
}

// A stop while commits fail retries at once and keeps trying for the stop
// timeout: when writing works again within it, the batch in flight commits
// and Run returns nil. When it does not, Run returns ErrUncommitted within
// the timeout and the cursor holds.
func TestStopWhileCommitsFail(t *testing.T) {
	for _, recovers := range []bool{true, false} {
		timeout := 300 * time.Millisecond
		if recovers {
			timeout = 10 * time.Second // ample: space returns well within it
		}
		t.Run(fmt.Sprintf("Recovers=%v", recovers), func(t *testing.T) {
			is := is.New(t)
			d := dbtest.Open(t)
			p := ingest.New(d, ingest.Config{
				BatchMaxEvents: 100, BatchMaxWait: 20 * time.Millisecond, StopTimeout: timeout,
				Applier:   &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}},
				StreamURL: "https://stream.example", OnGap: "sweep", Now: func() time.Time { return t0 },
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			is.NoErr(p.Commit(ctx, []stream.Item{event(10, "SC000001", "A LTD", "active", "", t0)}))
			release := dbtest.Fill(t, d)
			in := make(chan stream.Item, 1)
			in <- largeEvent(11, "SC000002", "B LTD", t0)
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, in) }()
			deadline := time.Now().Add(10 * time.Second)
			for p.State().Writable && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			is.True(p.State().DiskFull)
			began := time.Now()
			cancel()
			close(in) // as the client does on a stop
			if recovers {
				release()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after the stop")
			}
			if recovers {
				is.NoErr(err)
				is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(11))
				return
			}
			is.True(errors.Is(err, ingest.ErrUncommitted))
			is.True(strings.Contains(err.Error(), "database or disk is full")) // why, not the stop
			is.True(time.Since(began) < 5*time.Second)
			is.True(p.State().DiskFull)
			is.Equal(count(t, d, "SELECT timepoint FROM stream_cursor"), int64(10)) // the cursor holds
		})
	}
}

// Events and rejects are counted by the UTC day they arrived, in the
// batch's transaction, and the counts agree with the rows; entries and
// exits are counted by the day they were detected, first sightings apart.
func TestDayCounters(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	p := newProc(d, time.After, 100)
	ctx := context.Background()
	late := time.Date(2026, 11, 27, 23, 59, 58, 0, time.UTC) // received 23:59:59 on the 27th
	first := event(10, "SC000001", "A LTD", "active", "", late)
	strike := event(11, "SC000002", "B LTD", "active", company.StrikeOffDetail, late.Add(2*time.Second)) // received the 28th: a first sight
	enter := event(12, "SC000001", "A LTD", "active", company.StrikeOffDetail, t0)
	leave := event(13, "SC000002", "B LTD", "dissolved", "", t0)
	stale := event(14, "SC000001", "OLD LTD", "active", "", late) // received late: the 27th
	rej := stream.Item{Reject: &stream.Reject{Reason: "not_json", Bytes: 3, ReceivedAt: t0, Excerpt: []byte("{{{")}}
	is.NoErr(p.Commit(ctx, []stream.Item{first, strike, enter, rej}))
	is.NoErr(p.Commit(ctx, []stream.Item{leave, stale, first})) // first: a duplicate, not counted

	day27, err := db.DayCounters(ctx, d.R, "2026-11-27")
	is.NoErr(err)
	is.Equal(day27, map[string]int64{"events_applied": 1, "events_stale": 1})
	day28, err := db.DayCounters(ctx, d.R, "2026-11-28")
	is.NoErr(err)
	is.Equal(day28, map[string]int64{ // detection is t0, the 28th, for every transition
		"events_applied": 3, "rejects": 1,
		company.DayEntered: 1, company.DayFirstSeen: 1, company.DayLeft: 1,
	})
	// The same counts from the rows.
	for _, day := range []string{"2026-11-27", "2026-11-28"} {
		counts, err := db.DayCounters(ctx, d.R, day)
		is.NoErr(err)
		var events int64
		for k, n := range counts {
			if strings.HasPrefix(k, ingest.CounterEventsPrefix) {
				events += n
			}
		}
		is.Equal(events, count(t, d, "SELECT count(*) FROM stream_events WHERE received_at >= ? AND received_at < date(?, '+1 day')", day, day))
	}
}
