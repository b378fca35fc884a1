-- jobs gains its lease token and the kinds of later issues, an index that
-- serves Claim's ORDER BY exactly and one for the oldest queued job per kind; per-(kind, state) counters are kept by
-- triggers, so status and /metrics never count jobs rows. SQLite cannot
-- change a CHECK in place: the table is rebuilt.
DROP INDEX jobs_pending;
DROP INDEX jobs_claim;
DROP INDEX jobs_state;
ALTER TABLE jobs RENAME TO jobs_0001;

CREATE TABLE jobs ( -- durable queue of REST work; package queue owns it
  id             INTEGER PRIMARY KEY, -- job number
  kind           TEXT NOT NULL CHECK (kind IN ('status_check', 'sweep_check', 'officers', 'filing_check', 'pscs')), -- what to fetch
  priority       INTEGER NOT NULL, -- lower runs first: status_check 0, sweep_check 10, officers, filing_check and pscs 20
  company_number TEXT NOT NULL, -- the company
  state          TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')), -- queued | running | done | dead
  attempts       INTEGER NOT NULL DEFAULT 0, -- failures of the job itself so far (429s, budget waits, breaker refusals and expired leases spend none)
  run_after      TEXT NOT NULL, -- not before this time
  lease_until    TEXT, -- a running job's lease; past it the job is queued again
  lease_token    TEXT, -- random token set by each claim; completing or failing a job needs it, so a worker whose lease expired cannot finish a job another now holds
  last_error     TEXT, -- the last failure or deferral, without secrets
  created_at     TEXT NOT NULL, -- when queued
  updated_at     TEXT NOT NULL -- last state change
);
INSERT INTO jobs (id, kind, priority, company_number, state, attempts, run_after, lease_until, last_error, created_at, updated_at)
  SELECT id, kind, priority, company_number, state, attempts, run_after, lease_until, last_error, created_at, updated_at FROM jobs_0001;
DROP TABLE jobs_0001;

CREATE UNIQUE INDEX jobs_pending ON jobs (kind, company_number) WHERE state IN ('queued', 'running'); -- at most one pending job per kind and company
CREATE INDEX jobs_claim ON jobs (priority, run_after, id) WHERE state = 'queued'; -- Claim: WHERE state = 'queued' ORDER BY priority, run_after, id, walked in order
CREATE INDEX jobs_oldest ON jobs (kind, created_at) WHERE state = 'queued'; -- the oldest queued job of each kind
CREATE INDEX jobs_state ON jobs (state, updated_at); -- dead jobs; retention of done jobs; running jobs whose lease expired (few: one per worker)

-- Counters jobs.KIND.STATE and jobs_pending (queued + running) follow every
-- row change in the same transaction, whoever makes it.
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

-- The counts of the rows already there, once.
DELETE FROM counters WHERE name LIKE 'jobs.%';
INSERT INTO counters (name, value) SELECT 'jobs.' || kind || '.' || state, count(*) FROM jobs GROUP BY kind, state;
DELETE FROM counters WHERE name = 'jobs_pending';
INSERT INTO counters (name, value) SELECT 'jobs_pending', count(*) FROM jobs WHERE state IN ('queued', 'running') HAVING count(*) > 0;
