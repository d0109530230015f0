package cli

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// gcPercent reads the collector's target.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestTuneGC: a run's collector runs less often while the heap is small,
// under a soft memory limit, and more often than Go's default, without the
// limit, once the heap is large; GOGC and GOMEMLIMIT win.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	t.Setenv("GOMEMLIMIT", "1GiB")
	TuneGC()
	if l := debug.SetMemoryLimit(-1); l == smallHeapLimit {
		t.Fatalf("with GOMEMLIMIT set, the limit is %d", l)
	}
	t.Setenv("GOMEMLIMIT", "")

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	TuneGC()
	if p := gcPercent(); p != 150 {
		t.Fatalf("with GOGC set, the target is %d, want 150", p)
	}

	t.Setenv("GOGC", "")
	TuneGC()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != smallHeapGCPercent || l != smallHeapLimit {
		t.Fatalf("a small heap's target is %d, limit %d, want %d and %d", p, l, smallHeapGCPercent, smallHeapLimit)
	}
	live := make([][]byte, 0, 2*smallHeap>>20)
	for range cap(live) {
		live = append(live, make([]byte, 1<<20))
	}
	deadline := time.Now().Add(10 * time.Second)
	for gcPercent() != largeHeapGCPercent && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != largeHeapGCPercent || l != math.MaxInt64 {
		t.Errorf("with %d MB live, the target is %d, limit %d, want %d and none", len(live), p, l, largeHeapGCPercent)
	}
	runtime.KeepAlive(live)
}
