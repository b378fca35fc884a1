-- Fills a migrated, empty chwatch database with :n synthetic companies of
-- realistic length, about 7% of them in strike-off (each with its
-- entered_strike_off row in status_changes), for scripts/bench-export and
-- BenchmarkExportCompanies. sqlite3: .parameter set :n 1000000 then .read.
INSERT INTO companies (company_number, company_name, company_status, company_status_detail,
  company_type, jurisdiction, date_of_creation, date_of_cessation, sic_codes,
  address_line_1, address_line_2, locality, region, postal_code, country, etag, source,
  source_time, source_timepoint, strike_off_since, status_check_pending, missing_from_bulk,
  deleted_at, first_seen_at, updated_at, change_seq)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
SELECT printf('%08d', i),
  CASE WHEN i % 50 = 0 THEN printf('SMITH, JONES & "PARTNERS" %d LIMITED', i)
       ELSE printf('%s %s %d LIMITED', rtrim(substr('NORTHERN SOUTHERN EASTERN  WESTERN  CENTRAL  ', 1 + 9 * (i % 5), 9)),
                   rtrim(substr('TRADING  HOLDINGS CONSULTS SERVICES ', 1 + 9 * (i % 4), 9)), i) END,
  'active',
  CASE WHEN i % 100 < 7 THEN 'active-proposal-to-strike-off' END,
  'ltd', 'england-wales',
  date('1990-01-01', '+' || (i % 12000) || ' days'),
  NULL,
  CASE i % 3 WHEN 0 THEN '56290,70229' WHEN 1 THEN '62012' ELSE '68209,68320,41100' END,
  printf('%d %s', 1 + i % 250, 'High Street'),
  CASE WHEN i % 2 = 0 THEN printf('Unit %d, Riverside Business Park', i % 40) END,
  'LONDON', 'Greater London',
  printf('SW%d %dAB', 1 + i % 20, i % 10),
  'United Kingdom',
  NULL, 'bulk', '2026-11-01T00:00:00Z', NULL,
  CASE WHEN i % 100 < 7 THEN strftime('%Y-%m-%dT%H:%M:%SZ', '2026-01-01', '+' || (i % 300) || ' days') END,
  0, NULL, NULL,
  '2026-11-01T03:12:45Z', '2026-11-01T03:12:45Z', i
FROM n;
INSERT INTO status_changes (company_number, change, old_status, old_detail, new_status, new_detail,
  source, first_seen, timepoint, source_time, detected_at, change_seq)
SELECT company_number, 'entered_strike_off', NULL, NULL, 'active', 'active-proposal-to-strike-off',
  'bulk', 1, NULL, strike_off_since, '2026-11-01T03:12:45Z', change_seq
FROM companies WHERE company_status_detail = 'active-proposal-to-strike-off' ORDER BY rowid;
INSERT INTO counters (name, value) VALUES ('change_seq', :n)
  ON CONFLICT (name) DO UPDATE SET value = excluded.value;
