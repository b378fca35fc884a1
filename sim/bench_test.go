package sim

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkGenerate measures event generation (the log and the truth), in events/s.
func BenchmarkGenerate(b *testing.B) {
	s := mustSim(b, Config{Seed: 1})
	b.ResetTimer()
	start := time.Now()
	s.mu.Lock()
	s.generateLocked(int64(b.N))
	s.mu.Unlock()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkRender measures turning records into stream lines, in lines/s.
func BenchmarkRender(b *testing.B) {
	s := mustSim(b, Config{Seed: 1, Backlog: 10_000})
	var buf []byte
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		k := i % 10_000
		buf = s.appendLine(buf[:0], int64(k), s.recs[k], 0)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s")
}

// TestMillionEvents checks that a million events generate quickly and fit in memory.
func TestMillionEvents(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a million events: skipped in -short and -race runs")
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	s := mustSim(t, Config{Seed: 1, Backlog: 1_000_000})
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	tr := s.Truth()
	t.Logf("1M events in %s, live heap %.1f MB, %d transitions", took, float64(heap)/1e6, len(tr.Transitions))
	if took > 5*time.Second {
		t.Errorf("generating 1M events took %s", took)
	}
	if heap > 200<<20 {
		t.Errorf("1M events hold %d bytes", heap)
	}
	runtime.KeepAlive(s)
}
