DROP TABLE api_budget;
ALTER TABLE officers RENAME TO officers_0003;
DROP INDEX officers_change_seq;
CREATE TABLE officers ( -- officers of companies in strike-off, fetched through the REST API
  company_number       TEXT NOT NULL, -- the company the appointment is at
  officer_id           TEXT NOT NULL, -- appointment id from the item's links.self (/company/{n}/appointments/{id}); one person with two roles is two rows
  name                 TEXT NOT NULL, -- 'SURNAME, Forenames' as published
  officer_role         TEXT, -- API enum: director, secretary, llp-member, ...
  appointed_on         TEXT, -- YYYY-MM-DD
  resigned_on          TEXT, -- YYYY-MM-DD, NULL while serving
  nationality          TEXT, -- as published
  occupation           TEXT, -- as published
  country_of_residence TEXT, -- as published
  birth_month          INTEGER, -- month of birth (the day is never published)
  birth_year           INTEGER, -- year of birth
  address_line_1       TEXT, -- correspondence address: premises and first line
  address_line_2       TEXT, -- correspondence address: second line
  locality             TEXT, -- correspondence address: post town
  region               TEXT, -- correspondence address: county or region
  postal_code          TEXT, -- correspondence address: postcode
  country              TEXT, -- correspondence address: country
  fetched_at           TEXT NOT NULL, -- when the officer list was fetched
  change_seq           INTEGER NOT NULL, -- global change sequence at the last write
  PRIMARY KEY (company_number, officer_id)
);
INSERT INTO officers (company_number, officer_id, name, officer_role, appointed_on, resigned_on, nationality, occupation,
    country_of_residence, birth_month, birth_year, address_line_1, address_line_2, locality, region, postal_code, country,
    fetched_at, change_seq)
  SELECT company_number, officer_id, name, officer_role, appointed_on, resigned_on, nationality, occupation,
    country_of_residence, birth_month, birth_year, address_line_1, address_line_2, locality, region, postal_code, country,
    fetched_at, change_seq
  FROM officers_0003;
DROP TABLE officers_0003;
CREATE INDEX officers_change_seq ON officers (change_seq); -- export --state
