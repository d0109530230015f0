package apiserver_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/istio-gitops/istio-gitops/fn/apiserver"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// toolsDir is where `make tools` leaves the control plane, from here.
const toolsDir = "../../bin/tools"

var (
	// skip says why no server can start here: no binaries.
	skip string
	// refuse says why no server may start here: the network is not private.
	refuse error
	// etcdBin and apiServerBin are the binaries to start.
	etcdBin, apiServerBin string
)

// TestMain runs the tests in a network namespace of their own, with
// nothing but loopback: the webhooks of a tree point at Services, and
// nothing the API server dials for them may leave the machine. Outside
// one, it runs the test binary again under `unshare --net` (and --pid, so
// that whatever the tests start dies with them, however they end).
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	if runtime.GOOS != "linux" {
		skip = "the API server tests run in a Linux network namespace"
		os.Exit(m.Run())
	}
	var err error
	if etcdBin, apiServerBin, err = apiserver.Binaries(toolsDir); err != nil {
		skip = fmt.Sprintf("no control plane to start, run `make tools` first (`make test` does): %v", err)
		os.Exit(m.Run())
	}
	if os.Getenv(apiserver.NetnsMarker) == "" && apiserver.PrivateNetwork() != nil {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "apiserver tests:", err)
			os.Exit(1)
		}
		os.Exit(apiserver.RunPrivate(exe, os.Args[1:]...))
	}
	if os.Getenv(apiserver.NetnsMarker) != "" {
		refuse = apiserver.LoopbackUp()
	}
	if refuse == nil {
		refuse = apiserver.PrivateNetwork()
	}
	os.Exit(treetest.Main(m))
}

// startServer starts a control plane for t and stops it when t ends.
func startServer(t *testing.T) *apiserver.Server {
	t.Helper()
	if skip != "" {
		t.Skip(skip)
	}
	if refuse != nil {
		t.Fatalf("refusing to start an API server: %v", refuse)
	}
	s, err := apiserver.Start(etcdBin, apiServerBin)
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop the API server: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s ready in %.1fs", s.Version, s.Started.Seconds())
	return s
}
