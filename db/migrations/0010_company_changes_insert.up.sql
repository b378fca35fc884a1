-- New companies are logged by the statement that inserts them, not by a
-- trigger (docs/design.md, "The company change log"): every company chwatch
-- inserts goes through company.Batch.Flush, which now appends their
-- (change_seq, company_number) entries in one multi-row INSERT beside the
-- companies' own. The trigger ran a sub-program per row, about 6% of a
-- first import's time. Updates stay logged by company_changes_update.
DROP TRIGGER company_changes_insert;
