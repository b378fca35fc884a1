package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/export"
	"github.com/chwatch/chwatch/feed"
	"github.com/matryer/is"
)

var t0 = time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)

// change applies a version of company n that enters (in = true) or
// leaves strike-off, as a stream batch would: one status_changes row.
func change(tb testing.TB, d *db.DB, n string, in bool, at time.Time) {
	tb.Helper()
	v := company.Version{Number: n, Name: "COMPANY " + n + " LTD", Status: "active", Source: company.Stream, SourceTime: at, Etag: fmt.Sprint(at.UnixNano())}
	if in {
		v.Detail = company.StrikeOffDetail
	}
	a := &company.Applier{Policy: company.Policy{ConfirmExit: "stream"}}
	err := d.WriteTx(context.Background(), func(tx db.Tx) error {
		seq, err := db.BeginSeq(context.Background(), tx)
		if err != nil {
			return err
		}
		if _, err := a.Apply(context.Background(), tx, seq, v, at); err != nil {
			return err
		}
		return seq.Save(context.Background(), tx)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func outboxRows(tb testing.TB, d *db.DB) int {
	tb.Helper()
	var n int
	if err := d.R.QueryRow("SELECT count(*) FROM feed_outbox").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func decode(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("message %s: %v", b, err)
	}
	return m
}

// Nothing enters the outbox while no sink is configured; once one is,
// every status change does, first sightings included, under the changes
// export's columns; a sink added later starts at the newest message.
func TestOutboxOnlyWhileASinkIsConfigured(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	change(t, d, "00000001", true, t0)
	is.Equal(outboxRows(t, d), 0) // no sink: no message
	is.Equal(triggers(t, d), 0)   // and no trigger: the schema of before the feed

	added, _, err := feed.Sync(ctx, d, []string{feed.Webhook}, t0)
	is.NoErr(err)
	is.Equal(added, []string{feed.Webhook})
	is.Equal(triggers(t, d), 1)
	change(t, d, "00000002", true, t0.Add(time.Second))    // a first sighting in strike-off
	change(t, d, "00000001", false, t0.Add(2*time.Second)) // leaves
	is.Equal(outboxRows(t, d), 2)

	msgs, err := feed.Next(ctx, d.R, 0, 10)
	is.NoErr(err)
	is.Equal(len(msgs), 2)
	first := decode(t, msgs[0].Body)
	var id int64
	is.NoErr(d.R.QueryRow("SELECT id FROM status_changes WHERE company_number = '00000002'").Scan(&id))
	is.Equal(msgs[0].Identity, fmt.Sprintf("change-%d", id))
	is.Equal(first["message_id"], msgs[0].Identity)
	is.Equal(first["message_type"], "status_change")
	is.Equal(first["company_name"], "COMPANY 00000002 LTD")
	is.Equal(first["change"], company.EnteredStrikeOff)
	is.Equal(first["first_seen"], 1.0)
	is.Equal(first["old_status"], nil)
	for _, c := range export.Columns(export.Changes) {
		if _, ok := first[c]; !ok {
			t.Errorf("message lacks the changes export's column %s: %s", c, msgs[0].Body)
		}
	}
	is.Equal(decode(t, msgs[1].Body)["change"], company.LeftStrikeOff)

	// NATS added later: no backfill.
	added, _, err = feed.Sync(ctx, d, []string{feed.Webhook, feed.NATS}, t0)
	is.NoErr(err)
	is.Equal(added, []string{feed.NATS})
	sinks, err := feed.Read(ctx, d.R)
	is.NoErr(err)
	is.Equal(len(sinks), 2)
	is.Equal(sinks[0].Name, feed.NATS)
	is.Equal(sinks[0].Backlog, int64(0))
	is.Equal(sinks[1].Backlog, int64(2))
	is.Equal(sinks[1].OldestAt, t0.Add(time.Second))

	// Every sink removed: nothing more is written, the outbox empties
	// (save its newest row, which keeps ids rising).
	_, removed, err := feed.Sync(ctx, d, nil, t0)
	is.NoErr(err)
	is.Equal(removed, []string{feed.NATS, feed.Webhook})
	is.Equal(outboxRows(t, d), 1)
	is.Equal(triggers(t, d), 0)
	change(t, d, "00000003", true, t0.Add(3*time.Second))
	is.Equal(outboxRows(t, d), 1)
}

func triggers(tb testing.TB, d *db.DB) int {
	tb.Helper()
	var n int
	if err := d.R.QueryRow("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'status_changes'").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// An officer replacement is one message in its own transaction, carrying
// the officers under the officers export's columns.
func TestOfficersMessage(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	_, _, err := feed.Sync(ctx, d, []string{feed.NATS}, t0)
	is.NoErr(err)
	change(t, d, "00000001", true, t0)
	officers := []company.Officer{
		{ID: "a1", Name: "SMITH, Jane", Role: "director", AppointedOn: "2020-01-02", BirthMonth: 3, BirthYear: 1970},
		{ID: "a2", Name: "JONES, Bob", Role: "secretary"},
	}
	err = d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := company.ReplaceOfficersTx(ctx, tx, seq, "00000001", officers, t0.Add(time.Minute)); err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	})
	is.NoErr(err)
	msgs, err := feed.Next(ctx, d.R, 0, 10)
	is.NoErr(err)
	is.Equal(len(msgs), 2)
	m := msgs[1]
	is.True(m.Officers)
	is.Equal(m.Identity, fmt.Sprintf("officers-%d", m.ID))
	is.Equal(m.Subject("chwatch.changes"), "chwatch.changes.officers")
	body := decode(t, m.Body)
	is.Equal(body["message_id"], m.Identity)
	is.Equal(body["message_type"], "officers")
	is.Equal(body["company_number"], "00000001")
	is.Equal(body["fetched_at"], "2026-11-28T23:42:36Z")
	list := body["officers"].([]any)
	is.Equal(len(list), 2)
	o := list[0].(map[string]any)
	var keys []string
	for k := range o {
		keys = append(keys, k)
	}
	want := export.Columns(export.Officers)
	slices.Sort(keys)
	slices.Sort(want)
	is.Equal(keys, want) // the export's columns, no more, no fewer
	is.Equal(o["officer_id"], "a1")
	is.Equal(o["birth_year"], 1970.0)
	is.Equal(o["company_name"], "COMPANY 00000001 LTD")
}

// hook is a webhook consumer that fails while down is set.
type hook struct {
	mu      sync.Mutex
	down    bool
	got     []string // identities accepted, in order
	hdr     []string // the identity header of each accepted POST
	refused int
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		h.refused++
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	h.got = append(h.got, m["message_id"].(string))
	h.hdr = append(h.hdr, r.Header.Get(feed.IdentityHeader))
}

func (h *hook) accepted() ([]string, []string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got), slices.Clone(h.hdr), h.refused
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A webhook that is down for a while, then up: everything arrives, once
// and in order; the failure shows in feed_sinks meanwhile; delivered rows
// are pruned.
func TestWebhookDownThenUp(t *testing.T) {
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := dbtest.Open(t)
	h := &hook{down: true}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := srv.URL + "/hook/s3cr3t-t0ken"
	_, _, err := feed.Sync(ctx, d, []string{feed.Webhook}, t0)
	is.NoErr(err)
	f := feed.New(feed.Config{DB: d, Sinks: []feed.Sink{feed.NewWebhook(url, "test")}, Poll: 5 * time.Millisecond,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, PruneEvery: 10 * time.Millisecond, Batch: 7})
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()

	const n = 40
	for i := range n / 2 {
		change(t, d, fmt.Sprintf("%08d", i), true, t0.Add(time.Duration(i)*time.Second))
	}
	waitFor(t, "the failure to be recorded", func() bool {
		s, err := feed.Read(ctx, d.R)
		return err == nil && !s[0].FailingSince.IsZero()
	})
	sinks, err := feed.Read(ctx, d.R)
	is.NoErr(err)
	is.Equal(sinks[0].Backlog, int64(n/2))
	is.True(strings.Contains(sinks[0].LastError, "503"))
	is.True(!strings.Contains(sinks[0].LastError, "s3cr3t-t0ken")) // the URL is a secret
	is.True(sinks[0].Behind(t0.Add(time.Hour), 5*time.Minute))
	waitFor(t, "the service's own view of the backlog", func() bool { return f.State(feed.Webhook).Backlog == n/2 })

	h.mu.Lock()
	h.down = false
	h.mu.Unlock()
	for i := n / 2; i < n; i++ {
		change(t, d, fmt.Sprintf("%08d", i), true, t0.Add(time.Duration(i)*time.Second))
	}
	waitFor(t, "every message", func() bool { got, _, _ := h.accepted(); return len(got) >= n })
	got, hdr, refused := h.accepted()
	is.True(refused > 0)
	var want []string
	rows, err := d.R.Query("SELECT id FROM status_changes ORDER BY id")
	is.NoErr(err)
	for rows.Next() {
		var id int64
		is.NoErr(rows.Scan(&id))
		want = append(want, fmt.Sprintf("change-%d", id))
	}
	is.NoErr(rows.Err())
	is.Equal(got, want) // all, in order, none twice
	is.Equal(hdr, want)
	waitFor(t, "the position saved and the outbox pruned", func() bool {
		s, err := feed.Read(ctx, d.R)
		return err == nil && s[0].Backlog == 0 && s[0].FailingSince.IsZero() && outboxRows(t, d) == 1
	})
	cancel()
	<-done
}
