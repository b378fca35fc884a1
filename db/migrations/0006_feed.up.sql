-- The change feed (package feed): an outbox written in the same transaction
-- as each status change and officer replacement while a sink is configured,
-- and each sink's place in it.
CREATE TABLE feed_sinks ( -- one row per configured feed sink (owned by package feed), kept in step with the configuration by `chwatch run` at start; while any row exists, status changes (through the trigger feed_status_change, which exists only then) and officer replacements write feed_outbox
  name          TEXT PRIMARY KEY, -- webhook | nats
  delivered_id  INTEGER NOT NULL, -- the feed_outbox id this sink has delivered up to, in order; a sink added later starts at the newest id (no backfill)
  delivered_at  TEXT, -- when it last delivered a message (NULL: not yet)
  failing_since TEXT, -- when its current run of failed attempts began (NULL while delivering)
  last_error    TEXT, -- its last failure (never the URL: sink URLs are secrets)
  last_error_at TEXT, -- when
  added_at      TEXT NOT NULL -- when `run` first found it configured
);

CREATE TABLE feed_outbox ( -- the change feed's messages, oldest first (owned by package feed): written in the transaction of the change, deleted once every sink has delivered them (the newest row is always kept, so ids are never reused)
  id         INTEGER PRIMARY KEY, -- delivery order; a message's identity is change-<change_id> or officers-<id>
  kind       TEXT NOT NULL CHECK (kind IN ('change', 'officers')), -- change: a status_changes row; officers: an officer replacement
  change_id  INTEGER, -- kind change: the status_changes id the message is read from at delivery (those rows are never deleted)
  body       TEXT, -- kind officers: the message as it stood in the replacement's transaction (JSON: company_number, fetched_at, officers under export officers' columns)
  created_at TEXT NOT NULL -- when the change was written
);
