package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/matryer/is"
)

// Counters are read by name, by prefix and by day, each from the primary
// key alone; a day's counters are its own, and retention drops whole days.
func TestCountersRead(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	late := time.Date(2026, 11, 28, 23, 59, 59, 0, time.FixedZone("BST", 3600)) // 22:59:59Z
	is.Equal(db.Day(late), "2026-11-28")
	is.Equal(db.DayCounter("2026-11-28", "events_applied"), "day.2026-11-28.events_applied")
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		for name, n := range map[string]int64{
			"companies": 5, "events_applied": 7, "events_stale": 1, "eventsX": 99, "events": 98,
			db.DayCounter("2026-11-27", "events_applied"): 2, db.DayCounter("2026-11-28", "events_applied"): 3,
			db.DayCounter("2026-11-28", "rejects"): 1, db.DayCounter("2026-11-29", "events_applied"): 4,
		} {
			if err := db.AddCounter(ctx, tx, name, n); err != nil {
				return err
			}
		}
		return nil
	}))
	named, err := db.CountersNamed(ctx, d.R, "companies", "strike_off", "events_applied")
	is.NoErr(err)
	is.Equal(named, map[string]int64{"companies": 5, "events_applied": 7}) // never counted: absent
	events, err := db.CountersPrefix(ctx, d.R, "events_")
	is.NoErr(err)
	is.Equal(events, map[string]int64{"applied": 7, "stale": 1})
	day, err := db.DayCounters(ctx, d.R, "2026-11-28")
	is.NoErr(err)
	is.Equal(day, map[string]int64{"events_applied": 3, "rejects": 1})

	var n int64
	is.NoErr(d.WriteTx(ctx, func(tx db.Tx) error {
		var err error
		n, err = db.DeleteDayCountersTx(ctx, tx, late, 100)
		return err
	}))
	is.Equal(n, int64(1)) // the 27th; the 28th is kept whole
	all, err := db.Counters(ctx, d.R)
	is.NoErr(err)
	is.Equal(len(all), 8)
	is.Equal(all["day.2026-11-28.events_applied"], int64(3))
	is.Equal(all["companies"], int64(5))
}
