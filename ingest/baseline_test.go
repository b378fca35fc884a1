package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/config"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/stream"
)

// TestRawBaseline is scripts/bench-e2e's baseline, skipped unless
// CHWATCHTEST_BASELINE_URL names a running `chwatch sim`. It reads the same
// events chwatch run reads, the same way (the stream client, over
// loopback), and inserts the same rows with minimal work: the event, its
// payload and the company with every column, one prepared single-row INSERT
// each, 5000 per transaction, into a database opened as chwatch opens it.
// It prints events/s for the script to compare with chwatch run.
func TestRawBaseline(t *testing.T) {
	url := os.Getenv("CHWATCHTEST_BASELINE_URL")
	if url == "" {
		t.Skip("CHWATCHTEST_BASELINE_URL not set: run by scripts/bench-e2e")
	}
	n, _ := strconv.Atoi(os.Getenv("CHWATCHTEST_BASELINE_EVENTS"))
	from, _ := strconv.ParseInt(os.Getenv("CHWATCHTEST_BASELINE_FROM"), 10, 64)
	dir := os.Getenv("CHWATCHTEST_BASELINE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The page size chwatch run gives a new file, under the same setting.
	pageSize := config.Default().Database.PageSize
	if v := os.Getenv("CHWATCH_DATABASE_PAGE_SIZE"); v != "" {
		pageSize, _ = strconv.Atoi(v)
	}
	d, err := db.Open(ctx, filepath.Join(dir, "baseline.db"), db.PageSize(pageSize))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.MigrateUp(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := stream.New(stream.Config{URL: url, Key: "baseline"})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan stream.Item, 256)
	w0, c0 := writeBytes(t), cpuTicks(t)
	start := time.Now()
	go c.Run(ctx, stream.Start{From: from}, out)
	done := 0
	batch := make([]stream.Item, 0, 5000)
	for done < n {
		it := <-out
		if it.Event == nil {
			continue
		}
		batch = append(batch, it)
		done++
		if len(batch) == cap(batch) || done == n {
			rawInsert(t, d, batch, rawRows(batch))
			batch = batch[:0]
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("baseline: %d events in %.1f s: %.0f events/s\n", n, secs, float64(n)/secs)
	// Like chwatch run's, measured once the last event committed: neither
	// counts the final checkpoint of a stop.
	fmt.Printf("baseline bytes written: %d\n", writeBytes(t)-w0)
	// CPU time repeats where a rate on a shared box does not: the script
	// prints both ratios.
	fmt.Printf("baseline cpu ticks: %d\n", cpuTicks(t)-c0)
}

// cpuTicks is this process's user and system time from /proc/self/stat,
// in clock ticks, as the script reads chwatch run's.
func cpuTicks(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's closing parenthesis; utime and
	// stime are the 14th and 15th of the whole line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// writeBytes is this process's write_bytes from /proc/self/io: what it
// sent to the disk, WAL and checkpoints included (0 on tmpfs).
func writeBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no write_bytes in /proc/self/io")
	return 0
}
