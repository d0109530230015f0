package cli

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// A run allocates about ninety times its input in short-lived YAML nodes.
// While the live heap is small (every tree made from a few istioctl
// outputs), the collector may run four times less often: a fifth less
// time for a run, some tens of MB more at peak; a soft memory limit of
// smallHeapLimit caps that, as over an input of tens of MB a collector
// four times less often would let a run peak at ten times it. Once the
// live heap is past smallHeap, the limit goes and the collector runs
// more often than Go's default (largeHeapGCPercent), so that a large
// input, of large objects or of many small ones, keeps peak memory within
// four times its size.
const (
	smallHeapGCPercent = 400
	smallHeap          = 32 << 20
	smallHeapLimit     = 96 << 20
	largeHeapGCPercent = 50
)

// TuneGC sets the collector for a run, unless GOGC or GOMEMLIMIT says
// otherwise. It is for the binary's main, once.
func TuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(smallHeapGCPercent)
	debug.SetMemoryLimit(smallHeapLimit)
	watchHeap()
}

// gcSentinel is garbage the moment it is made: its finalizer runs after
// the next collection.
type gcSentinel struct{ _ *byte }

// watchHeap reads the live heap after each collection, and sets the
// collector for a large heap once it is no longer small.
func watchHeap() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		if live[0].Value.Kind() == metrics.KindUint64 && live[0].Value.Uint64() > smallHeap {
			debug.SetGCPercent(largeHeapGCPercent)
			debug.SetMemoryLimit(math.MaxInt64)
			return
		}
		watchHeap()
	})
}
