package disk

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// TestSub: a tree of a parent folder is its own unit: its files relative
// to it, a tree nested in it and the rest of the parent left out, its
// configs and strays its own, and its commit (journal included) in its
// folder.
func TestSub(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"a/x.yaml":                    "x\n",
		"a/cfg.yaml":                  "cfg\n",
		"a/b/y.yaml":                  "y\n",
		"a/b/cfg.yaml":                "cfg\n",
		"c/z.yaml":                    "z\n",
		"top.yaml":                    "top\n",
		"a/.istio-gitops-old-1.tmp":   "half",
		"a/b/.istio-gitops-old-2.tmp": "half",
	})
	tree, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	tree.Origin = Origin{Command: "run", Configs: []string{"a/cfg.yaml", "a/b/cfg.yaml"}}
	roots := []string{"a", "a/b", "c"}
	paths := func(t *Tree) []string {
		var out []string
		for _, f := range t.Files {
			out = append(out, f.Path)
		}
		return out
	}
	for _, c := range []struct {
		rel                    string
		files, strays, configs []string
	}{
		{"a", []string{"cfg.yaml", "x.yaml"}, []string{".istio-gitops-old-1.tmp"}, []string{"cfg.yaml"}},
		{"a/b", []string{"cfg.yaml", "y.yaml"}, []string{".istio-gitops-old-2.tmp"}, []string{"cfg.yaml"}},
		{"", []string{"top.yaml"}, nil, nil},
	} {
		s := tree.Sub(c.rel, roots)
		if got := paths(s); !slices.Equal(got, c.files) || !slices.Equal(s.Strays, c.strays) || !slices.Equal(s.Origin.Configs, c.configs) {
			t.Errorf("Sub(%q): files %q strays %q configs %q, want %q %q %q", c.rel, got, s.Strays, s.Origin.Configs, c.files, c.strays, c.configs)
		}
		if want := filepath.Join(root, filepath.FromSlash(c.rel)); s.Root != want {
			t.Errorf("Sub(%q).Root = %s, want %s", c.rel, s.Root, want)
		}
	}
	if err := tree.Sub("a", roots).Commit([]Write{{Path: "x.yaml", Data: []byte("X\n")}}, nil); err != nil {
		t.Fatal(err)
	}
	got := treetest.Snapshot(t, root)
	if got["a/x.yaml"] != "X\n" || got["a/b/y.yaml"] != "y\n" || got["c/z.yaml"] != "z\n" {
		t.Errorf("the commit of a/ must write a/x.yaml alone: %v", got)
	}
}

// interruptedBelow is a parent folder of two trees: a/, run alone and
// killed after its commit, and b/.
func interruptedBelow(t *testing.T) string {
	t.Helper()
	parent := t.TempDir()
	tree := killedAfterCommit(t, 2)
	if err := os.Rename(tree, filepath.Join(parent, "a")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, parent, map[string]string{"b/x.yaml": "x\n"})
	return parent
}

// TestRecoverBelow: a tree of a parent folder, run alone and killed after
// its commit, left its journal in its folder: the parent cannot be read
// until it is finished, and RecoverBelow finishes it as Recover would.
func TestRecoverBelow(t *testing.T) {
	parent := interruptedBelow(t)
	if _, err := Read(parent); err == nil || !strings.Contains(err.Error(), "a command was interrupted while it wrote this folder") {
		t.Fatalf("reading the parent: %v", err)
	}
	said, err := RecoverBelow(parent)
	if err != nil || len(said) != 1 || !strings.Contains(said[0], "finished writing the changes of an earlier `istio-gitops run`") {
		t.Fatalf("RecoverBelow: %q, %v", said, err)
	}
	if _, err := Read(parent); err != nil {
		t.Fatal(err)
	}
	got := treetest.Snapshot(t, filepath.Join(parent, "a"))
	sameTree(t, "a after recovery", withoutEmptyDirs(got), after)
	if said, err := RecoverBelow(parent); err != nil || len(said) != 0 {
		t.Errorf("nothing left to recover: %q, %v", said, err)
	}
}

// TestOpenBelow: Open refuses a parent folder whose tree, run alone, was
// killed after its commit; OpenBelow finishes that commit under the
// parent's lock, says so, and reads the parent.
func TestOpenBelow(t *testing.T) {
	parent := interruptedBelow(t)
	_, lock, _, err := Open(parent)
	lock.Unlock()
	if err == nil || !strings.Contains(err.Error(), "a command was interrupted while it wrote this folder") {
		t.Fatalf("Open of the parent: %v", err)
	}
	read, lock, results, err := OpenBelow(parent)
	lock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || !strings.Contains(results[0].Message, "finished writing the changes of an earlier `istio-gitops run`") {
		t.Errorf("results %v must say what was finished", results)
	}
	var files []string
	for _, f := range read.Files {
		files = append(files, f.Path)
	}
	if !slices.Contains(files, "b/x.yaml") || !slices.Contains(files, "a/kustomization.yaml") {
		t.Errorf("the parent read %q, want a/ and b/ files", files)
	}
	sameTree(t, "a after recovery", withoutEmptyDirs(treetest.Snapshot(t, filepath.Join(parent, "a"))), after)
}
