package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/chwatch/chwatch/logging"
)

// IdentityHeader carries a message's identity on a webhook POST (it is in
// the body too, as message_id): a consumer de-duplicates on it, since a
// message in flight at a crash or a timeout is sent again.
const IdentityHeader = "Chwatch-Message-Id"

// WebhookTimeout bounds one POST; a slower answer counts as a failure.
const WebhookTimeout = 10 * time.Second

// WebhookSink POSTs each message as JSON to a URL; a 2xx is delivery.
type WebhookSink struct {
	url       string
	userAgent string
	client    *http.Client
	secrets   []string
}

// NewWebhook returns the sink for feed.webhook_url (a secret: it is never
// logged or shown, nor any error that quotes it).
func NewWebhook(rawURL, userAgent string) *WebhookSink {
	return &WebhookSink{url: rawURL, userAgent: userAgent, client: &http.Client{Timeout: WebhookTimeout},
		secrets: logging.Secrets(rawURL)}
}

// Name is Webhook.
func (w *WebhookSink) Name() string { return Webhook }

// Open has nothing to prepare: the first POST tells whether the URL works.
func (w *WebhookSink) Open(context.Context) error { return nil }

// Close releases idle connections.
func (w *WebhookSink) Close() { w.client.CloseIdleConnections() }

// Deliver POSTs m.
func (w *WebhookSink) Deliver(ctx context.Context, m Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(m.Body))
	if err != nil {
		return scrub(err, w.secrets)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(IdentityHeader, m.Identity)
	if w.userAgent != "" {
		req.Header.Set("User-Agent", w.userAgent)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, token and all: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return scrub(fmt.Errorf("webhook POST: %w", err), w.secrets)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
