-- REST enrichment: officers keep each item's raw JSON; the shared REST budget.
-- officers is rebuilt rather than altered, so that its definition (and so
-- schema.sql and `sqlite3 .schema`) keeps one commented line per column.
ALTER TABLE officers RENAME TO officers_0001;
DROP INDEX officers_change_seq;
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
INSERT INTO officers (company_number, officer_id, name, officer_role, appointed_on, resigned_on, nationality, occupation,
    country_of_residence, birth_month, birth_year, address_line_1, address_line_2, locality, region, postal_code, country,
    fetched_at, change_seq)
  SELECT company_number, officer_id, name, officer_role, appointed_on, resigned_on, nationality, occupation,
    country_of_residence, birth_month, birth_year, address_line_1, address_line_2, locality, region, postal_code, country,
    fetched_at, change_seq
  FROM officers_0001;
DROP TABLE officers_0001;
CREATE INDEX officers_change_seq ON officers (change_seq); -- export --state

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
