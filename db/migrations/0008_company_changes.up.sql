-- An append-only change log of companies in place of the companies_change_seq
-- index (docs/design.md, "The company change log"). Each write of a company
-- moved its index entry from a random leaf, where its old change_seq sat, to
-- the tail: on a register whose companies are known, the largest item a
-- commit wrote. The log is appended at its tail only; export --state reads
-- it, joined to companies on (company_number, change_seq) so that entries a
-- later write superseded drop out, and housekeeping deletes those entries in
-- small batches (company.PruneChangesTx). Triggers keep it, so every writer
-- (run, an import in another process, the REST workers) does without code
-- of its own. companies.change_seq itself is unchanged.
CREATE TABLE company_changes ( -- append-only log of company writes, one entry per change_seq a company took (owned by package company, kept by triggers on companies); superseded entries (the company has a higher change_seq since) are deleted by housekeeping, so every company has exactly one current entry
  change_seq     INTEGER PRIMARY KEY, -- the change_seq the write gave the company; the rowid, so the log is one B-tree appended at its tail
  company_number TEXT NOT NULL -- the company written (companies.company_number; not its rowid, which VACUUM may renumber)
);
INSERT INTO company_changes (change_seq, company_number)
  SELECT change_seq, company_number FROM companies ORDER BY change_seq; -- through companies_change_seq: appended in key order
CREATE TRIGGER company_changes_insert AFTER INSERT ON companies BEGIN -- a new company: log its change_seq
  INSERT INTO company_changes (change_seq, company_number) VALUES (NEW.change_seq, NEW.company_number);
END;
CREATE TRIGGER company_changes_update AFTER UPDATE OF change_seq ON companies WHEN NEW.change_seq != OLD.change_seq BEGIN -- a company written again: log its new change_seq (the old entry is now superseded)
  INSERT INTO company_changes (change_seq, company_number) VALUES (NEW.change_seq, NEW.company_number);
END;
DROP INDEX companies_change_seq;
