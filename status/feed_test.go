package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/status"
	"github.com/matryer/is"
)

// A feed sink whose oldest waiting message is older than status.down_warn
// is a WARNING with its backlog and last error; one that keeps up is not.
func TestFeedSinkBehind(t *testing.T) {
	tests := []struct {
		name    string
		oldest  time.Duration // age of the oldest undelivered message
		warning bool
	}{
		{"KeepingUp", 10 * time.Second, false},
		{"Behind", 2 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			d := dbtest.Open(t)
			setService(t, d, running())
			ctx := context.Background()
			at := db.FormatTime(now.Add(-tt.oldest))
			for _, q := range []string{
				`INSERT INTO feed_sinks (name, delivered_id, delivered_at, failing_since, last_error, last_error_at, added_at)
					VALUES ('webhook', 2, '` + at + `', '` + at + `', 'webhook answered 503 Service Unavailable', '` + db.FormatTime(now) + `', '2026-11-01T00:00:00Z')`,
				`INSERT INTO feed_sinks (name, delivered_id, added_at) VALUES ('nats', 5, '2026-11-01T00:00:00Z')`,
				`INSERT INTO feed_outbox (id, kind, change_id, created_at) VALUES (1, 'change', 1, '` + at + `'), (2, 'change', 2, '` + at + `'),
					(3, 'change', 3, '` + at + `'), (4, 'change', 4, '` + at + `'), (5, 'officers', NULL, '` + at + `')`,
			} {
				_, err := d.W.ExecContext(ctx, q)
				is.NoErr(err)
			}
			r, err := status.Gather(ctx, d, th, now)
			is.NoErr(err)
			is.Equal(len(r.Feed), 2)
			is.Equal(r.Feed[0].Name, "nats")
			is.Equal(r.Feed[0].Backlog, int64(0))
			web := r.Feed[1]
			is.Equal(web.Backlog, int64(3))
			is.Equal(web.OldestAgeSeconds, tt.oldest.Seconds())
			is.Equal(web.Behind, tt.warning)
			reasons := strings.Join(r.Reasons, "; ")
			if tt.warning {
				is.Equal(r.Verdict, status.Warning)
				is.True(strings.Contains(reasons, "change feed sink webhook behind: 3 undelivered"))
				is.True(strings.Contains(reasons, "webhook answered 503"))
			} else {
				is.Equal(r.Verdict, status.OK)
			}
			var screen bytes.Buffer
			status.Render(&screen, r, "v1")
			is.True(strings.Contains(screen.String(), "webhook: 3 messages waiting"))
			b, err := json.Marshal(r)
			is.NoErr(err)
			var m struct {
				Feed []map[string]any `json:"feed"`
			}
			is.NoErr(json.Unmarshal(b, &m))
			is.Equal(m.Feed[1]["backlog"], 3.0)
			is.Equal(m.Feed[1]["behind"], tt.warning)
		})
	}
}
