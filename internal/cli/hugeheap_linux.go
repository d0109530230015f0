package cli

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"
)

const (
	hugePage = 2 << 20
	madvHuge = 14 // MADV_HUGEPAGE
)

// hugeHeap grows the heap by n bytes in one mapping, asks the kernel to
// back it with transparent huge pages, and frees it for the run's
// objects. Go maps its heap as it grows and asks for no huge pages, so
// this is done once up front, before the run allocates: the allocator
// fills the lowest free pages first, and these are the next ones. Under
// "always" the kernel does it anyway, under "never" not at all: nothing
// is done then.
func hugeHeap(n int) {
	b, err := os.ReadFile(thpSettings)
	if err != nil || !strings.Contains(string(b), "[madvise]") {
		return
	}
	// Fresh from the kernel, the slice is not written to: no page is
	// touched until the run's objects are.
	region := make([]byte, n)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(region)))
	start := (p + hugePage - 1) &^ (hugePage - 1)
	end := (p + uintptr(n)) &^ (hugePage - 1)
	if end > start {
		// A hint: if the kernel refuses, the heap stays as it was.
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvHuge)
	}
	runtime.KeepAlive(region)
	// The region goes back to the heap's free pages at once.
	runtime.GC()
}
