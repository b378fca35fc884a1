ALTER TABLE event_payloads RENAME TO event_payloads_0007;
CREATE TABLE event_payloads ( -- raw event JSON, deleted after retention.event_payload
  stream    TEXT NOT NULL, -- 'companies'
  timepoint INTEGER NOT NULL, -- matches stream_events
  payload   TEXT NOT NULL, -- the line as received
  PRIMARY KEY (stream, timepoint)
);
INSERT INTO event_payloads (stream, timepoint, payload)
  SELECT stream, timepoint, payload FROM event_payloads_0007 ORDER BY timepoint; -- rowid order: no sort
DROP TABLE event_payloads_0007;
