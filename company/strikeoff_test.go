package company_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

// company.InStrikeOff and the strike_off_companies view are the Go and the
// SQL side of SPEC's one definition: they agree on every combination of
// status, detail and deletion, near misses included.
func TestInStrikeOffAgreesWithView(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	statuses := []string{"active", "Active", "dissolved", "liquidation", ""}
	details := []any{company.StrikeOffDetail, "Active-Proposal-To-Strike-Off", "active-proposal-to-strike-off ", "voluntary-arrangement", "", nil}
	type row struct {
		number, status string
		detail         any
		deleted        bool
	}
	var rows []row
	for _, s := range statuses {
		for _, dt := range details {
			for _, del := range []bool{false, true} {
				rows = append(rows, row{fmt.Sprintf("%08d", len(rows)), s, dt, del})
			}
		}
	}
	for i, r := range rows {
		var deleted any
		if r.deleted {
			deleted = "2026-11-28T00:00:00Z"
		}
		_, err := d.W.ExecContext(ctx, `INSERT INTO companies (company_number, company_name, company_status, company_status_detail, source, source_time,
			deleted_at, first_seen_at, updated_at, change_seq) VALUES (?, 'X', ?, ?, 'stream', '2026-11-28T00:00:00Z', ?, '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', ?)`,
			r.number, r.status, r.detail, deleted, i+1) // change_seq is unique: the change log is keyed by it
		is.NoErr(err)
	}
	inView := map[string]bool{}
	res, err := d.R.QueryContext(ctx, "SELECT company_number FROM strike_off_companies")
	is.NoErr(err)
	defer res.Close()
	for res.Next() {
		var n string
		is.NoErr(res.Scan(&n))
		inView[n] = true
	}
	is.NoErr(res.Err())
	for _, r := range rows {
		detail, _ := r.detail.(string)
		if got := company.InStrikeOff(r.status, detail, r.deleted); got != inView[r.number] {
			t.Errorf("status %q detail %v deleted %v: InStrikeOff %v, view %v", r.status, r.detail, r.deleted, got, inView[r.number])
		}
	}
	is.Equal(len(inView), 1) // exactly one combination is strike-off
}
