package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/alert"
	"github.com/matryer/is"
)

func TestSendPostsJSON(t *testing.T) {
	is := is.New(t)
	got := make(chan alert.Message, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m alert.Message
		json.NewDecoder(r.Body).Decode(&m)
		got <- m
	}))
	defer srv.Close()
	s := alert.New(srv.URL+"/hook?token=s3cret", slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	s.Send("gap", "stream gap: timepoints 1 to 2")
	select {
	case m := <-got:
		is.Equal(m.Kind, "gap")
		is.Equal(m.Service, "chwatch")
		is.True(strings.Contains(m.Text, "timepoints 1 to 2"))
	case <-time.After(10 * time.Second):
		t.Fatal("no alert posted within 10s")
	}
}

// A failing webhook is logged without its URL, which often carries a token.
func TestFailureHidesURL(t *testing.T) {
	is := is.New(t)
	logs := &syncBuffer{}
	s := alert.New("http://127.0.0.1:1/hook?token=s3cret", slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	s.Send("stream", "stream down")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "alert not sent") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	is.True(strings.Contains(logs.String(), "alert not sent"))
	is.True(!strings.Contains(logs.String(), "s3cret"))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
