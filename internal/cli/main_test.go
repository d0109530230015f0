package cli

import (
	"os"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

func TestMain(m *testing.M) { os.Exit(treetest.Main(m)) }
