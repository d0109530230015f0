package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// TestKilledRuns kills a real upgrade run (adding 1-31 to the bootstrap
// tree) with SIGKILL before a dozen of its changes to the file system,
// spread over the whole run (disk.FailpointEnv). After every kill the tree
// is the old one (leftover temporary files aside) unless the run had
// committed its journal; either way the next plain run leaves exactly the
// tree an uninterrupted run writes, and a run after it changes nothing: no
// object is ever lost.
func TestKilledRuns(t *testing.T) {
	base := t.TempDir()
	treetest.Copy(t, filepath.Join(golden, "bootstrap", "want"), base)
	treetest.Copy(t, filepath.Join(repo, "examples", "upgrade"), base)
	old := objectFiles(treetest.Files(t, base))

	clean := copyTree(t, base)
	if out, err := runWith(clean, ""); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	want := treetest.Files(t, clean)

	// The run's changes: the first N kill points kill it, N+1 does not.
	lo, hi := 1, 4096
	for lo < hi {
		mid := (lo + hi) / 2
		if killed(t, copyTree(t, base), mid) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	changes := lo - 1
	if changes < 20 {
		t.Fatalf("the run made only %d changes", changes)
	}
	t.Logf("the upgrade run makes %d changes to the file system", changes)

	points := map[int]bool{1: true, 2: true, changes - 1: true, changes: true}
	for i := 0; i <= 8; i++ {
		points[1+i*(changes-1)/8] = true
	}
	var journaled atomic.Int32
	for k := 1; k <= changes; k++ {
		if !points[k] {
			continue
		}
		t.Run(fmt.Sprintf("kill-before-change-%d", k), func(t *testing.T) {
			t.Parallel()
			dir := copyTree(t, base)
			if !killed(t, dir, k) {
				t.Fatalf("the run was not killed before change %d", k)
			}
			after := treetest.Files(t, dir)
			if _, ok := after[disk.JournalFile]; ok {
				journaled.Add(1)
			} else if d := treetest.Diff(objectFiles(after), old); d != "" {
				t.Errorf("killed before its commit, the run changed the tree:\n%s", d)
			}
			if out, err := runWith(dir, ""); err != nil {
				t.Fatalf("the next run: %v\n%s", err, out)
			}
			if d := treetest.Diff(treetest.Files(t, dir), want); d != "" {
				t.Errorf("the next run did not give the upgraded tree:\n%s", d)
			}
			if out, err := runWith(dir, ""); err != nil || treetest.Diff(treetest.Files(t, dir), want) != "" {
				t.Errorf("a second run changed the tree: %v\n%s", err, out)
			}
		})
	}
	t.Cleanup(func() {
		if journaled.Load() == 0 {
			t.Error("no kill fell after the commit: the journal was never exercised")
		}
	})
}

// objectFiles drops from a tree the temporary files of an interrupted run.
func objectFiles(files map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for name, b := range files {
		if base := filepath.Base(name); strings.HasPrefix(base, ".istio-gitops-") {
			continue
		}
		out[name] = b
	}
	return out
}

func copyTree(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	treetest.Copy(t, src, dir)
	return dir
}

// runWith runs the binary over dir, with the failpoint set to kill when
// not empty.
func runWith(dir, killAt string) (string, error) {
	cmd := exec.Command(binary, "run", dir)
	cmd.Env = os.Environ()
	if killAt != "" {
		cmd.Env = append(cmd.Env, disk.FailpointEnv+"="+killAt)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// killed runs the binary with the failpoint at k and reports whether
// SIGKILL ended it.
func killed(t *testing.T, dir string, k int) bool {
	t.Helper()
	out, err := runWith(dir, fmt.Sprint(k))
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("run with the failpoint at %d: %v\n%s", k, err, out)
	}
	return false
}
