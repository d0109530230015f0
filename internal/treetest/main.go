package treetest

import (
	"os"
	"runtime/debug"
	"testing"
)

// GCPercent is the garbage collector's target in the test binaries that
// parse, write and build whole trees. Their garbage is short-lived and
// made fast: at Go's default (100) the collector takes about a third of
// their CPU; 400 costs about a quarter more peak memory (internal/pipeline:
// 350 MB to 440 MB) for a third less CPU. The processes the tests start
// (the binary, kustomize, kpt) keep their own setting.
const GCPercent = 400

// Main runs a package's tests with GCPercent and, unless TMPDIR is set, with
// their temporary files in memory where the machine has room for them (see
// memoryTempDir), and returns their exit code.
func Main(m *testing.M) int {
	debug.SetGCPercent(GCPercent)
	if os.Getenv("TMPDIR") == "" {
		if dir := memoryTempDir(); dir != "" {
			os.Setenv("TMPDIR", dir)
			defer os.RemoveAll(dir)
		}
	}
	return m.Run()
}
