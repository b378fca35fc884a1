DROP TRIGGER jobs_count_delete;
DROP TRIGGER jobs_count_update;
DROP TRIGGER jobs_count_insert;
DROP INDEX jobs_pending;
DROP INDEX jobs_claim;
DROP INDEX jobs_oldest;
DROP INDEX jobs_state;
ALTER TABLE jobs RENAME TO jobs_0002;

CREATE TABLE jobs ( -- durable queue of REST work
  id             INTEGER PRIMARY KEY, -- job number
  kind           TEXT NOT NULL CHECK (kind IN ('status_check', 'sweep_check', 'officers')), -- what to fetch
  priority       INTEGER NOT NULL, -- lower runs first: status_check 0, sweep_check 10, officers 20
  company_number TEXT NOT NULL, -- the company
  state          TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')), -- queued | running | done | dead
  attempts       INTEGER NOT NULL DEFAULT 0, -- tries so far
  run_after      TEXT NOT NULL, -- not before this time
  lease_until    TEXT, -- a running job's lease; past it the job is queued again
  last_error     TEXT, -- the last failure, without secrets
  created_at     TEXT NOT NULL, -- when queued
  updated_at     TEXT NOT NULL -- last state change
);
-- Kinds that version 1 does not know cannot go back.
INSERT INTO jobs (id, kind, priority, company_number, state, attempts, run_after, lease_until, last_error, created_at, updated_at)
  SELECT id, kind, priority, company_number, state, attempts, run_after, lease_until, last_error, created_at, updated_at FROM jobs_0002
  WHERE kind IN ('status_check', 'sweep_check', 'officers');
DROP TABLE jobs_0002;
CREATE UNIQUE INDEX jobs_pending ON jobs (kind, company_number) WHERE state IN ('queued', 'running'); -- at most one pending job per kind and company
CREATE INDEX jobs_claim ON jobs (state, priority, run_after, id) WHERE state = 'queued'; -- the claim query: WHERE state = 'queued' ORDER BY priority, run_after, id
CREATE INDEX jobs_state ON jobs (state, updated_at); -- dead jobs in status; retention of done jobs

DELETE FROM counters WHERE name LIKE 'jobs.%';
DELETE FROM counters WHERE name = 'jobs_pending';
INSERT INTO counters (name, value) SELECT 'jobs_pending', count(*) FROM jobs WHERE state IN ('queued', 'running') HAVING count(*) > 0;
