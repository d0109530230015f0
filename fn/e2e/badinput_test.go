package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// badCase is testdata/bad/<name>/case.yaml: one bad input and what the
// binary must say about it. The tree is the golden tree base (if any),
// less delete, with empty emptied, then the case's sources and tree/ laid
// over it (outside/ goes beside it, for links to point at).
type badCase struct {
	// Base is a golden tree to start from, under testdata/golden
	// ("bootstrap/want", "story/2-add-1-31").
	Base string `json:"base"`
	// Sources maps a file of the tree to an istioctl fixture
	// (testdata/<fixture>), optionally cut to documents [A, B) with
	// ":A-B", ":A-" or ":B" ("istioctl/1-30/default.yaml:5" keeps five).
	Sources map[string]string `json:"sources"`
	// Delete and Empty name files of the tree to remove or truncate to 0
	// bytes (what a killed write or a bad merge leaves).
	Delete []string `json:"delete"`
	Empty  []string `json:"empty"`
	// Args are the command's arguments; "TREE" stands for the tree's
	// folder, "OUTSIDE" for outside/ (a stub istioctl for generate).
	// Default: run TREE. "stdin" sends the tree as a ResourceList
	// to the function.
	Args []string `json:"args"`
	// Paths moves items of the ResourceList "stdin" sends to other paths
	// (their path annotations, both), by path: what an orchestrator or a
	// hand-made ResourceList may hand over.
	Paths map[string]string `json:"paths"`
	// Want are substrings of what the binary prints (stderr, and stdout).
	Want []string `json:"want"`
	// Exit is the exit code (default 1).
	Exit int `json:"exit"`
}

// TestBadInput runs every case of the corpus in testdata/bad through the
// binary: it must exit 1 with a message that names the file, object, patch
// or field, never panic or hang, and leave the tree (and what lies beside
// it) byte for byte as it was. A new case is a new folder.
func TestBadInput(t *testing.T) {
	corpus := filepath.Join(repo, "testdata", "bad")
	entries, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 30 {
		t.Fatalf("the corpus holds %d cases", len(entries))
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			runBadCase(t, filepath.Join(corpus, e.Name()))
		})
	}
}

func runBadCase(t *testing.T, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "case.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c badCase
	if err := k8syaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("case.yaml: %v", err)
	}
	if len(c.Want) == 0 {
		t.Fatal("case.yaml: want must name what the message says")
	}
	if c.Exit == 0 {
		c.Exit = 1
	}
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	if c.Base != "" {
		treetest.Copy(t, filepath.Join(repo, "testdata", "golden", c.Base), tree)
	}
	for _, f := range c.Delete {
		if err := os.Remove(filepath.Join(tree, f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range c.Empty {
		if err := os.WriteFile(filepath.Join(tree, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dst := range slices.Sorted(maps.Keys(c.Sources)) {
		fixture, cut := c.Sources[dst], ""
		if i := strings.LastIndex(fixture, ":"); i > 0 {
			fixture, cut = fixture[:i], fixture[i+1:]
		}
		src, err := os.ReadFile(filepath.Join(repo, "testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		if cut != "" {
			src = documents(t, src, cut)
		}
		treetest.Write(t, filepath.Join(tree, dst), src)
	}
	// tree/ and outside/ are copied as they are, links included.
	for _, sub := range []string{"tree", "outside"} {
		if _, err := os.Lstat(filepath.Join(dir, sub)); err == nil {
			copyLinks(t, filepath.Join(dir, sub), filepath.Join(work, sub))
		}
	}
	before := treetest.Snapshot(t, work)

	args := c.Args
	if len(args) == 0 {
		args = []string{"run", "TREE"}
	}
	var stdin []byte
	if args[0] == "stdin" {
		// stdin.yaml is a hand-made ResourceList; else the tree's.
		if stdin, err = os.ReadFile(filepath.Join(dir, "stdin.yaml")); err != nil {
			stdin = resourceList(t, tree, c.Paths)
		}
		args = args[1:]
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(strings.ReplaceAll(a, "TREE", tree), "OUTSIDE", filepath.Join(work, "outside"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = work
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("no answer in 60 s (a hang?)\n%s", stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	said := stderr.String() + stdout.String()
	if code != c.Exit {
		t.Errorf("exit %d, want %d:\n%s", code, c.Exit, said)
	}
	if strings.Contains(said, "goroutine ") || strings.Contains(said, "internal error") {
		t.Errorf("a panic:\n%s", said)
	}
	for _, w := range c.Want {
		if !strings.Contains(said, strings.ReplaceAll(w, "TREE", tree)) {
			t.Errorf("the message must say %q:\n%s", w, said)
		}
	}
	if stdin != nil && c.Exit != 0 {
		// The KRM functions spec: the results, and no items.
		if strings.Contains(stdout.String(), "\nitems:\n- ") {
			t.Errorf("items written with an error:\n%.2000s", stdout.String())
		}
	}
	if d := diffSnapshots(treetest.Snapshot(t, work), before); d != "" {
		t.Errorf("the failed run changed the files:\n%s", d)
	}
}

// documents keeps the YAML documents [A, B) of b, cut "A-B", "A-" or "B".
func documents(t *testing.T, b []byte, cut string) []byte {
	t.Helper()
	docs := bytes.Split(b, []byte("\n---\n"))
	from, to := 0, len(docs)
	a, z, ranged := strings.Cut(cut, "-")
	var err error
	if ranged {
		if from, err = strconv.Atoi(a); err == nil && z != "" {
			to, err = strconv.Atoi(z)
		}
	} else {
		to, err = strconv.Atoi(a)
	}
	if err != nil {
		t.Fatalf("sources: %q must be A-B, A- or B", cut)
	}
	docs = docs[min(from, len(docs)):min(to, len(docs))]
	out := bytes.Join(docs, []byte("\n---\n"))
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}

// copyLinks copies src into dst, symbolic links as links, executable
// files executable.
func copyLinks(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			_ = os.Remove(to)
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		// A stub program (outside/istioctl) stays executable.
		mode := fs.FileMode(0o644)
		if info, err := d.Info(); err == nil && info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		return os.WriteFile(to, b, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func diffSnapshots(got, want map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			out = append(out, "missing "+k)
		} else if g != want[k] {
			out = append(out, "changed "+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			out = append(out, "new "+k)
		}
	}
	return strings.Join(out, "\n")
}

// resourceList is the tree as kustomize fn run hands it to a function,
// with the items of the files moves names moved to other paths.
func resourceList(t *testing.T, tree string, moves map[string]string) []byte {
	t.Helper()
	items, err := (&kio.LocalPackageReader{PackagePath: tree, MatchFilesGlob: kio.MatchAll, PreserveSeqIndent: true}).Read()
	if err != nil {
		t.Fatalf("read %s: %v", tree, err)
	}
	moved := map[string]bool{}
	for _, it := range items {
		p, _, _ := kioutil.GetFileAnnotations(it)
		to, ok := moves[p]
		if !ok {
			continue
		}
		moved[p] = true
		for _, k := range []string{kioutil.PathAnnotation, kioutil.LegacyPathAnnotation} {
			if err := it.PipeE(yaml.SetAnnotation(k, to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for p := range moves {
		if !moved[p] {
			t.Fatalf("paths: the tree has no file %s", p)
		}
	}
	var b bytes.Buffer
	if err := (kio.ByteWriter{Writer: &b, KeepReaderAnnotations: true,
		WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion}).Write(items); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
