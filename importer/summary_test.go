package importer_test

import (
	"testing"

	"github.com/chwatch/chwatch/importer"
	"github.com/matryer/is"
)

// SoFar, the tail of an import's error, counts as committed only the rows
// that went into the database: bad rows never do, and good rows read
// before a stop in the sort phase were not applied.
func TestSoFar(t *testing.T) {
	for _, tc := range []struct {
		name string
		sum  importer.Summary
		want string
	}{
		{
			name: "too many bad rows, found while sorting",
			sum: importer.Summary{Files: []string{"a.csv"}, RowsRead: 998, Bad: 2,
				BadRows: []importer.BadRow{{File: "a.csv", Line: 7, Reason: "no company number"}, {File: "a.csv", Line: 9, Reason: "bad date"}}},
			want: "before it stopped this run committed 0 rows (0 applied, 0 unchanged, 0 stale: newer data kept) and found 2 bad; bad rows: line 7 (no company number), line 9 (bad date)",
		},
		{
			name: "interrupted while applying",
			sum:  importer.Summary{Files: []string{"a.csv"}, RowsRead: 1000, Applied: 300, Unchanged: 20, Stale: 1, Bad: 1},
			want: "before it stopped this run committed 321 rows (300 applied, 20 unchanged, 1 stale: newer data kept) and found 1 bad",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is.New(t).Equal(tc.sum.SoFar(), tc.want)
		})
	}
}
