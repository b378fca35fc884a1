package gaps_test

import (
	"context"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/gaps"
	"github.com/matryer/is"
)

var now = time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)

func day(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }

func TestGapLife(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	ctx := context.Background()
	var ids []int64
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		for i, end := range []time.Time{day(10), day(20), {}} {
			id, err := gaps.RecordTx(ctx, tx, "companies", int64(1000*i+1), int64(1000*i+500), day(1+i), end, now, "416 timepoint too old")
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))
	open, err := gaps.OpenGaps(ctx, d.R)
	is.NoErr(err)
	is.Equal(len(open), 3)
	is.Equal(open[0], gaps.Gap{ID: ids[0], Stream: "companies", FromTimepoint: 1, ToTimepoint: 500, FromTime: "2026-11-01T00:00:00Z",
		ToTime: "2026-11-10T00:00:00Z", DetectedAt: "2026-11-28T23:41:36Z", Reason: "416 timepoint too old"})
	is.Equal(open[2].ToTime, "") // the end is not known yet

	// A file as of the 15th covers the gap that ended on the 10th only.
	covered, err := gaps.AnyCovered(ctx, d.R, day(15))
	is.NoErr(err)
	is.True(covered)
	var n int64
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		var err error
		n, err = gaps.ResolveCoveredTx(ctx, tx, day(15), now)
		return err
	}))
	is.Equal(n, int64(1))
	covered, err = gaps.AnyCovered(ctx, d.R, day(15))
	is.NoErr(err)
	is.True(!covered) // nothing left to resolve as of then

	ok, err := gaps.Resolve(ctx, d, ids[2], "checked by hand", now)
	is.NoErr(err)
	is.True(ok)
	ok, err = gaps.Resolve(ctx, d, ids[2], "again", now)
	is.NoErr(err)
	is.True(!ok) // already resolved
	ok, err = gaps.Resolve(ctx, d, 999, "none", now)
	is.NoErr(err)
	is.True(!ok)

	all, err := gaps.List(ctx, d.R)
	is.NoErr(err)
	is.Equal(len(all), 3)
	is.Equal(all[0].ID, ids[1]) // open first
	is.True(all[0].Open())
	is.Equal(all[1].Resolution, gaps.Import)
	is.Equal(all[2].Resolution, "checked by hand")
	is.Equal(all[2].ResolvedAt, "2026-11-28T23:41:36Z")
	open, err = gaps.OpenGaps(ctx, d.R)
	is.NoErr(err)
	is.Equal(len(open), 1)
}
