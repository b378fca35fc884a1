package ops

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Health is /healthz: 200 while the stream is connected or reconnecting
// within its backoff and the database is writable (and no part says
// otherwise), 503 otherwise, with a body saying why.
func (h *Heartbeat) Health(ctx context.Context) (int, map[string]any) {
	now := h.cfg.Now()
	st := h.stream.at(now)
	ps := h.cfg.Ingest.State()
	body := map[string]any{"stream": st.state, "stream_since": st.since.UTC().Format(time.RFC3339), "database_writable": ps.Writable, "timepoint": ps.Timepoint}
	var why []string
	switch st.state {
	case "unauthorized":
		why = append(why, "stream answers 401 (bad stream key)")
	case "stalled":
		why = append(why, "stream stalled: lines arrive too slowly (each connection is cut after stream.line_timeout and retried)")
	}
	if st.err != "" {
		body["stream_error"] = st.err
	}
	if !ps.Writable {
		w := "database not writable"
		if ps.DiskFull {
			w = "disk full: the cursor holds until space returns"
		}
		why = append(why, w)
	}
	for _, p := range h.cfg.Parts {
		if p.Health == nil {
			continue
		}
		facts, reasons := p.Health(ctx, now)
		maps.Copy(body, facts)
		why = append(why, reasons...)
	}
	code := http.StatusOK
	if len(why) > 0 {
		code = http.StatusServiceUnavailable
		body["reasons"] = why
	}
	body["ok"] = code == http.StatusOK
	return code, body
}

// Handler serves GET /metrics (sets, then the Go and process metrics, in
// Prometheus text) and GET /healthz (h.Health as JSON).
func Handler(h *Heartbeat, sets ...*metrics.Set) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, s := range sets {
			s.WritePrometheus(w)
		}
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		code, body := h.Health(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
	return mux
}
