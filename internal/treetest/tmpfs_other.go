//go:build !linux

package treetest

// memoryTempDir is "": only Linux's /dev/shm is known to be a tmpfs.
func memoryTempDir() string { return "" }
