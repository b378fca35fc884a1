package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/feed"
	"github.com/chwatch/chwatch/feed/feedtest"
	"github.com/matryer/is"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamIDs reads every message of stream name on subject, in stream
// order, as their message_id.
func streamIDs(tb testing.TB, js jetstream.JetStream, name, subject string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			tb.Fatalf("get message %d: %v", seq, err)
		}
		if m.Subject != subject {
			continue
		}
		var body struct {
			ID string `json:"message_id"`
		}
		if err := json.Unmarshal(m.Data, &body); err != nil {
			tb.Fatal(err)
		}
		if h := m.Header.Get(jetstream.MsgIDHeader); h != body.ID {
			tb.Errorf("message %d: Nats-Msg-Id %q, body %q", seq, h, body.ID)
		}
		out = append(out, body.ID)
	}
	return out
}

// With no stream capturing the subject, CHWATCH is created as documented;
// a redelivery from an older position (a crash before the position was
// saved) is stored once, thanks to Nats-Msg-Id.
func TestNATSCreatesStreamAndDeduplicates(t *testing.T) {
	is := is.New(t)
	url := feedtest.NATSServer(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	_, _, err := feed.Sync(ctx, d, []string{feed.NATS}, t0)
	is.NoErr(err)
	for i := range 30 {
		change(t, d, fmt.Sprintf("%08d", i), true, t0.Add(time.Duration(i)*time.Second))
	}
	deliver := func() {
		rctx, cancel := context.WithCancel(ctx)
		f := feed.New(feed.Config{DB: d, Sinks: []feed.Sink{feed.NewNATS(url, "chwatch.changes", "test")}, Poll: 5 * time.Millisecond, Batch: 8})
		done := make(chan struct{})
		go func() { defer close(done); f.Run(rctx) }()
		waitFor(t, "delivery", func() bool { s, err := feed.Read(ctx, d.R); return err == nil && s[0].Backlog == 0 })
		cancel()
		<-done
	}
	deliver()
	_, err = d.W.Exec("UPDATE feed_sinks SET delivered_id = 10") // as if the last positions were never saved
	is.NoErr(err)
	deliver()

	nc, err := nats.Connect(url)
	is.NoErr(err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	is.NoErr(err)
	s, err := js.Stream(ctx, feed.StreamName)
	is.NoErr(err)
	info, err := s.Info(ctx)
	is.NoErr(err)
	is.Equal(info.Config.Subjects, []string{"chwatch.changes", "chwatch.changes.>"})
	is.Equal(info.Config.Storage, jetstream.FileStorage)
	is.Equal(info.Config.Duplicates, feed.DuplicateWindow)
	got := streamIDs(t, js, feed.StreamName, "chwatch.changes")
	var want []string
	rows, err := d.R.Query("SELECT id FROM status_changes ORDER BY id")
	is.NoErr(err)
	for rows.Next() {
		var id int64
		is.NoErr(rows.Scan(&id))
		want = append(want, fmt.Sprintf("change-%d", id))
	}
	is.Equal(got, want) // each once, in order
}

// An existing stream that captures the subjects is used untouched; one
// that captures only the subject, not .officers, is a clear error.
func TestNATSExistingStream(t *testing.T) {
	is := is.New(t)
	url := feedtest.NATSServer(t)
	ctx := context.Background()
	nc, err := nats.Connect(url)
	is.NoErr(err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	is.NoErr(err)
	cfg := jetstream.StreamConfig{Name: "MINE", Subjects: []string{"mine.>"}, Storage: jetstream.MemoryStorage, Duplicates: time.Hour}
	_, err = js.CreateStream(ctx, cfg)
	is.NoErr(err)

	sink := feed.NewNATS(url, "mine.changes", "test")
	is.NoErr(sink.Open(ctx))
	is.NoErr(sink.Deliver(ctx, feed.Message{ID: 1, Identity: "change-1", Body: []byte(`{"message_id":"change-1"}`)}))
	sink.Close()
	s, err := js.Stream(ctx, "MINE")
	is.NoErr(err)
	info, err := s.Info(ctx)
	is.NoErr(err)
	is.Equal(info.Config.Subjects, cfg.Subjects) // untouched
	is.Equal(info.Config.Storage, jetstream.MemoryStorage)
	is.Equal(info.State.Msgs, uint64(1))
	_, err = js.Stream(ctx, feed.StreamName)
	is.True(err != nil) // nothing created

	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "HALF", Subjects: []string{"half"}})
	is.NoErr(err)
	err = feed.NewNATS(url, "half", "test").Open(ctx)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "half.officers"))
}
