package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// lockHeld is what a command says when another holds its tree.
const lockHeld = "another istio-gitops command is working on"

// tries is how many times each pair of commands is started at once.
const tries = 4

// TestConcurrentCommands starts two commands on one tree at the same time,
// a few times over: two runs, two migrates of different teams, a run and
// a migrate. Each command either does all its work or is refused because
// the other holds the tree, and says so; the tree ends as the commands
// that succeeded, run one after the other, leave it: no change is lost,
// none is half made, and nothing but the tree's files is left behind.
func TestConcurrentCommands(t *testing.T) {
	upgrade := t.TempDir()
	treetest.Copy(t, filepath.Join(golden, "bootstrap", "want"), upgrade)
	treetest.Copy(t, filepath.Join(repo, "examples", "upgrade"), upgrade)
	writeTeams(t, upgrade, 20)
	namespaces := t.TempDir()
	writeTeams(t, namespaces, 200)

	run := []string{"run", "TREE"}
	migrate := func(team string) []string {
		return []string{"migrate", "TREE", "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", team}
	}
	for _, c := range []struct {
		name string
		tree string
		a, b []string
	}{
		{"two-runs", upgrade, run, run},
		{"two-migrates", namespaces, migrate("payments"), migrate("search")},
		{"a-run-and-a-migrate", upgrade, run, migrate("payments")},
	} {
		t.Run(c.name, func(t *testing.T) {
			// What each command leaves alone, and both, in either order.
			after := func(cmds ...[]string) map[string][]byte {
				dir := copyTree(t, c.tree)
				for _, args := range cmds {
					if out, err := onTree(t, dir, args); err != nil {
						t.Fatalf("%v: %v\n%s", args, err, out)
					}
				}
				return treetest.Files(t, dir)
			}
			alone := [2]map[string][]byte{after(c.a), after(c.b)}
			both := []map[string][]byte{after(c.a, c.b), after(c.b, c.a)}
			refusals := 0
			for try := range tries {
				dir := copyTree(t, c.tree)
				var (
					wg   sync.WaitGroup
					outs [2]string
					errs [2]error
				)
				for i, args := range [][]string{c.a, c.b} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						outs[i], errs[i] = onTree(t, dir, args)
					}()
				}
				wg.Wait()
				var ok []int
				for i := range 2 {
					switch {
					case errs[i] == nil:
						ok = append(ok, i)
					case strings.Contains(outs[i], lockHeld) && strings.Contains(outs[i], "wait for it to finish"):
						refusals++
					default:
						t.Fatalf("try %d: command %d failed: %v\n%s", try, i, errs[i], outs[i])
					}
				}
				got := treetest.Files(t, dir)
				var candidates []map[string][]byte
				switch len(ok) {
				case 2:
					candidates = both
				case 1:
					candidates = []map[string][]byte{alone[ok[0]]}
				default:
					t.Fatalf("try %d: both commands were refused:\n%s\n%s", try, outs[0], outs[1])
				}
				if !slices.ContainsFunc(candidates, func(w map[string][]byte) bool { return treetest.Diff(got, w) == "" }) {
					t.Fatalf("try %d: the tree is not what the commands that succeeded (%v) leave, one after the other:\n%s\n%s\n%s",
						try, ok, treetest.Diff(got, candidates[0]), outs[0], outs[1])
				}
			}
			if refusals == 0 {
				t.Errorf("the two commands never overlapped in %d tries: the lock was never exercised", tries)
			}
		})
	}
}

// writeTeams writes files of Namespaces on 1-30, four per file, owned by
// the teams payments and search in turn.
func writeTeams(t *testing.T, dir string, files int) {
	t.Helper()
	teams := []string{"payments", "search"}
	for f := range files {
		var b strings.Builder
		for i := range 4 {
			if i > 0 {
				b.WriteString("---\n")
			}
			fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-%d-%d\n  labels:\n    team: %s\n    istio.io/rev: 1-30\n",
				f, i, teams[(f+i)%2])
		}
		treetest.Write(t, filepath.Join(dir, "namespaces", fmt.Sprintf("team-%d", f%10), fmt.Sprintf("ns-%d.yaml", f)), []byte(b.String()))
	}
}

// onTree runs the binary with args, "TREE" replaced by dir.
func onTree(t *testing.T, dir string, args []string) (string, error) {
	args = slices.Clone(args)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "TREE", dir)
	}
	return command(t, "", nil, binary, args...)
}
