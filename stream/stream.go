// Package stream reads the Companies House companies stream: connect, resume,
// decode the envelope, reconnect by policy.
package stream

import (
	"encoding/json"
	"time"
)

// Item is what the client hands to its consumer: exactly one of Event,
// Reject and Gap is set.
type Item struct {
	Event  *Event
	Reject *Reject
	Gap    *Gap
}

// Event is one line of the stream that carries a usable timepoint.
type Event struct {
	Timepoint int64
	// PublishedAt is event.published_at, read as UTC when it has no zone.
	PublishedAt time.Time
	// Type is event.type: "changed", "deleted" or any other string.
	Type          string
	ResourceKind  string
	ResourceID    string
	ResourceURI   string
	FieldsChanged []string
	// Data is the resource (the company profile), untouched; nil when absent
	// or null.
	Data json.RawMessage
	// Raw is the whole line, without its newline.
	Raw        []byte
	ReceivedAt time.Time
	// Invalid is non-empty when the line has a usable timepoint but an
	// unusable envelope; it says why. The consumer records the timepoint
	// with outcome "invalid".
	Invalid string
}

// Reject is a line with no usable timepoint: not JSON, oversized, without
// event.timepoint, or with one too implausible to move the cursor to.
type Reject struct {
	// Reason is ReasonNotJSON, ReasonOversized, ReasonNoTimepoint or
	// ReasonImplausibleTimepoint.
	Reason string
	// Bytes is the full length of the line, without its newline.
	Bytes int64
	// Excerpt is the first 200 bytes of the line.
	Excerpt []byte
	// Timepoint is recovered from the line's tail when possible (the event
	// object comes last), else 0; for an implausible timepoint, that one.
	Timepoint int64
	// After is, for an implausible timepoint, the timepoint it jumped from.
	After      int64
	ReceivedAt time.Time
}

// Gap reports events lost to a confirmed 416: it is sent once, right before
// the first event of the live connection that follows.
type Gap struct {
	// FromTimepoint is the timepoint asked for and refused.
	FromTimepoint int64
	// ToTimepoint is the first timepoint received live.
	ToTimepoint int64
	// FromTime is the published_at of the last event before the gap (zero
	// when unknown).
	FromTime time.Time
	// ToTime is the published_at of the first live event.
	ToTime time.Time
	Reason string
}

// State is a snapshot of the client, for status and health reports.
type State struct {
	Connected bool
	// Since is when Connected last changed.
	Since      time.Time
	LastError  string
	LastStatus int // the last HTTP status received, 0 before any
	Reconnects int64
	// Unauthorized is set by a 401 and cleared by a later 200.
	Unauthorized bool
	// NextTry is when the next connection attempt is due while waiting.
	NextTry    time.Time
	LastByteAt time.Time
	// Timepoint is the last timepoint received (events, and rejects with a
	// recovered timepoint).
	Timepoint int64
	// Stalled is set when a connection was cut because a line took longer
	// than LineTimeout to arrive (bytes trickle in, nothing is delivered),
	// from StalledSince; the next event clears it.
	Stalled      bool
	StalledSince time.Time
}
