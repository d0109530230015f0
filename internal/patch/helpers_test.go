package patch

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

var update = treetest.Update

const (
	fixtures = "../../testdata/istioctl"
	golden   = "../../testdata/patch"
)

// splitRevision writes the objects of istioctl's default output for rev
// whose names carry the revision (the objects the pipeline puts under
// <rev>/generated/) into root/<rev>/generated/<kind>/<name>.yaml, as the
// pipeline writes them. It returns their tree-relative paths and contents.
func splitRevision(t *testing.T, root, rev string) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, rev, "default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(b), OmitReaderAnnotations: true}).Read()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, n := range nodes {
		if ReplaceRevision(n.GetName(), rev, "REV") == n.GetName() {
			continue
		}
		p := path.Join(rev, GeneratedDir, strings.ToLower(n.GetKind()), n.GetName()+".yaml")
		if ns := n.GetNamespace(); ns != "" && ns != "istio-system" {
			p = path.Join(rev, GeneratedDir, strings.ToLower(n.GetKind()), ns, n.GetName()+".yaml")
		}
		if _, dup := files[p]; dup {
			t.Fatalf("two objects for %s", p)
		}
		c, err := FileBytes(n)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = c
		writeFile(t, filepath.Join(root, filepath.FromSlash(p)), c)
	}
	return files
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// git runs the real git in dir, isolated and reproducible.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return treetest.Git(t, dir, args...)
}

// gitRepo makes dir a repository with everything in it committed.
func gitRepo(t *testing.T, dir string) {
	t.Helper()
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "istio: generated")
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	treetest.GoldenFile(t, filepath.Join(golden, filepath.FromSlash(name)), got)
}

func mustParse(t *testing.T, node *yaml.RNode) *Patch {
	t.Helper()
	p, err := Parse(node)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, s := range parts {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q\nmust contain %q", err, s)
		}
	}
}

// FileBytes is how the tree lays out a one-object file.
var FileBytes = layout.FileBytes
