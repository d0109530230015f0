// Command istio-gitops is a KRM function that keeps an Istio mesh in Git:
// canary control-plane revisions side by side, one file per object.
package main

import (
	"os"

	"github.com/istio-gitops/istio-gitops/internal/cli"
)

func main() {
	cli.TuneGC()
	os.Exit(cli.Main())
}
