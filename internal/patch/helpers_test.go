package patch

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/layout"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/patch/")

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

// git runs the real git in dir, isolated from the user's and the system's
// configuration (diff.noPrefix, colours, hooks), with a fixed identity and
// clock so commits are reproducible.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "LC_ALL=C",
		"GIT_AUTHOR_NAME=Platform Team", "GIT_AUTHOR_EMAIL=platform@example.com", "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=Platform Team", "GIT_COMMITTER_EMAIL=platform@example.com", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// gitRepo makes dir a repository with everything in it committed.
func gitRepo(t *testing.T, dir string) {
	t.Helper()
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "istio: generated")
}

// edit is a user's text edit of one generated file.
type edit struct {
	// file is the path under <rev>/generated/.
	file func(rev string) string
	// old and new are the text replaced, count times.
	old, new func(rev string) string
	count    int
}

func (e edit) apply(t *testing.T, rev string, b []byte) []byte {
	t.Helper()
	old, new := e.old(rev), e.new(rev)
	if n := strings.Count(string(b), old); n != e.count {
		t.Fatalf("%s: %q occurs %d times, want %d", e.file(rev), old, n, e.count)
	}
	return []byte(strings.ReplaceAll(string(b), old, new))
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join(golden, filepath.FromSlash(name))
	if *update {
		writeFile(t, p, got)
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
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
