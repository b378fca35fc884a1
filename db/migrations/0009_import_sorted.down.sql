-- An import interrupted after rows were applied in company-number order has
-- no file-order progress an older chwatch could resume from: forget it, so
-- that the older chwatch starts the file over (the transition rule makes the
-- rows applied before no-ops) instead of skipping rows it never applied.
DELETE FROM imports WHERE completed_at IS NULL AND resume_number <> '';
ALTER TABLE imports DROP COLUMN resume_number_line;
ALTER TABLE imports DROP COLUMN resume_number;
