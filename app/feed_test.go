package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/feed"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// feedHook is a change feed consumer that answers 503 while down, and
// keeps the identities it took, in the order they first arrived.
type feedHook struct {
	mu    sync.Mutex
	down  bool
	order []string
	seen  map[string]bool
	bad   []string
}

func (h *feedHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var m struct {
		ID   string `json:"message_id"`
		Type string `json:"message_type"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.ID != r.Header.Get(feed.IdentityHeader) {
		h.bad = append(h.bad, string(b))
		return
	}
	if m.Type == "status_change" && !h.seen[m.ID] {
		h.seen[m.ID] = true
		h.order = append(h.order, m.ID)
	}
}

func (h *feedHook) setDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

func (h *feedHook) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.order)
}

// chwatch run with a feed webhook that is down while the backlog is
// ingested: status turns WARNING and feed_backlog is raised; once it is
// back, every status change arrives, in order, and the alert resolves.
func TestWebhookFeedEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("several seconds against the simulator")
	}
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 61, Companies: 2000, Events: 4000, Backlog: 4000, Heartbeat: 50 * time.Millisecond})
	is.NoErr(err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	consumer := &feedHook{down: true, seen: map[string]bool{}}
	csrv := httptest.NewServer(consumer)
	t.Cleanup(csrv.Close)
	alerts := newWebhook(t, 0)
	cfg := testConfig(t, srv.URL)
	cfg.Feed.WebhookURL = csrv.URL + "/chwatch"
	cfg.Alert.WebhookURL = alerts.url()
	cfg.Status.DownWarn = config.Duration{Duration: time.Second}
	stop := startRun(t, cfg, runOptions{startFrom: sim.DefaultFirstTimepoint, beatEvery: 20 * time.Millisecond,
		alertEvery: 10 * time.Millisecond, feedBackoff: 10 * time.Millisecond})
	waitCursor(t, cfg.Database.Path, s.Truth().LastTimepoint, 60*time.Second)
	alerts.wait(t, "feed_backlog", 0, func(m alert.Message) bool { return m.Kind == alert.FeedBacklog && !m.Resolved })

	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut, environ: []string{"CHWATCH_STATUS_DOWN_WARN=1s"}}
	code := e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "status", "--json"})
	is.Equal(code, 1) // WARNING
	var rep struct {
		Reasons []string `json:"reasons"`
		Feed    []struct {
			Name    string `json:"name"`
			Backlog int64  `json:"backlog"`
			Behind  bool   `json:"behind"`
			Error   string `json:"last_error"`
		} `json:"feed"`
	}
	is.NoErr(json.Unmarshal([]byte(out.String()), &rep))
	is.Equal(len(rep.Feed), 1)
	is.Equal(rep.Feed[0].Name, feed.Webhook)
	is.True(rep.Feed[0].Behind)
	is.True(rep.Feed[0].Backlog > 100)
	is.True(strings.Contains(rep.Feed[0].Error, "503"))
	is.True(strings.Contains(strings.Join(rep.Reasons, "; "), "change feed sink webhook behind"))

	consumer.setDown(false)
	want := changeIDs(t, cfg.Database.Path)
	eventually(t, "every change delivered", 60*time.Second, func() bool { return len(consumer.got()) >= len(want) })
	alerts.wait(t, "feed_backlog resolved", 0, func(m alert.Message) bool { return m.Kind == alert.FeedBacklog && m.Resolved })
	is.NoErr(stop())
	is.Equal(consumer.got(), want) // every change, in order
	is.Equal(len(consumer.bad), 0)
	t.Logf("%d status changes delivered after the consumer came back", len(want))
}
