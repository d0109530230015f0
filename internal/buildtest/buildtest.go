// Package buildtest builds written trees in tests the way their deployers
// do: with kustomize's library and with Flux's, as kustomize-controller
// builds. It is apart from treetest so that only the tests that build
// link kustomize and Flux.
package buildtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	k8syaml "sigs.k8s.io/yaml"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

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
	files := treetest.Files(t, dir)
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
	for _, n := range treetest.Names(files) {
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
	for _, n := range treetest.Names(files) {
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
	for _, n := range treetest.Names(files) {
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
	return fluxTreeOf(t, root, treetest.Files(t, root)).build(t, rel)
}
