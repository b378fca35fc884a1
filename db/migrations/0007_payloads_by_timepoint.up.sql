-- event_payloads keyed by its timepoint alone (the rowid): one B-tree instead
-- of a table plus a (stream, timepoint) key index, so a commit appends its
-- payloads to one tail instead of two (docs/design.md, "Bytes written per
-- event"). chwatch consumes one stream, whose timepoints are unique. The
-- table is rebuilt, in timepoint order: a copy of the payloads kept
-- (retention.event_payload), whose old pages go to the free list.
ALTER TABLE event_payloads RENAME TO event_payloads_0001;
CREATE TABLE event_payloads ( -- raw event JSON, deleted after retention.event_payload
  stream    TEXT NOT NULL, -- 'companies'
  timepoint INTEGER PRIMARY KEY NOT NULL, -- matches stream_events; the rowid, so the table is its only B-tree
  payload   TEXT NOT NULL -- the line as received
);
INSERT INTO event_payloads (stream, timepoint, payload)
  SELECT stream, timepoint, payload FROM event_payloads_0001 ORDER BY stream, timepoint; -- the old key order: no sort
DROP TABLE event_payloads_0001;
