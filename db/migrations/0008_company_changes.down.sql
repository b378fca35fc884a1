CREATE INDEX companies_change_seq ON companies (change_seq); -- export --state: rows past a mark
DROP TRIGGER company_changes_update;
DROP TRIGGER company_changes_insert;
DROP TABLE company_changes;
