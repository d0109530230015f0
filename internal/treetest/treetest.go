// Package treetest holds what tests of written trees share: copying and
// comparing trees, golden updates, and building every folder the way
// kustomize and Flux do.
package treetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	k8syaml "sigs.k8s.io/yaml"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Update rewrites golden files instead of comparing with them.
var Update = flag.Bool("update", false, "rewrite golden files")

// Files reads every file below dir, by slash path relative to dir.
func Files(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", dir, err)
	}
	return files
}

// Names lists a tree's files, sorted.
func Names(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Copy copies the tree at src into dst.
func Copy(t testing.TB, src, dst string) {
	t.Helper()
	for _, name := range Names(Files(t, src)) {
		CopyFile(t, filepath.Join(src, name), filepath.Join(dst, name))
	}
}

// CopyFile copies one file, creating its folder.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	Write(t, dst, b)
}

// Write writes a file, creating its folder.
func Write(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Diff describes how tree got differs from tree want; "" when equal.
func Diff(got, want map[string][]byte) string {
	var out []string
	for _, n := range Names(want) {
		g, ok := got[n]
		switch {
		case !ok:
			out = append(out, "missing "+n)
		case !bytes.Equal(g, want[n]):
			out = append(out, fmt.Sprintf("differs %s:\n%s", n, LineDiff(g, want[n])))
		}
	}
	for _, n := range Names(got) {
		if _, ok := want[n]; !ok {
			out = append(out, "unexpected "+n)
		}
	}
	return strings.Join(out, "\n")
}

// LineDiff shows the first lines where got and want differ, numbered.
func LineDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	var out []string
	for i := 0; i < max(len(g), len(w)) && len(out) < 10; i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			out = append(out, fmt.Sprintf("  line %d\n  got:  %q\n  want: %q", i+1, gl, wl))
		}
	}
	return strings.Join(out, "\n")
}

// GoldenFile compares got with the golden file at path, or rewrites it
// with -update.
func GoldenFile(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		Write(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, LineDiff(got, want))
	}
}

// Git runs the real git in dir, isolated from the user's and the system's
// configuration (diff.noPrefix, colours, hooks), with a fixed identity and
// clock so commits are reproducible; it returns git's output.
func Git(t testing.TB, dir string, args ...string) string {
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

// Golden compares the tree at dir with the golden tree at want, or
// rewrites the golden tree with -update.
func Golden(t testing.TB, dir, want string) {
	t.Helper()
	got := Files(t, dir)
	if *Update {
		if err := os.RemoveAll(want); err != nil {
			t.Fatal(err)
		}
		for _, n := range Names(got) {
			Write(t, filepath.Join(want, n), got[n])
		}
		return
	}
	if d := Diff(got, Files(t, want)); d != "" {
		t.Errorf("tree %s differs from golden %s (rerun with -update to accept):\n%s", dir, want, d)
	}
}

// Kustomizations lists the folders of a tree holding a kustomization.yaml.
func Kustomizations(t testing.TB, dir string) []string {
	t.Helper()
	var dirs []string
	for _, n := range Names(Files(t, dir)) {
		if filepath.Base(n) == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(n))
		}
	}
	return dirs
}

// BuildAll builds the tree as its deployers build it, with kustomize's
// own library (krusty) and with Flux's (its kustomization generator, then
// its secure build confined to the tree, as kustomize-controller does),
// and returns the number of objects each top folder renders. The top
// folders are those with a kustomization.yaml that no other kustomization
// of the tree lists: building one builds every folder it lists, each as a
// kustomization of its own, so every kustomization of the tree is built.
// A tree built before with the same bytes is not built again.
func BuildAll(t testing.TB, dir string) map[string]int {
	t.Helper()
	files := Files(t, dir)
	key := treeKey(files)
	built.Lock()
	counts, ok := built.trees[key]
	built.Unlock()
	if ok {
		return counts
	}
	counts = map[string]int{}
	tops := topKustomizations(t, files)
	flux := fluxTreeOf(t, dir, files)
	for _, k := range tops {
		m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, k))
		if err != nil {
			t.Errorf("kustomize build %s: %v", k, err)
		}
		fm := flux.build(t, k)
		if m == nil || fm == nil {
			continue
		}
		counts[k] = m.Size()
		if fm.Size() != m.Size() {
			t.Errorf("%s: Flux builds %d objects, kustomize %d", k, fm.Size(), m.Size())
		}
	}
	if !t.Failed() {
		built.Lock()
		built.trees[key] = counts
		built.Unlock()
	}
	return counts
}

// built are the trees BuildAll built, by treeKey.
var built = struct {
	sync.Mutex
	trees map[string]map[string]int
}{trees: map[string]map[string]int{}}

func treeKey(files map[string][]byte) string {
	h := sha256.New()
	for _, n := range Names(files) {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// topKustomizations are the folders holding a kustomization.yaml that no
// kustomization of the tree lists as a resource.
func topKustomizations(t testing.TB, files map[string][]byte) []string {
	t.Helper()
	folders := map[string]bool{}
	for _, n := range Names(files) {
		if filepath.Base(n) == "kustomization.yaml" {
			folders[filepath.Dir(n)] = true
		}
	}
	listed := map[string]bool{}
	for f := range folders {
		var k struct {
			Resources []string `json:"resources"`
		}
		if err := k8syaml.Unmarshal(files[filepath.Join(f, "kustomization.yaml")], &k); err != nil {
			t.Errorf("%s/kustomization.yaml: %v", f, err)
			continue
		}
		for _, r := range k.Resources {
			listed[filepath.Join(f, r)] = true
		}
	}
	var tops []string
	for f := range folders {
		if !listed[f] {
			tops = append(tops, f)
		}
	}
	slices.Sort(tops)
	return tops
}

// fluxTree is one copy of a tree, in memory, that Flux's generator may
// write into: kustomize-controller builds a copy too (its artifact), and
// the secure file system it builds on denies everything outside the
// tree, which a copy holding the tree alone does as well.
type fluxTree struct {
	root string
	fs   filesys.FileSystem
}

func fluxTreeOf(t testing.TB, root string, files map[string][]byte) *fluxTree {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	fsys := filesys.MakeFsInMemory()
	for _, n := range Names(files) {
		if err := fsys.WriteFile(filepath.Join(abs, filepath.FromSlash(n)), files[n]); err != nil {
			t.Fatalf("flux copy of %s: %v", n, err)
		}
	}
	return &fluxTree{root: abs, fs: fsys}
}

// build builds folder rel as kustomize-controller does: its generator's
// kustomization.yaml (made from the tree on disk, which it only reads),
// then its build.
func (f *fluxTree) build(t testing.TB, rel string) resmap.ResMap {
	t.Helper()
	ks := unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
		"kind":       "Kustomization",
		"metadata":   map[string]any{"name": "istio", "namespace": "flux-system"},
		"spec":       map[string]any{"path": "./" + rel, "prune": true},
	}}
	dirPath := filepath.Join(f.root, rel)
	manifest, kfile, _, err := fluxkustomize.NewGenerator(f.root, ks).GenerateManifest(dirPath)
	if err != nil {
		t.Errorf("flux generate %s: %v", rel, err)
		return nil
	}
	if err := f.fs.WriteFile(kfile, manifest); err != nil {
		t.Fatal(err)
	}
	m, err := fluxkustomize.Build(f.fs, dirPath)
	if err != nil {
		t.Errorf("flux build %s: %v", rel, err)
		return nil
	}
	return m
}

// FluxBuild builds folder rel of the tree at root as Flux's
// kustomize-controller does: on a copy, through its kustomization
// generator, then its secure build confined to the root.
func FluxBuild(t testing.TB, root, rel string) int {
	t.Helper()
	m := fluxBuild(t, root, rel)
	if m == nil {
		return -1
	}
	return m.Size()
}

// FluxYAML is the YAML that FluxBuild builds: what kustomize-controller
// applies; nil after a reported failure.
func FluxYAML(t testing.TB, root, rel string) []byte {
	t.Helper()
	m := fluxBuild(t, root, rel)
	if m == nil {
		return nil
	}
	b, err := m.AsYaml()
	if err != nil {
		t.Errorf("flux build %s: %v", rel, err)
		return nil
	}
	return b
}

func fluxBuild(t testing.TB, root, rel string) resmap.ResMap {
	t.Helper()
	return fluxTreeOf(t, root, Files(t, root)).build(t, rel)
}
