package pipeline_test

import (
	"os"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

func TestMain(m *testing.M) {
	code := treetest.Main(m)
	// Trees shared between tests live outside any one test's TempDir.
	if shared130.dir != "" {
		os.RemoveAll(shared130.dir)
	}
	os.Exit(code)
}
