package cli

import (
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
// and gets Go's default back once the heap is large; GOGC wins.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	TuneGC()
	if p := gcPercent(); p != 150 {
		t.Fatalf("with GOGC set, the target is %d, want 150", p)
	}

	t.Setenv("GOGC", "")
	TuneGC()
	if p := gcPercent(); p != smallHeapGCPercent {
		t.Fatalf("a small heap's target is %d, want %d", p, smallHeapGCPercent)
	}
	live := make([][]byte, 0, 2*smallHeap>>20)
	for range cap(live) {
		live = append(live, make([]byte, 1<<20))
	}
	deadline := time.Now().Add(10 * time.Second)
	for gcPercent() != 100 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := gcPercent(); p != 100 {
		t.Errorf("with %d MB live, the target is %d, want Go's default 100", len(live), p)
	}
	runtime.KeepAlive(live)
}
