-- chwatch database schema, generated from db/migrations by
-- "go test ./db -run TestSchemaFile -update"; a test fails when they differ.
-- It is what "sqlite3 chwatch.db .schema" shows. Times are ISO 8601 UTC text
-- ('2026-11-28T23:41:36Z'), dates 'YYYY-MM-DD'.

CREATE TABLE schema_migrations ( -- schema steps applied to this database
  version    INTEGER PRIMARY KEY, -- migration number (db/migrations/NNNN_*.sql)
  name       TEXT NOT NULL, -- its name
  applied_at TEXT NOT NULL -- when it was applied
);

CREATE TABLE companies ( -- one row per company chwatch has seen, from the stream, the REST API or a bulk import
  company_number        TEXT PRIMARY KEY NOT NULL, -- 8-character company number as Companies House writes it ('SC571653', '00000006'); never a number
  company_name          TEXT NOT NULL DEFAULT '', -- registered name
  company_status        TEXT NOT NULL DEFAULT '', -- API enum: active, dissolved, liquidation, ... (open set; bulk texts mapped)
  company_status_detail TEXT, -- API enum or NULL when the source has none; 'active-proposal-to-strike-off' with status 'active' means strike-off
  company_type          TEXT, -- API `type` enum (bulk CompanyCategory texts mapped; unknown texts kept verbatim)
  jurisdiction          TEXT, -- API jurisdiction enum (england-wales, scotland, northern-ireland, ...)
  date_of_creation      TEXT, -- YYYY-MM-DD
  date_of_cessation     TEXT, -- YYYY-MM-DD, set when dissolved or closed
  sic_codes             TEXT, -- comma-separated SIC codes ('56290,70229'), NULL when none
  address_line_1        TEXT, -- registered office: first address line (premises included)
  address_line_2        TEXT, -- registered office: second address line
  locality              TEXT, -- registered office: post town
  region                TEXT, -- registered office: county or region
  postal_code           TEXT, -- registered office: postcode
  country               TEXT, -- registered office: country
  etag                  TEXT, -- etag of the stored version (bulk rows have none); equal etags mean equal content
  source                TEXT NOT NULL CHECK (source = 'stream' OR source = 'bulk' OR source = 'api'), -- where the stored version came from
  source_time           TEXT NOT NULL, -- when the source says this version is from: event published_at, API Date header, bulk as-of at 00:00Z
  source_timepoint      INTEGER, -- stream timepoint of the stored version (NULL unless source is 'stream')
  strike_off_since      TEXT, -- when chwatch saw the company enter strike-off (source_time of that version); NULL unless in strike-off
  status_check_pending  INTEGER NOT NULL DEFAULT 0, -- 1 while a REST status check must confirm an exit (hybrid rule)
  missing_from_bulk     TEXT, -- as-of date of the first complete import that lacked this company; NULL when the last import had it
  bulk_as_of            TEXT, -- as-of date of the latest bulk file that listed this company (whatever the row did)
  deleted_at            TEXT, -- when a 'deleted' event removed the company (its source_time); cleared by a later version
  first_seen_at         TEXT NOT NULL, -- when chwatch first stored this company
  updated_at            TEXT NOT NULL, -- when chwatch last wrote this row
  change_seq            INTEGER NOT NULL -- value of the global change sequence at the last write (for export --state)
, strike_off_kind TEXT CHECK (strike_off_kind = 'voluntary' OR strike_off_kind = 'compulsory' OR strike_off_kind = 'unknown') /* -- why the current strike-off: voluntary (a DS01 or a voluntary first-Gazette notice), compulsory (Companies House's action), unknown (filing history checked, neither found); NULL until a filing_check ran, and cleared on leaving strike-off */, gazette_notice_on TEXT /* -- YYYY-MM-DD of the first-Gazette notice that started the current strike-off (after a re-entry, the latest notice); NULL while none is filed yet */, dissolution_due_on TEXT /* -- YYYY-MM-DD: gazette_notice_on plus two calendar months (a day past the month's end clamps: 2026-12-31 gives 2027-02-28), the earliest date Companies House may dissolve the company */, strike_off_suspended_at TEXT /* -- YYYY-MM-DD of a suspension or discontinuation of the strike-off filed after the notice; NULL when none */);

CREATE INDEX companies_strike_off ON companies (strike_off_since) WHERE strike_off_since IS NOT NULL;

CREATE VIEW strike_off_companies AS -- companies in strike-off (status active + detail active-proposal-to-strike-off, not deleted), newest entry first
  SELECT * FROM companies
  WHERE company_status = 'active'
    AND company_status_detail = 'active-proposal-to-strike-off'
    AND deleted_at IS NULL
  ORDER BY strike_off_since DESC, company_number;

CREATE TABLE status_changes ( -- every strike-off transition and status change chwatch detected, oldest first
  id             INTEGER PRIMARY KEY, -- insertion order
  company_number TEXT NOT NULL, -- the company
  change         TEXT NOT NULL CHECK (change = 'entered_strike_off' OR change = 'left_strike_off' OR change = 'status_changed'), -- what happened
  old_status     TEXT, -- company_status before (NULL on first sight)
  old_detail     TEXT, -- company_status_detail before
  new_status     TEXT, -- company_status after ('deleted' is not a status: a deleted company keeps its last status)
  new_detail     TEXT, -- company_status_detail after
  source         TEXT NOT NULL, -- stream | bulk | api
  first_seen     INTEGER NOT NULL DEFAULT 0, -- 1 when chwatch had never seen the company: the day it entered is unknown
  timepoint      INTEGER, -- stream timepoint that carried the change (NULL for bulk and api)
  source_time    TEXT NOT NULL, -- when the source says the change is from
  detected_at    TEXT NOT NULL, -- when chwatch wrote this row
  change_seq     INTEGER NOT NULL -- global change sequence
);

CREATE INDEX status_changes_company ON status_changes (company_number, id);

CREATE INDEX status_changes_change_seq ON status_changes (change_seq);

CREATE INDEX status_changes_detected ON status_changes (detected_at, change, first_seen);

CREATE TABLE stream_events ( -- exactly one row per distinct stream timepoint received
  stream       TEXT NOT NULL, -- 'companies'
  timepoint    INTEGER NOT NULL, -- the stream's offset of this event
  resource_id  TEXT, -- company number the event is about
  event_type   TEXT, -- changed | deleted | other values as sent
  published_at TEXT, -- event.published_at, normalised to UTC with a Z
  received_at  TEXT NOT NULL, -- when chwatch read the line
  outcome      TEXT NOT NULL CHECK (outcome = 'applied' OR outcome = 'unchanged' OR outcome = 'stale' OR outcome = 'deleted' OR outcome = 'invalid'), -- what applying it did
  reason       TEXT, -- why it was invalid (NULL otherwise)
  PRIMARY KEY (stream, timepoint)
) WITHOUT ROWID;

CREATE TABLE stream_rejects ( -- lines that carried no usable timepoint: not JSON, oversized; never counted as events
  id          INTEGER PRIMARY KEY, -- insertion order
  stream      TEXT NOT NULL, -- 'companies'
  received_at TEXT NOT NULL, -- when the line arrived
  reason      TEXT NOT NULL, -- not_json | oversized | no_timepoint | ...
  bytes       INTEGER NOT NULL, -- full length of the line
  excerpt     BLOB, -- its first 200 bytes
  timepoint   INTEGER -- timepoint recovered from the line's tail, NULL when none
);

CREATE TABLE stream_cursor ( -- where each stream resumes: timepoint + 1
  stream       TEXT PRIMARY KEY NOT NULL, -- 'companies'
  timepoint    INTEGER NOT NULL, -- the highest timepoint recorded, whatever its outcome
  url          TEXT NOT NULL, -- the stream base URL this cursor belongs to (run refuses another without --reset-cursor)
  published_at TEXT, -- published_at of that event
  updated_at   TEXT NOT NULL -- when the cursor last moved
);

CREATE TABLE stream_gaps ( -- stretches of the stream chwatch could not replay (416)
  id             INTEGER PRIMARY KEY, -- gap number, used by `chwatch gaps resolve ID`
  stream         TEXT NOT NULL, -- 'companies'
  from_timepoint INTEGER NOT NULL, -- first timepoint missed (cursor + 1)
  to_timepoint   INTEGER, -- first timepoint received live afterwards
  from_time      TEXT, -- published_at of the last event before the gap
  to_time        TEXT, -- published_at of the first live event
  detected_at    TEXT NOT NULL, -- when chwatch recorded the gap
  reason         TEXT NOT NULL, -- why ('416 timepoint too old')
  resolved_at    TEXT, -- when it was resolved, NULL while open
  resolution     TEXT -- 'import' | 'sweep' | the operator's note
);

CREATE INDEX stream_gaps_open ON stream_gaps (id) WHERE resolved_at IS NULL;

CREATE TABLE imports ( -- bulk imports, one row per file, for resume and history
  id            INTEGER PRIMARY KEY, -- import number
  file          TEXT NOT NULL, -- file name as given
  sha256        TEXT NOT NULL, -- content hash: the same file resumes or is recognised as done
  as_of         TEXT NOT NULL, -- YYYY-MM-DD the file describes
  rows_read     INTEGER NOT NULL DEFAULT 0, -- rows read so far
  rows_applied  INTEGER NOT NULL DEFAULT 0, -- rows that changed a company
  rows_bad      INTEGER NOT NULL DEFAULT 0, -- rows skipped as malformed
  started_at    TEXT NOT NULL, -- when the import started
  completed_at  TEXT, -- when it finished; NULL while incomplete
  resume_offset INTEGER NOT NULL DEFAULT 0, -- byte offset in the CSV after the last committed row
  resume_line   INTEGER NOT NULL DEFAULT 1 -- physical line number reached at resume_offset (the header is line 1)
, resume_number TEXT NOT NULL DEFAULT '' /* -- company number of the last committed row in (company_number, line) order; '' before the first */, resume_number_line INTEGER NOT NULL DEFAULT 0 /* -- physical line where that row starts (two rows of one number keep file order): a resumed import applies the rows after (resume_number, resume_number_line) */);

CREATE UNIQUE INDEX imports_sha256 ON imports (sha256);

CREATE TABLE service_state ( -- facts the running service refreshes every few seconds, for `status` in another process
  key        TEXT PRIMARY KEY NOT NULL, -- pid, started_at, heartbeat_at, stream_state, ...
  value      TEXT NOT NULL, -- its value as text
  updated_at TEXT NOT NULL -- when it was written
);

CREATE TABLE counters ( -- running totals kept in the same transactions as the rows they count, so status never counts millions of rows
  name  TEXT PRIMARY KEY NOT NULL, -- change_seq, companies, strike_off, events_applied, ...
  value INTEGER NOT NULL -- current value
);

CREATE TABLE jobs ( -- durable queue of REST work; package queue owns it
  id             INTEGER PRIMARY KEY, -- job number
  kind           TEXT NOT NULL CHECK (kind = 'status_check' OR kind = 'sweep_check' OR kind = 'officers' OR kind = 'filing_check' OR kind = 'pscs'), -- what to fetch
  priority       INTEGER NOT NULL, -- lower runs first: status_check 0, sweep_check 10, officers, filing_check and pscs 20
  company_number TEXT NOT NULL, -- the company
  state          TEXT NOT NULL CHECK (state = 'queued' OR state = 'running' OR state = 'done' OR state = 'dead'), -- queued | running | done | dead
  attempts       INTEGER NOT NULL DEFAULT 0, -- failures of the job itself so far (429s, budget waits, breaker refusals and expired leases spend none)
  run_after      TEXT NOT NULL, -- not before this time
  lease_until    TEXT, -- a running job's lease; past it the job is queued again
  lease_token    TEXT, -- random token set by each claim; completing or failing a job needs it, so a worker whose lease expired cannot finish a job another now holds
  last_error     TEXT, -- the last failure or deferral, without secrets
  created_at     TEXT NOT NULL, -- when queued
  updated_at     TEXT NOT NULL -- last state change
);

CREATE UNIQUE INDEX jobs_pending ON jobs (kind, company_number) WHERE state IN ('queued', 'running');

CREATE INDEX jobs_claim ON jobs (priority, run_after, id) WHERE state = 'queued';

CREATE INDEX jobs_oldest ON jobs (kind, created_at) WHERE state = 'queued';

CREATE INDEX jobs_state ON jobs (state, updated_at);

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN -- a new job: count it
  INSERT INTO counters (name, value) VALUES ('jobs.' || NEW.kind || '.' || NEW.state, 1)
    ON CONFLICT (name) DO UPDATE SET value = value + 1;
  INSERT INTO counters (name, value) SELECT 'jobs_pending', 1 WHERE NEW.state IN ('queued', 'running')
    ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER jobs_count_update AFTER UPDATE OF kind, state ON jobs WHEN OLD.kind != NEW.kind OR OLD.state != NEW.state BEGIN -- a job changed state: move its count
  INSERT INTO counters (name, value) VALUES ('jobs.' || OLD.kind || '.' || OLD.state, -1)
    ON CONFLICT (name) DO UPDATE SET value = value - 1;
  INSERT INTO counters (name, value) VALUES ('jobs.' || NEW.kind || '.' || NEW.state, 1)
    ON CONFLICT (name) DO UPDATE SET value = value + 1;
  INSERT INTO counters (name, value) SELECT 'jobs_pending', (NEW.state IN ('queued', 'running')) - (OLD.state IN ('queued', 'running')) WHERE true
    ON CONFLICT (name) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN -- a job removed: uncount it
  INSERT INTO counters (name, value) VALUES ('jobs.' || OLD.kind || '.' || OLD.state, -1)
    ON CONFLICT (name) DO UPDATE SET value = value - 1;
  INSERT INTO counters (name, value) SELECT 'jobs_pending', -1 WHERE OLD.state IN ('queued', 'running')
    ON CONFLICT (name) DO UPDATE SET value = value - 1;
END;

CREATE TABLE officers ( -- officers of companies in strike-off, fetched through the REST API (GET /company/{n}/officers, every page)
  company_number       TEXT NOT NULL, -- the company the appointment is at
  officer_id           TEXT NOT NULL, -- appointment id from the item's links.self (/company/{n}/appointments/{id}); one person with two roles is two rows
  name                 TEXT NOT NULL, -- 'SURNAME, Forenames' as published
  officer_role         TEXT, -- API enum, an open set: director, secretary, llp-member, managing-officer, ...
  appointed_on         TEXT, -- YYYY-MM-DD
  resigned_on          TEXT, -- YYYY-MM-DD as published; NULL when the item has none, which for a dissolved company does not mean serving
  nationality          TEXT, -- as published
  occupation           TEXT, -- as published
  country_of_residence TEXT, -- as published
  birth_month          INTEGER, -- month of birth (the day is never published)
  birth_year           INTEGER, -- year of birth
  address_line_1       TEXT, -- correspondence address: premises and first line
  address_line_2       TEXT, -- correspondence address: second line
  locality             TEXT, -- correspondence address: post town
  region               TEXT, -- correspondence address: county or region
  postal_code          TEXT, -- correspondence address: postcode
  country              TEXT, -- correspondence address: country
  raw                  TEXT, -- the item's JSON exactly as the API sent it, so fields and roles Companies House adds later are never lost
  fetched_at           TEXT NOT NULL, -- when the officer list was fetched
  change_seq           INTEGER NOT NULL, -- global change sequence at the last write
  PRIMARY KEY (company_number, officer_id)
);

CREATE INDEX officers_change_seq ON officers (change_seq);

CREATE TABLE api_budget ( -- the REST request budget every chwatch process on this database shares (one row, owned by package budget); the server's X-Ratelimit-Remain is the truth, this row is chwatch's best knowledge of it
  id               INTEGER PRIMARY KEY CHECK (id = 1), -- always 1: one budget per database
  key_id           TEXT NOT NULL, -- fingerprint of the API key the row belongs to (16 hex digits of its SHA-256, never the key): a new key starts afresh
  rate_limit       INTEGER NOT NULL, -- requests per window: api.rate_limit until the server's X-Ratelimit-Limit says otherwise
  window_seconds   INTEGER NOT NULL, -- window length in seconds: api.rate_window until X-Ratelimit-Window says otherwise
  remain           INTEGER NOT NULL, -- requests left in the current window: the server's last X-Ratelimit-Remain less the requests sent since
  window_end       TEXT, -- when the current window resets, on this machine's clock (the response's arrival plus Reset minus Date, never Reset read against the local clock); NULL when unknown
  server_reset     INTEGER, -- X-Ratelimit-Reset of the current window as sent (unix seconds on the server's clock): tells windows apart
  paused_until     TEXT, -- no REST request is sent before this time (after a 429, 401 or 403); NULL when not paused
  pause_reason     TEXT CHECK (pause_reason IN ('rate_limited', 'unauthorized', 'forbidden')), -- why REST work is paused
  refused          TEXT CHECK (refused IN ('unauthorized', 'forbidden')), -- the last answer was a 401 or 403 and none has succeeded since: CRITICAL in status
  shared_until     TEXT, -- until then another program is known to spend this key's budget too, and a few requests of each window are held in reserve
  requests         INTEGER NOT NULL DEFAULT 0, -- requests sent through this budget, ever (every attempt, retries included)
  rate_limited     INTEGER NOT NULL DEFAULT 0, -- 429 answers, ever
  last_status      INTEGER, -- HTTP status of the last response (0: no response, a network error or timeout)
  last_response_at TEXT, -- when it arrived
  writer           TEXT NOT NULL, -- random id of the chwatch process that wrote the row last
  updated_at       TEXT NOT NULL -- when the row was written
);

CREATE INDEX companies_dissolution_due ON companies (dissolution_due_on) WHERE dissolution_due_on IS NOT NULL;

CREATE TABLE filing_unknowns ( -- filing-history items of strike-off companies whose description chwatch does not recognise: kept raw and reported by status, never dropped (package company owns it)
  company_number TEXT NOT NULL, -- the company whose filing history holds the item
  transaction_id TEXT NOT NULL, -- the item's transaction_id (a digest of its JSON when it has none)
  description    TEXT NOT NULL, -- the item's description key as sent ('' when it has none)
  category       TEXT, -- the item's category (gazette, dissolution, ...)
  type           TEXT, -- the item's form type (GAZ1, DS01, ...)
  date           TEXT, -- the item's date, YYYY-MM-DD
  raw            TEXT NOT NULL, -- the item's JSON exactly as the API sent it
  seen_at        TEXT NOT NULL, -- when chwatch first read it
  PRIMARY KEY (company_number, transaction_id)
);

CREATE TABLE pscs ( -- persons with significant control of companies in strike-off, fetched through the REST API (GET /company/{n}/persons-with-significant-control, every page)
  company_number       TEXT NOT NULL, -- the company controlled
  psc_id               TEXT NOT NULL, -- the last segment of the item's links.self (/company/{n}/persons-with-significant-control/{individual|corporate-entity|legal-person|super-secure|...}/{id})
  kind                 TEXT, -- API enum, an open set: individual-person-with-significant-control, corporate-entity-person-with-significant-control, legal-person-person-with-significant-control, super-secure-person-with-significant-control, and the -beneficial-owner kinds
  name                 TEXT, -- as published ('Mr John Smith', or the entity's name); NULL for a super-secure PSC, whose details are withheld
  natures_of_control   TEXT, -- the item's natures_of_control joined with commas in published order, like sic_codes (e.g. 'ownership-of-shares-75-to-100-percent,voting-rights-75-to-100-percent'); the values themselves never hold a comma
  notified_on          TEXT, -- YYYY-MM-DD, when the company was notified of this control
  ceased_on            TEXT, -- YYYY-MM-DD when the control ceased; NULL while it lasts
  nationality          TEXT, -- as published (individuals)
  country_of_residence TEXT, -- as published (individuals)
  birth_month          INTEGER, -- month of birth (individuals; the day is never published)
  birth_year           INTEGER, -- year of birth
  address_line_1       TEXT, -- service address: premises and first line
  address_line_2       TEXT, -- service address: second line
  locality             TEXT, -- service address: post town
  region               TEXT, -- service address: county or region
  postal_code          TEXT, -- service address: postcode
  country              TEXT, -- service address: country
  raw                  TEXT, -- the item's JSON exactly as the API sent it (name_elements, identification, ... and fields Companies House adds later)
  fetched_at           TEXT NOT NULL, -- when the PSC list was fetched
  change_seq           INTEGER NOT NULL, -- global change sequence at the last write
  PRIMARY KEY (company_number, psc_id)
);

CREATE INDEX pscs_change_seq ON pscs (change_seq);

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

CREATE TABLE event_payloads ( -- raw event JSON, deleted after retention.event_payload
  stream    TEXT NOT NULL, -- 'companies'
  timepoint INTEGER PRIMARY KEY NOT NULL, -- matches stream_events; the rowid, so the table is its only B-tree
  payload   TEXT NOT NULL -- the line as received
);

CREATE TABLE company_changes ( -- append-only log of company writes, one entry per change_seq a company took (owned by package company, kept by triggers on companies); superseded entries (the company has a higher change_seq since) are deleted by housekeeping, so every company has exactly one current entry
  change_seq     INTEGER PRIMARY KEY, -- the change_seq the write gave the company; the rowid, so the log is one B-tree appended at its tail
  company_number TEXT NOT NULL -- the company written (companies.company_number; not its rowid, which VACUUM may renumber)
);

CREATE TRIGGER company_changes_update AFTER UPDATE OF change_seq ON companies WHEN NEW.change_seq != OLD.change_seq BEGIN -- a company written again: log its new change_seq (the old entry is now superseded)
  INSERT INTO company_changes (change_seq, company_number) VALUES (NEW.change_seq, NEW.company_number);
END;

