-- Back to CHECK (x IN (...)), edited in place as 0011 up did.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(replace(sql,
    'CHECK (source = ''stream'' OR source = ''bulk'' OR source = ''api'')',
    'CHECK (source IN (''stream'', ''bulk'', ''api''))'),
    'CHECK (strike_off_kind = ''voluntary'' OR strike_off_kind = ''compulsory'' OR strike_off_kind = ''unknown'')',
    'CHECK (strike_off_kind IN (''voluntary'', ''compulsory'', ''unknown''))')
  WHERE type = 'table' AND name = 'companies';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (change = ''entered_strike_off'' OR change = ''left_strike_off'' OR change = ''status_changed'')',
    'CHECK (change IN (''entered_strike_off'', ''left_strike_off'', ''status_changed''))')
  WHERE type = 'table' AND name = 'status_changes';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (outcome = ''applied'' OR outcome = ''unchanged'' OR outcome = ''stale'' OR outcome = ''deleted'' OR outcome = ''invalid'')',
    'CHECK (outcome IN (''applied'', ''unchanged'', ''stale'', ''deleted'', ''invalid''))')
  WHERE type = 'table' AND name = 'stream_events';
UPDATE sqlite_schema SET sql = replace(replace(sql,
    'CHECK (kind = ''status_check'' OR kind = ''sweep_check'' OR kind = ''officers'' OR kind = ''filing_check'' OR kind = ''pscs'')',
    'CHECK (kind IN (''status_check'', ''sweep_check'', ''officers'', ''filing_check'', ''pscs''))'),
    'CHECK (state = ''queued'' OR state = ''running'' OR state = ''done'' OR state = ''dead'')',
    'CHECK (state IN (''queued'', ''running'', ''done'', ''dead''))')
  WHERE type = 'table' AND name = 'jobs';
PRAGMA writable_schema = RESET;
CREATE TABLE schema_version_bump (x);
DROP TABLE schema_version_bump;
