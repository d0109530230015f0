//go:build !linux

package cli

// hugeHeap asks nothing outside Linux.
func hugeHeap(int) {}
