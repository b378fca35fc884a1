-- An import applies its rows in company-number order, whatever the file's
-- order (docs/design.md, "Import in company-number order"), so where an
-- interrupted import goes on is a place in that order: a company number and
-- the line of its row, the last committed. resume_offset and resume_line stay
-- what they were, the file-order progress of an import begun before this
-- migration (rows up to resume_offset are done); an import begun after keeps
-- them at 0 and 1. Comments are /* -- ... */ blocks, as in 0004.
ALTER TABLE imports ADD COLUMN resume_number TEXT NOT NULL DEFAULT '' /* -- company number of the last committed row in (company_number, line) order; '' before the first */;
ALTER TABLE imports ADD COLUMN resume_number_line INTEGER NOT NULL DEFAULT 0 /* -- physical line where that row starts (two rows of one number keep file order): a resumed import applies the rows after (resume_number, resume_number_line) */;
