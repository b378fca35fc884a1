package export

// PSCs is the export of persons with significant control (enrich.pscs).
const PSCs Kind = "pscs"

// pscsQuery reads the PSCs of companies in strike-off, as the officers
// export reads officers: the same join on the one definition of strike-off,
// the same address columns, --since on fetched_at and --state on change_seq.
var pscsQuery = query{
	cols: join(
		cols("p.company_number", "c.company_name"),
		[]col{{name: "psc_id", expr: "p.psc_id", id: true}},
		cols("p.kind", "p.name", "p.natures_of_control",
			"p.notified_on", "p.ceased_on", "p.nationality", "p.country_of_residence", "p.birth_month", "p.birth_year"),
		address("p"),
		cols("p.fetched_at", "p.change_seq"),
	),
	from:  "pscs p JOIN strike_off_companies c ON c.company_number = p.company_number",
	order: "p.company_number, p.psc_id",
	since: "p.fetched_at",
	seq:   "p.change_seq",
}
