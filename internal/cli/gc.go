package cli

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// A run allocates about ninety times its input in short-lived YAML nodes.
// While the live heap is small (every tree made from a few istioctl
// outputs), the collector may run four times less often: a fifth less
// time for a run, some tens of MB more at peak. Once the live heap grows
// past smallHeap, Go's default comes back, so that a large input keeps
// peak memory within four times its size.
const (
	smallHeapGCPercent = 400
	smallHeap          = 64 << 20
)

// TuneGC sets the collector for a run, unless GOGC says otherwise. It is
// for the binary's main, once.
func TuneGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(smallHeapGCPercent)
	watchHeap()
}

// gcSentinel is garbage the moment it is made: its finalizer runs after
// the next collection.
type gcSentinel struct{ _ *byte }

// watchHeap reads the live heap after each collection, and gives the
// collector its default back when the heap is no longer small.
func watchHeap() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		if live[0].Value.Kind() == metrics.KindUint64 && live[0].Value.Uint64() > smallHeap {
			debug.SetGCPercent(100)
			return
		}
		watchHeap()
	})
}
