-- Persons with significant control (enrich.pscs): one row per item of a
-- strike-off company's PSC list, kept like officers (package company owns
-- the table; each item's raw JSON kept; replaced whole by each fetch,
-- deleted when the company leaves strike-off unless strike_off.on_exit is
-- keep). The running total of its rows is the counter 'pscs'.
CREATE TABLE pscs ( -- persons with significant control of companies in strike-off, fetched through the REST API (GET /company/{n}/persons-with-significant-control, every page)
  company_number       TEXT NOT NULL, -- the company controlled
  psc_id               TEXT NOT NULL, -- the last segment of the item's links.self (/company/{n}/persons-with-significant-control/{individual|corporate-entity|legal-person|super-secure|...}/{id})
  kind                 TEXT, -- API enum, an open set: individual-person-with-significant-control, corporate-entity-person-with-significant-control, legal-person-person-with-significant-control, super-secure-person-with-significant-control, and the -beneficial-owner kinds
  name                 TEXT, -- as published ('Mr John Smith', or the entity's name); NULL for a super-secure PSC, whose details are withheld
  natures_of_control   TEXT, -- the item's natures_of_control joined with commas in published order, like sic_codes (e.g. 'ownership-of-shares-75-to-100-percent,voting-rights-75-to-100-percent'); the values themselves never hold a comma
  notified_on          TEXT, -- YYYY-MM-DD, when the company was notified of this control
  ceased_on            TEXT, -- YYYY-MM-DD when the control ceased; NULL while it lasts
  nationality          TEXT, -- as published (individuals)
  country_of_residence TEXT, -- as published (individuals)
  birth_month          INTEGER, -- month of birth (individuals; the day is never published)
  birth_year           INTEGER, -- year of birth
  address_line_1       TEXT, -- service address: premises and first line
  address_line_2       TEXT, -- service address: second line
  locality             TEXT, -- service address: post town
  region               TEXT, -- service address: county or region
  postal_code          TEXT, -- service address: postcode
  country              TEXT, -- service address: country
  raw                  TEXT, -- the item's JSON exactly as the API sent it (name_elements, identification, ... and fields Companies House adds later)
  fetched_at           TEXT NOT NULL, -- when the PSC list was fetched
  change_seq           INTEGER NOT NULL, -- global change sequence at the last write
  PRIMARY KEY (company_number, psc_id)
);
CREATE INDEX pscs_change_seq ON pscs (change_seq); -- export --state
