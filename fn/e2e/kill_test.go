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
// syncs included, spread over the whole run (disk.FailpointEnv). After
// every kill the tree is the old one (leftover temporary files aside)
// unless the run had committed its journal. Then, before the next plain
// run, one of what an operator does at 2 a.m.:
//
//   - nothing: the next run leaves exactly the tree an uninterrupted run
//     writes, and a run after it changes nothing: no object is ever lost;
//   - the staged files removed (rm, or a clean of ignored *.tmp files):
//     the next run gives that tree, or refuses and changes nothing;
//   - a new istioctl output written: the next run lays the new output out,
//     or refuses and leaves it in place, never deleted unread;
//   - the tree checked out from Git: the next run gives the upgraded tree,
//     or refuses and changes nothing; following its message (check out,
//     remove the new files) then gives the upgraded tree.
func TestKilledRuns(t *testing.T) {
	base := t.TempDir()
	treetest.Copy(t, filepath.Join(golden, "bootstrap", "want"), base)
	treetest.Copy(t, filepath.Join(repo, "examples", "upgrade"), base)
	old := objectFiles(treetest.Files(t, base))
	source := filepath.Join("1-31", "istioctl-output.yaml")
	newSource, err := os.ReadFile(filepath.Join(repo, "testdata", "istioctl", "1-31", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	clean := copyTree(t, base)
	if out, err := runWith(clean, ""); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	want := treetest.Files(t, clean)
	cleanNew := copyTree(t, base)
	treetest.Write(t, filepath.Join(cleanNew, source), newSource)
	if out, err := runWith(cleanNew, ""); err != nil {
		t.Fatalf("run with the new source: %v\n%s", err, out)
	}
	wantNew := treetest.Files(t, cleanNew)

	// The run's changes: the first N kill points kill it, N+1 does not.
	lo, hi := 1, 8192
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
	// Every point is followed by a plain run; every other one by each
	// of the operator's moves too.
	var journaled, refused [4]atomic.Int32
	nth := 0
	for k := 1; k <= changes; k++ {
		if !points[k] {
			continue
		}
		nth++
		for v, variant := range []string{"then-run", "then-staged-files-removed", "then-a-new-source", "then-git-checkout"} {
			if v > 0 && nth%2 == 1 {
				continue
			}
			t.Run(fmt.Sprintf("kill-before-change-%d/%s", k, variant), func(t *testing.T) {
				t.Parallel()
				// The tree is in a Git repository, as in real life.
				work := t.TempDir()
				dir := filepath.Join(work, "tree")
				treetest.Copy(t, base, dir)
				if v == 3 {
					treetest.Git(t, work, "init", "-q")
					treetest.Git(t, work, "add", "-A")
					treetest.Git(t, work, "commit", "-qm", "bootstrap, 1-31 added")
				}
				if !killed(t, dir, k) {
					t.Fatalf("the run was not killed before change %d", k)
				}
				after := treetest.Files(t, dir)
				if _, ok := after[disk.JournalFile]; ok {
					journaled[v].Add(1)
				} else if d := treetest.Diff(objectFiles(after), old); d != "" && treetest.Diff(after, want) != "" {
					// (Killed after it removed its journal, it is done.)
					t.Errorf("killed before its commit, the run changed the tree:\n%s", d)
				}
				expect := want
				switch v {
				case 1:
					for name := range after {
						if strings.HasSuffix(name, ".tmp") {
							if err := os.Remove(filepath.Join(dir, name)); err != nil {
								t.Fatal(err)
							}
						}
					}
				case 2:
					treetest.Write(t, filepath.Join(dir, source), newSource)
					expect = wantNew
				case 3:
					treetest.Git(t, work, "checkout", "--", ".")
				}
				before := treetest.Files(t, dir)
				out, err := runWith(dir, "")
				switch {
				case err == nil:
					if d := treetest.Diff(treetest.Files(t, dir), expect); d != "" {
						t.Fatalf("the next run did not give the upgraded tree:\n%s\n%s", d, out)
					}
				case v != 0 && strings.Contains(out, "cannot be proven safe to finish") && strings.Contains(out, "Nothing was changed"):
					refused[v].Add(1)
					if d := treetest.Diff(treetest.Files(t, dir), before); d != "" {
						t.Fatalf("the refusing run changed the tree:\n%s", d)
					}
					if v != 3 {
						return
					}
					// As the message says: restore from Git, remove the
					// new files (the journal and staged files among them).
					treetest.Git(t, work, "checkout", "--", ".")
					treetest.Git(t, work, "clean", "-fdq")
					if out, err := runWith(dir, ""); err != nil {
						t.Fatalf("the run after a checkout and clean: %v\n%s", err, out)
					}
					if d := treetest.Diff(treetest.Files(t, dir), want); d != "" {
						t.Fatalf("the run after a checkout and clean did not give the upgraded tree:\n%s", d)
					}
				default:
					t.Fatalf("the next run: %v\n%s", err, out)
				}
				if out, err := runWith(dir, ""); err != nil || treetest.Diff(treetest.Files(t, dir), expect) != "" {
					t.Errorf("a second run changed the tree: %v\n%s", err, out)
				}
			})
		}
	}
	t.Cleanup(func() {
		if journaled[0].Load() == 0 {
			t.Error("no kill fell after the commit: the journal was never exercised")
		}
		for v, what := range []string{"", "staged files removed", "", "a checkout"} {
			if what != "" && refused[v].Load() == 0 {
				t.Errorf("no run refused to finish a journal after %s: the check was never exercised", what)
			}
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
