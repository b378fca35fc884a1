package export

import "strings"

// col is one output column: its header name and the SQL that reads it. An
// id column holds Companies House's opaque identifiers (base64url, so they
// may begin with '-'): neutralising would change the key a user joins on,
// and a cell of only letters, digits, '-' and '_' cannot carry a formula.
type col struct {
	name, expr string
	id         bool
}

// query is the SQL of one kind, assembled from parts so that the filters of
// --since and --state can be added in one place.
type query struct {
	cols  []col
	from  string // FROM and JOIN clauses
	where string // the kind's own condition, "" for none
	order string // default ORDER BY
	since string // column compared with --since
	seq   string // change_seq column for --state
	// logged: --state reads the kind's companies (c) through the change
	// log, company_changes, instead of an index on change_seq (see
	// changesFrom).
	logged bool
}

// changesFrom is the FROM clause of an incremental export of companies: the
// log's entries past the mark, in its key order, each joined to its company
// when it is the company's current one. An entry a later write superseded
// finds no company (its change_seq is no longer the company's), so each
// company comes once, at its latest change: the rows and their order are
// those of "WHERE c.change_seq > ? ORDER BY c.change_seq". CROSS JOIN keeps
// the log the outer loop, whatever statistics ANALYZE leaves.
func changesFrom(from string) string {
	return "company_changes l CROSS JOIN " + from +
		" ON c.company_number = l.company_number AND c.change_seq = l.change_seq"
}

func address(alias string) []col {
	var out []col
	for _, n := range []string{"address_line_1", "address_line_2", "locality", "region", "postal_code", "country"} {
		out = append(out, col{name: n, expr: alias + "." + n})
	}
	return out
}

// cols turns qualified column names ("c.company_name") into columns named
// without the alias.
func cols(names ...string) []col {
	out := make([]col, len(names))
	for i, n := range names {
		_, name, _ := strings.Cut(n, ".")
		out[i] = col{name: name, expr: n}
	}
	return out
}

func join(parts ...[]col) []col {
	var out []col
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var queries = map[Kind]query{
	Companies: {
		cols: join(
			cols("c.company_number", "c.company_name", "c.company_status", "c.company_status_detail",
				"c.company_type", "c.jurisdiction", "c.date_of_creation", "c.date_of_cessation", "c.sic_codes"),
			address("c"),
			cols("c.strike_off_since", "c.missing_from_bulk", "c.deleted_at", "c.source", "c.source_time",
				"c.updated_at", "c.change_seq"),
			strikeOffCols,
		),
		from:   "companies c",
		order:  "c.company_number",
		since:  "c.updated_at",
		seq:    "c.change_seq",
		logged: true,
	},
	StrikeOff: {
		cols: join(
			cols("c.company_number", "c.company_name", "c.strike_off_since"),
			[]col{{name: "first_seen", expr: `COALESCE((SELECT s.first_seen FROM status_changes s
				WHERE s.company_number = c.company_number AND s.change = 'entered_strike_off'
				ORDER BY s.id DESC LIMIT 1), 0)`}},
			cols("c.company_type", "c.date_of_creation", "c.sic_codes"),
			address("c"),
			cols("c.source_time", "c.change_seq"),
			strikeOffCols,
		),
		// The view is the one definition of strike-off; SQLite flattens
		// it into the query, so its indexes serve --since and --state.
		from:   "strike_off_companies c",
		order:  "c.strike_off_since DESC, c.company_number",
		since:  "c.strike_off_since",
		seq:    "c.change_seq",
		logged: true,
	},
	Officers: {
		cols: join(
			cols("o.company_number", "c.company_name"),
			[]col{{name: "officer_id", expr: "o.officer_id", id: true}},
			cols("o.name", "o.officer_role",
				"o.appointed_on", "o.resigned_on", "o.nationality", "o.occupation", "o.country_of_residence",
				"o.birth_month", "o.birth_year"),
			address("o"),
			cols("o.fetched_at", "o.change_seq"),
		),
		from:  "officers o JOIN strike_off_companies c ON c.company_number = o.company_number",
		order: "o.company_number, o.officer_id",
		since: "o.fetched_at",
		seq:   "o.change_seq",
	},
	Changes: {
		cols: cols("s.id", "s.company_number", "c.company_name", "s.change", "s.old_status", "s.old_detail",
			"s.new_status", "s.new_detail", "s.source", "s.first_seen", "s.timepoint", "s.source_time",
			"s.detected_at", "s.change_seq"),
		from:  "status_changes s LEFT JOIN companies c ON c.company_number = s.company_number",
		order: "s.id",
		since: "s.detected_at",
		seq:   "s.change_seq",
	},
	PSCs: pscsQuery,
}

// build returns the SQL text and its arguments for the options.
func (q query) build(opt Options) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range q.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.expr)
	}
	from, seq := q.from, q.seq
	if opt.Incremental && q.logged {
		from, seq = changesFrom(q.from), "l.change_seq"
	}
	b.WriteString(" FROM ")
	b.WriteString(from)
	var conds []string
	var args []any
	if q.where != "" {
		conds = append(conds, q.where)
	}
	if opt.cond != "" {
		conds = append(conds, opt.cond)
	}
	order := q.order
	if opt.Incremental {
		// The change_seq indexes (for companies, the log's key) serve
		// both the condition and the order.
		conds = append(conds, seq+" > ?")
		args = append(args, opt.After)
		order = seq
	}
	if !opt.Since.IsZero() {
		conds = append(conds, q.since+" >= ?")
		args = append(args, sinceArg(opt.Since))
	}
	if opt.DueBefore != "" {
		conds = append(conds, dueBefore)
		args = append(args, opt.DueBefore)
		if !opt.Incremental {
			order = "c.dissolution_due_on, c.company_number"
		}
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(conds, " AND "))
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(order)
	return b.String(), args
}
