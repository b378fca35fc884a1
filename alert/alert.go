// Package alert posts short JSON messages to the operator's webhook when the
// service's state changes (stream up or down, breaker, gaps). Delivery is best
// effort and never blocks the caller; the webhook URL, which often carries a
// token, is never logged.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Sender posts alerts to one webhook.
type Sender struct {
	url    string
	client *http.Client
	log    *slog.Logger
	queue  chan Message
}

// Message is the JSON body posted.
type Message struct {
	Service string    `json:"service"`
	Host    string    `json:"host"`
	Kind    string    `json:"kind"`
	Text    string    `json:"text"`
	Time    time.Time `json:"time"`
}

// New returns a sender for url; with an empty url, Send only logs.
func New(url string, log *slog.Logger) *Sender {
	return &Sender{url: url, client: &http.Client{Timeout: 10 * time.Second}, log: log, queue: make(chan Message, 64)}
}

// Run delivers queued messages until ctx is done.
func (s *Sender) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.queue:
			s.post(ctx, m)
		}
	}
}

// Send queues an alert; when the queue is full the alert is logged and dropped.
func (s *Sender) Send(kind, text string) {
	host, _ := os.Hostname()
	m := Message{Service: "chwatch", Host: host, Kind: kind, Text: text, Time: time.Now().UTC()}
	if s.url == "" {
		return
	}
	select {
	case s.queue <- m:
	default:
		s.log.Warn("alert queue full: alert not sent", "kind", kind, "text", text)
	}
}

func (s *Sender) post(ctx context.Context, m Message) {
	body, _ := json.Marshal(m)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		s.log.Warn("alert not sent: bad alert.webhook_url")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// The error text holds the URL: log only that it failed.
		s.log.Warn("alert not sent: webhook unreachable", "kind", m.Kind)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		s.log.Warn("alert not accepted by webhook", "kind", m.Kind, "status", resp.StatusCode)
	}
}
