package company

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

// A batch forgets the companies of earlier Preloads past maxStored, so a
// long import transaction holds a bounded number of records; a company it
// forgot and meets again is read back from the transaction, with every
// write of the batch in it.
func TestBatchForgetsBounded(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const chunk, chunks = 1000, 12
	version := func(i int, name string) Version {
		return Version{Number: fmt.Sprintf("%08d", i), Name: name, Status: "active", Source: Bulk, SourceTime: at}
	}
	a := &Applier{Policy: Policy{ConfirmExit: "stream"}}
	err := d.WriteTx(ctx, func(tx db.Tx) error {
		seq, err := db.BeginSeq(ctx, tx)
		if err != nil {
			return err
		}
		b := a.Begin(db.NewStmtCache(tx), seq)
		// Three passes over the same companies in one transaction: new,
		// renamed, then unchanged.
		for pass, want := range []Outcome{Applied, Applied, Unchanged} {
			name := "FIRST LIMITED"
			if pass > 0 {
				name = "SECOND LIMITED"
			}
			for c := range chunks {
				numbers := make([]string, chunk)
				for i := range chunk {
					numbers[i] = fmt.Sprintf("%08d", c*chunk+i)
				}
				if err := b.Preload(ctx, numbers); err != nil {
					return err
				}
				for i := range chunk {
					dec, err := b.Apply(ctx, version(c*chunk+i, name), at)
					if err != nil {
						return err
					}
					if dec.Outcome != want {
						return fmt.Errorf("pass %d, company %d: %s, want %s", pass, c*chunk+i, dec.Outcome, want)
					}
				}
				is.True(len(b.stored) <= maxStored+chunk) // bounded, whatever the transaction's length
			}
		}
		if err := b.Flush(ctx); err != nil {
			return err
		}
		return seq.Save(ctx, tx)
	})
	is.NoErr(err)
	var n, renamed int
	is.NoErr(d.R.QueryRow("SELECT count(*), coalesce(sum(company_name = 'SECOND LIMITED'), 0) FROM companies").Scan(&n, &renamed))
	is.Equal(n, chunk*chunks) // each company once
	is.Equal(renamed, chunk*chunks)
}
