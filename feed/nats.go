package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/logging"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the JetStream stream chwatch creates when none captures
// feed.nats_subject.
const StreamName = "CHWATCH"

// DuplicateWindow is the created stream's de-duplication window: a message
// published again with the same Nats-Msg-Id within it is stored once.
const DuplicateWindow = 24 * time.Hour

// PublishTimeout bounds one publish and its PubAck.
const PublishTimeout = 10 * time.Second

// NATSSink publishes each message to NATS JetStream with its identity as
// Nats-Msg-Id; a PubAck is delivery.
type NATSSink struct {
	url, subject, name string
	secrets            []string

	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
}

// NewNATS returns the sink for feed.nats_url (a secret: it may carry
// credentials) and feed.nats_subject; name is the client's connection name.
func NewNATS(rawURL, subject, name string) *NATSSink {
	return &NATSSink{url: rawURL, subject: subject, name: name, secrets: logging.Secrets(rawURL)}
}

// Name is NATS.
func (n *NATSSink) Name() string { return NATS }

// Open connects and makes sure one stream captures both subjects (the
// subject and subject.officers): an existing one is used untouched; with
// none, StreamName is created (subjects S and S.>, file storage, a
// DuplicateWindow duplicate window).
func (n *NATSSink) Open(ctx context.Context) error {
	nc, err := nats.Connect(n.url, nats.Name(n.name), nats.MaxReconnects(-1),
		// No client-side buffer while disconnected: a publish fails at
		// once and the feed's own retry (with the same identity) takes over.
		nats.ReconnectBufSize(-1))
	if err != nil {
		return scrub(fmt.Errorf("connect to NATS: %w", err), n.secrets)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return scrub(fmt.Errorf("open JetStream: %w", err), n.secrets)
	}
	stream, err := n.ensureStream(ctx, js)
	if err != nil {
		nc.Close()
		return scrub(err, n.secrets)
	}
	n.nc, n.js, n.stream = nc, js, stream
	return nil
}

func (n *NATSSink) ensureStream(ctx context.Context, js jetstream.JetStream) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	officers := Message{Officers: true}.Subject(n.subject)
	main, err := js.StreamNameBySubject(ctx, n.subject)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return "", fmt.Errorf("look up the JetStream stream of %s: %w", n.subject, err)
	}
	other, err2 := js.StreamNameBySubject(ctx, officers)
	if err2 != nil && !errors.Is(err2, jetstream.ErrStreamNotFound) {
		return "", fmt.Errorf("look up the JetStream stream of %s: %w", officers, err2)
	}
	switch {
	case main != "" && main == other:
		return main, nil
	case main != "" || other != "":
		return "", fmt.Errorf("JetStream stream %q captures %s but %q captures %s: one stream must capture both (add subjects %s and %s.> to one, or pick another feed.nats_subject)",
			main, n.subject, other, officers, n.subject, n.subject)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       StreamName,
		Subjects:   []string{n.subject, n.subject + ".>"},
		Storage:    jetstream.FileStorage,
		Duplicates: DuplicateWindow,
	})
	if err != nil {
		return "", fmt.Errorf("create JetStream stream %s for %s: %w (a stream of that name may exist with other subjects: add %s and %s.> to it, or delete it)",
			StreamName, n.subject, err, n.subject, n.subject)
	}
	return StreamName, nil
}

// Close drains nothing (every message was acknowledged or will be sent
// again) and closes the connection.
func (n *NATSSink) Close() {
	if n.nc != nil {
		n.nc.Close()
	}
}

// Deliver publishes m and waits for its PubAck. A duplicate (a message the
// stream already holds, sent again after a crash) is a delivery too.
func (n *NATSSink) Deliver(ctx context.Context, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	_, err := n.js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject(n.subject), Data: m.Body},
		jetstream.WithMsgID(m.Identity), jetstream.WithExpectStream(n.stream))
	if err != nil {
		return scrub(fmt.Errorf("publish to NATS: %w", err), n.secrets)
	}
	return nil
}
