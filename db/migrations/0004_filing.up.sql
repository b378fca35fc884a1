-- Strike-off cause and timetable, from each strike-off company's filing
-- history (GET /company/{n}/filing-history?category=gazette,dissolution).
-- The columns are added with ALTER TABLE rather than by rebuilding companies
-- (as 0003 rebuilt officers): the table holds millions of rows, and a rebuild
-- would copy them all on the upgrade of a Raspberry Pi. SQLite keeps an added
-- column's text up to the end of its statement in the table's definition,
-- so each comment is a /* -- ... */ block there (a trailing -- comment would
-- swallow the closing parenthesis).
ALTER TABLE companies ADD COLUMN strike_off_kind TEXT CHECK (strike_off_kind IN ('voluntary', 'compulsory', 'unknown')) /* -- why the current strike-off: voluntary (a DS01 or a voluntary first-Gazette notice), compulsory (Companies House's action), unknown (filing history checked, neither found); NULL until a filing_check ran, and cleared on leaving strike-off */;
ALTER TABLE companies ADD COLUMN gazette_notice_on TEXT /* -- YYYY-MM-DD of the first-Gazette notice that started the current strike-off (after a re-entry, the latest notice); NULL while none is filed yet */;
ALTER TABLE companies ADD COLUMN dissolution_due_on TEXT /* -- YYYY-MM-DD: gazette_notice_on plus two calendar months (a day past the month's end clamps: 2026-12-31 gives 2027-02-28), the earliest date Companies House may dissolve the company */;
ALTER TABLE companies ADD COLUMN strike_off_suspended_at TEXT /* -- YYYY-MM-DD of a suspension or discontinuation of the strike-off filed after the notice; NULL when none */;
CREATE INDEX companies_dissolution_due ON companies (dissolution_due_on) WHERE dissolution_due_on IS NOT NULL; -- export strike-off --due-before, and the due counts of status

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

-- The backfill: companies already in strike-off when this lands get one
-- filing_check each, now (a migration runs once). Later entries are queued by
-- the company rule, beside their officers job. The count is kept for status.
INSERT OR IGNORE INTO jobs (kind, priority, company_number, state, attempts, run_after, created_at, updated_at)
  SELECT 'filing_check', 20, company_number, 'queued', 0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
    strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
  FROM strike_off_companies;
INSERT INTO counters (name, value) SELECT 'filing.backfill', changes() WHERE changes() > 0
  ON CONFLICT (name) DO UPDATE SET value = excluded.value;
