// Package feed is the change feed: it hands each status change and officer
// replacement chwatch records to other systems (a webhook, NATS JetStream),
// at least once and in order, without ever holding up ingestion.
//
// It owns the tables feed_outbox and feed_sinks. A message enters
// feed_outbox in the transaction of its change, only while a sink is
// configured (feed_sinks has a row): a status_changes row through a
// trigger that Sync creates while a sink is configured and drops when none
// is, an officer replacement through OfficersTx, which
// company.ReplaceOfficersTx calls. Each sink's position in the outbox
// moves only after the sink took the message (a 2xx, a JetStream PubAck);
// rows every sink has delivered are pruned in small batches.
package feed

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/export"
)

// The sinks chwatch can deliver to; their names key feed_sinks.
const (
	Webhook = "webhook"
	NATS    = "nats"
)

// OfficersTx records an officer replacement of company number for the feed,
// inside the replacement's write transaction, after its rows are written:
// the message carries the officers as they stand in tx, under the officers
// export's columns. Nothing is written while no sink is configured.
func OfficersTx(ctx context.Context, tx db.Querier, number string, fetchedAt time.Time) error {
	on, err := enabled(ctx, tx)
	if err != nil || !on {
		return err
	}
	cols, rows, err := export.Records(ctx, tx, export.Officers, "company_number", number)
	if err != nil {
		return fmt.Errorf("feed officers of %s: %w", number, err)
	}
	var b bytes.Buffer
	b.WriteString(`{"company_number":`)
	writeJSON(&b, number)
	b.WriteString(`,"fetched_at":`)
	writeJSON(&b, db.FormatTime(fetchedAt))
	b.WriteString(`,"officers":[`)
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		object(&b, cols, r)
	}
	b.WriteString("]}")
	_, err = tx.ExecContext(ctx, "INSERT INTO feed_outbox (kind, body, created_at) VALUES ('officers', ?, ?)", b.String(), db.FormatTime(fetchedAt))
	if err != nil {
		return fmt.Errorf("feed officers of %s: write outbox: %w", number, err)
	}
	return nil
}

// enabled reports whether a sink is configured: the same condition the
// status_changes trigger tests.
func enabled(ctx context.Context, q db.Querier) (bool, error) {
	var on bool
	if err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM feed_sinks)").Scan(&on); err != nil {
		return false, fmt.Errorf("read feed sinks: %w", err)
	}
	return on, nil
}

// object writes cols and vals as one JSON object, keys in column order.
func object(b *bytes.Buffer, cols []string, vals []any) {
	b.WriteByte('{')
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSON(b, c)
		b.WriteByte(':')
		v := vals[i]
		if raw, ok := v.([]byte); ok {
			v = string(raw)
		}
		writeJSON(b, v)
	}
	b.WriteByte('}')
}

func writeJSON(b *bytes.Buffer, v any) {
	out, err := json.Marshal(v)
	if err != nil {
		out = []byte("null") // SQLite values are numbers, text and NULL: cannot happen
	}
	b.Write(out)
}

// Message is one outbox row made ready to send.
type Message struct {
	ID int64 // feed_outbox id: the delivery order
	// Identity names the message for the consumer's de-duplication:
	// change-<status_changes id> or officers-<outbox id>.
	Identity string
	Officers bool      // an officer replacement (subject suffix .officers)
	Body     []byte    // JSON
	Created  time.Time // when the change was written (whole seconds)
}

// Subject is the NATS subject of m under base (feed.nats_subject).
func (m Message) Subject(base string) string {
	if m.Officers {
		return base + ".officers"
	}
	return base
}

// Next reads up to limit messages after outbox id after, in order, through
// q. A status change is read from status_changes with its company's name,
// under the changes export's columns.
func Next(ctx context.Context, q db.Querier, after int64, limit int) ([]Message, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, kind, change_id, body, created_at FROM feed_outbox WHERE id > ? ORDER BY id LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("read feed outbox: %w", err)
	}
	type row struct {
		id       int64
		kind     string
		changeID sql.NullInt64
		body     sql.NullString
		created  string
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.kind, &r.changeID, &r.body, &r.created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read feed outbox: %w", err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read feed outbox: %w", err)
	}
	out := make([]Message, 0, len(rs))
	for _, r := range rs {
		m := Message{ID: r.id}
		m.Created, _ = db.ParseTime(r.created)
		var b bytes.Buffer
		switch r.kind {
		case "officers":
			m.Officers = true
			m.Identity = "officers-" + strconv.FormatInt(r.id, 10)
			body := r.body.String
			if len(body) < 2 || body[0] != '{' {
				return nil, fmt.Errorf("read feed outbox: message %d is no JSON object", r.id)
			}
			header(&b, m.Identity, "officers")
			b.WriteByte(',')
			b.WriteString(body[1:])
		default:
			m.Identity = "change-" + strconv.FormatInt(r.changeID.Int64, 10)
			cols, vals, err := export.Records(ctx, q, export.Changes, "id", r.changeID.Int64)
			if err != nil {
				return nil, fmt.Errorf("read feed message %d: %w", r.id, err)
			}
			if len(vals) != 1 {
				return nil, fmt.Errorf("read feed message %d: %w", r.id, errChangeGone)
			}
			header(&b, m.Identity, "status_change")
			b.WriteByte(',')
			inner := bytes.Buffer{}
			object(&inner, cols, vals[0])
			b.Write(inner.Bytes()[1:])
		}
		m.Body = b.Bytes()
		out = append(out, m)
	}
	return out, nil
}

var errChangeGone = errors.New("its status_changes row is gone")

// header opens a message's JSON object with its identity and type.
func header(b *bytes.Buffer, identity, typ string) {
	b.WriteString(`{"message_id":`)
	writeJSON(b, identity)
	b.WriteString(`,"message_type":`)
	writeJSON(b, typ)
}
