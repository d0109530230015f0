package disk

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// TestSub: a tree of a parent folder is its own unit: its files relative
// to it, a tree nested in it and the rest of the parent left out, and its
// commit (journal included) in its folder; leftovers go with their tree.
func TestSub(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"a/x.yaml":                         "x\n",
		"a/b/y.yaml":                       "y\n",
		"c/z.yaml":                         "z\n",
		"top.yaml":                         "top\n",
		"a/.istio-gitops-1-00000000.tmp":   "half",
		"a/b/.istio-gitops-2-00000000.tmp": "half",
	})
	tree, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	roots := []string{"a", "a/b", "c"}
	paths := func(t *Tree) []string {
		var out []string
		for _, f := range t.Files {
			out = append(out, f.Path)
		}
		return out
	}
	for _, c := range []struct {
		rel   string
		files []string
		temps []string
	}{
		{"a", []string{"x.yaml"}, []string{".istio-gitops-1-00000000.tmp"}},
		{"a/b", []string{"y.yaml"}, []string{".istio-gitops-2-00000000.tmp"}},
		{"", []string{"top.yaml"}, nil},
	} {
		s := tree.Sub(c.rel, roots)
		if got := paths(s); !slices.Equal(got, c.files) || !slices.Equal(s.temps, c.temps) {
			t.Errorf("Sub(%q): files %q temps %q, want %q %q", c.rel, got, s.temps, c.files, c.temps)
		}
		if want := filepath.Join(root, filepath.FromSlash(c.rel)); s.Root != want {
			t.Errorf("Sub(%q).Root = %s, want %s", c.rel, s.Root, want)
		}
	}
	if err := tree.Sub("a", roots).Commit([]Write{{Path: "x.yaml", Data: []byte("X\n")}}, nil); err != nil {
		t.Fatal(err)
	}
	got := treetest.Snapshot(t, root)
	if got["a/x.yaml"] != "X\n" || got["a/b/.istio-gitops-2-00000000.tmp"] != "half" {
		t.Errorf("the commit of a/ must write a/x.yaml and leave a/b/'s leftover to a/b: %v", got)
	}
	if _, ok := got["a/.istio-gitops-1-00000000.tmp"]; ok {
		t.Error("a/'s leftover must go with a/'s commit")
	}
}
