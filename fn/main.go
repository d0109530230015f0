// Command istio-gitops is a KRM function that keeps an Istio mesh in Git:
// canary control-plane revisions side by side, one file per object.
package main

import (
	"os"
	"runtime/debug"

	"github.com/istio-gitops/istio-gitops/internal/cli"
)

func main() {
	// A run is short and its heap small: collect only near a soft limit,
	// unless the user tunes the collector.
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(96 << 20)
	}
	os.Exit(cli.Main())
}
