-- A CHECK (x IN ('a', 'b', 'c')) of three values or more compiles to a
-- lookup in an ephemeral index that SQLite builds for each statement and
-- probes, a record built and a B-tree searched, for every row: the two on
-- companies cost a first import about 1.5 us a row of its 10 (docs/design.md,
-- "CHECK constraints without IN"). The same checks written x = 'a' OR ...
-- are compared in place. A CHECK constraint does not change what a row holds
-- on disk, so the definitions are edited where SQLite keeps them, the way
-- sqlite.org/lang_altertable.html ("Making Other Kinds Of Table Schema
-- Changes") documents, instead of copying every table. RESET makes this
-- connection read them again; the table created and dropped moves
-- schema_version, so that every other connection does too.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(replace(sql,
    'CHECK (source IN (''stream'', ''bulk'', ''api''))',
    'CHECK (source = ''stream'' OR source = ''bulk'' OR source = ''api'')'),
    'CHECK (strike_off_kind IN (''voluntary'', ''compulsory'', ''unknown''))',
    'CHECK (strike_off_kind = ''voluntary'' OR strike_off_kind = ''compulsory'' OR strike_off_kind = ''unknown'')')
  WHERE type = 'table' AND name = 'companies';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (change IN (''entered_strike_off'', ''left_strike_off'', ''status_changed''))',
    'CHECK (change = ''entered_strike_off'' OR change = ''left_strike_off'' OR change = ''status_changed'')')
  WHERE type = 'table' AND name = 'status_changes';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (outcome IN (''applied'', ''unchanged'', ''stale'', ''deleted'', ''invalid''))',
    'CHECK (outcome = ''applied'' OR outcome = ''unchanged'' OR outcome = ''stale'' OR outcome = ''deleted'' OR outcome = ''invalid'')')
  WHERE type = 'table' AND name = 'stream_events';
UPDATE sqlite_schema SET sql = replace(replace(sql,
    'CHECK (kind IN (''status_check'', ''sweep_check'', ''officers'', ''filing_check'', ''pscs''))',
    'CHECK (kind = ''status_check'' OR kind = ''sweep_check'' OR kind = ''officers'' OR kind = ''filing_check'' OR kind = ''pscs'')'),
    'CHECK (state IN (''queued'', ''running'', ''done'', ''dead''))',
    'CHECK (state = ''queued'' OR state = ''running'' OR state = ''done'' OR state = ''dead'')')
  WHERE type = 'table' AND name = 'jobs';
PRAGMA writable_schema = RESET;
CREATE TABLE schema_version_bump (x);
DROP TABLE schema_version_bump;
