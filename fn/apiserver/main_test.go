package apiserver_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/istio-gitops/istio-gitops/fn/apiserver"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// netnsMarker is set in the environment of the test binary re-run in its
// own network namespace.
const netnsMarker = "ISTIO_GITOPS_TEST_NETNS"

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
	if os.Getenv(netnsMarker) == "" && apiserver.PrivateNetwork() != nil {
		os.Exit(inPrivateNetwork())
	}
	if os.Getenv(netnsMarker) != "" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			refuse = fmt.Errorf("ip link set lo up: %v: %s", err, out)
		}
	}
	if refuse == nil {
		refuse = apiserver.PrivateNetwork()
	}
	os.Exit(treetest.Main(m))
}

// inPrivateNetwork runs this test binary again, with the same arguments,
// in new network and PID namespaces, and returns its exit code.
func inPrivateNetwork() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiserver tests:", err)
		return 1
	}
	args := []string{"--net", "--pid", "--fork", "--kill-child"}
	if os.Geteuid() != 0 {
		// Without root, a user namespace grants the rights to make them.
		args = append(args, "--map-root-user")
	}
	args = append(append(args, "--", exe), os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), netnsMarker+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "apiserver tests: cannot make a private network namespace (unshare --net): %v\n", err)
		return 1
	}
	return 0
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
