package cli

import (
	"os"
	"strings"
	"sync"
)

// hugeHeapSize is how much of the heap prepareHeap asks huge pages for: a
// run that adds a revision allocates about 25 MB; a larger run's heap
// goes on in ordinary pages.
const hugeHeapSize = 32 << 20

// thpSettings is where Linux says when it backs memory with transparent
// huge pages.
const thpSettings = "/sys/kernel/mm/transparent_hugepage/enabled"

var heapPrepared sync.Once

// prepareHeap readies the heap for a command that reads and writes
// objects. A run allocates tens of MB of short-lived YAML nodes, nearly
// all of it memory the process touches for the first time; where a page
// fault is dear (a virtual machine's, some tens of microseconds), those
// faults were a third of a run's time. On Linux, the heap's first
// hugeHeapSize bytes are backed by transparent huge pages, a fault per 2
// MiB instead of per 4 KiB, if the kernel gives them on request
// ("madvise", its usual setting). GODEBUG=disablethp=1, Go's own switch
// for huge pages on the heap, turns this off.
func prepareHeap() {
	heapPrepared.Do(func() {
		if thpOff(os.Getenv("GODEBUG")) {
			return
		}
		hugeHeap(hugeHeapSize)
	})
}

// thpOff reports whether a GODEBUG value turns huge pages off; the last
// setting of a name wins, as in Go.
func thpOff(godebug string) bool {
	off := false
	for _, kv := range strings.Split(godebug, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "disablethp" {
			off = v == "1"
		}
	}
	return off
}
