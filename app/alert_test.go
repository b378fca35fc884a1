package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chwatch/chwatch/alert"
	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// webhook records the alerts posted to it; it answers the first fail
// requests with 500.
type webhook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []alert.Message
	raw  strings.Builder
	fail int
}

const hookToken = "T0KEN-b4dc0ffee-hook"

func newWebhook(t *testing.T, fail int) *webhook {
	w := &webhook{fail: fail}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m alert.Message
		body := new(strings.Builder)
		json.NewDecoder(teeReader{r.Body, body}).Decode(&m)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.raw.WriteString(body.String())
		if w.fail > 0 {
			w.fail--
			rw.WriteHeader(500)
			return
		}
		w.got = append(w.got, m)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

type teeReader struct {
	r interface{ Read([]byte) (int, error) }
	w *strings.Builder
}

func (t teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.w.Write(p[:n])
	return n, err
}

func (w *webhook) url() string { return w.srv.URL + "/services/" + hookToken + "?sig=" + hookToken }

// wait waits for a message matching ok, past the first from received, and
// returns it.
func (w *webhook) wait(t *testing.T, what string, from int, ok func(alert.Message) bool) alert.Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, m := range w.got[min(from, len(w.got)):] {
			if ok(m) {
				w.mu.Unlock()
				return m
			}
		}
		w.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s alert within 20s; got %+v", what, w.messages())
	return alert.Message{}
}

func (w *webhook) messages() []alert.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]alert.Message(nil), w.got...)
}

// outage is a switch in front of the simulator: while down it cuts the
// stream connections and answers every request 503, as an outage of
// Companies House would look.
type outage struct {
	h       http.Handler
	mu      sync.Mutex
	down    bool
	cancels map[*http.Request]context.CancelFunc
}

func (o *outage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	if o.down {
		o.mu.Unlock()
		http.Error(w, "<html>503 Service Unavailable</html>", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	o.cancels[r] = cancel
	o.mu.Unlock()
	defer func() { o.mu.Lock(); delete(o.cancels, r); o.mu.Unlock(); cancel() }()
	o.h.ServeHTTP(w, r.WithContext(ctx))
}

func (o *outage) set(down bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = down
	if down {
		for _, c := range o.cancels {
			c()
		}
	}
}

// The operator's webhook hears of a 416 gap and of its resolution, of the
// stream down longer than status.down_warn and of its return, each once.
func TestAlertsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end (-short)")
	}
	is := is.New(t)
	s, err := sim.New(sim.Config{Seed: 21, Companies: 300, Backlog: 1500, Rate: 200, Retention: 500, Heartbeat: 20 * time.Millisecond})
	is.NoErr(err)
	sw := &outage{h: s.Handler(), cancels: map[*http.Request]context.CancelFunc{}}
	srv := httptest.NewServer(sw)
	defer srv.Close()
	hook := newWebhook(t, 1) // the first post fails: it is retried
	cfg := testConfig(t, srv.URL)
	cfg.Alert.WebhookURL = hook.url()
	cfg.Status.DownWarn.Duration = 300 * time.Millisecond
	first := int64(sim.DefaultFirstTimepoint)
	d := openWriter(t, cfg.Database.Path)
	_, err = d.MigrateUp(context.Background(), time.Now())
	is.NoErr(err)
	// A cursor older than the simulator keeps: the resume is a 416.
	_, err = d.W.Exec(`INSERT INTO stream_cursor (stream, timepoint, url, updated_at) VALUES ('companies', ?, ?, '2026-11-20T10:00:00Z')`, first+10, srv.URL)
	is.NoErr(err)
	d.Close()

	stop := startRun(t, cfg, runOptions{beatEvery: 20 * time.Millisecond, alertEvery: 500 * time.Millisecond})
	gap := hook.wait(t, "gap", 0, func(m alert.Message) bool { return m.Kind == alert.Gap && !m.Resolved })
	is.Equal(gap.Severity, alert.Warning)
	is.True(strings.Contains(gap.Text, "timepoints 47000011 to"))
	is.True(strings.Contains(gap.Text, "chwatch gaps resolve 1"))
	is.Equal(gap.Details["from_timepoint"], float64(first+11))
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut}
	is.Equal(e.run(context.Background(), []string{"chwatch", "--db", cfg.Database.Path, "gaps", "resolve", "1", "--note", "checked"}), 0)
	hook.wait(t, "gap resolved", 0, func(m alert.Message) bool { return m.Kind == alert.Gap && m.Resolved && m.Severity == alert.OK })

	waitCursor(t, cfg.Database.Path, first+1600, 30*time.Second) // live
	// (Confirming the 416 kept the stream down for 2s at the start: that
	// was alerted too.)
	n := len(hook.messages())
	sw.set(true)
	down := hook.wait(t, "stream down", n, func(m alert.Message) bool { return m.Kind == alert.StreamDown && !m.Resolved })
	is.Equal(down.Severity, alert.Warning)
	is.True(strings.Contains(down.Text, "stream down for more than 300ms"))
	is.True(strings.Contains(down.Text, "503")) // the reason, for the operator
	is.True(!down.Since.IsZero())
	sw.set(false)
	up := hook.wait(t, "stream back", n, func(m alert.Message) bool { return m.Kind == alert.StreamDown && m.Resolved })
	is.True(strings.HasPrefix(up.Text, "resolved after "))
	is.NoErr(stop())

	// Each change once: raised and resolved alternate, no repeats while a
	// condition held.
	last := map[string]bool{}
	for _, m := range hook.messages() {
		is.Equal(m.Service, "chwatch")
		if resolved, seen := last[m.Kind]; seen && resolved == m.Resolved {
			t.Errorf("%s alert repeated: %q", m.Kind, m.Text)
		}
		last[m.Kind] = m.Resolved
	}
}

// chwatch alert test: 0 on a 2xx, 1 otherwise, 2 without a URL; the URL is
// never printed.
func TestCmdAlertTest(t *testing.T) {
	hook := newWebhook(t, 0)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }))
	defer refusing.Close()
	tests := []struct {
		name string
		url  string
		code int
		want string
	}{
		{"Sent", hook.url(), 0, "HTTP 200"},
		{"Refused", refusing.URL + "/services/" + hookToken, 1, "HTTP 404"},
		{"Unreachable", "http://127.0.0.1:1/services/" + hookToken, 1, "connection refused"},
		{"NoURL", "", 2, "alert.webhook_url is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			var out, errOut strings.Builder
			e := &env{stdout: &out, stderr: &errOut, environ: []string{"CHWATCH_ALERT_WEBHOOK_URL=" + tt.url}}
			code := e.run(context.Background(), []string{"chwatch", "alert", "test"})
			is.Equal(code, tt.code)
			is.True(strings.Contains(out.String()+errOut.String(), tt.want))
			is.True(!strings.Contains(out.String()+errOut.String(), hookToken))
		})
	}
	is := is.New(t)
	msgs := hook.messages()
	is.Equal(len(msgs), 1)
	is.Equal(msgs[0].Kind, alert.Test)
}
