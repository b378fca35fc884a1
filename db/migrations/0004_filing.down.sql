DELETE FROM counters WHERE name LIKE 'filing.%';
DELETE FROM jobs WHERE kind = 'filing_check';
DROP TABLE filing_unknowns;
DROP INDEX companies_dissolution_due;
ALTER TABLE companies DROP COLUMN strike_off_suspended_at;
ALTER TABLE companies DROP COLUMN dissolution_due_on;
ALTER TABLE companies DROP COLUMN gazette_notice_on;
ALTER TABLE companies DROP COLUMN strike_off_kind;
