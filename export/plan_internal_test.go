package export

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

// --state on companies reads the change log by its key: a range of the
// log's primary key, each entry's company by its number, and no sort, so
// the cost follows the changes past the mark, not the register. The full
// export is planned as before.
func TestStatePlans(t *testing.T) {
	d := dbtest.Open(t)
	plan := func(t *testing.T, kind Kind, opt Options) string {
		t.Helper()
		text, args := queries[kind].build(opt)
		rows, err := d.R.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+text, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			out = append(out, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	for _, tt := range []struct {
		kind Kind
		opt  Options
	}{
		{Companies, Options{Incremental: true, After: 10}},
		{StrikeOff, Options{Incremental: true, After: 10}},
		{Companies, Options{Incremental: true, After: 10, Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}},
		{StrikeOff, Options{Incremental: true, After: 10, DueBefore: "2027-01-01"}},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			is := is.New(t)
			p := plan(t, tt.kind, tt.opt)
			t.Log(p)
			is.True(strings.Contains(p, "SEARCH l USING INTEGER PRIMARY KEY (rowid>?)"))                // the log's key range
			is.True(strings.Contains(p, "USING INDEX sqlite_autoindex_companies_1 (company_number=?)")) // each entry's company by its key
			is.True(!strings.Contains(p, "TEMP B-TREE"))                                                // the log's order is the output's
		})
	}
	t.Run("full", func(t *testing.T) {
		is := is.New(t)
		p := plan(t, Companies, Options{})
		is.True(!strings.Contains(p, "company_changes") && !strings.Contains(p, "TEMP B-TREE"))
	})
}
