package krm

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Trees side by side stay separate: each IstioGitOps config owns its
// folder and what lies below it, less the folders of the configs below it.
// A run or a status over a parent folder gives each tree its own files
// and the files of no tree (Namespace manifests beside the trees, say),
// never another tree's: another cluster's istiod and gateways are not
// this cluster's workloads.

// Roots are the folders of the IstioGitOps configs among cfgs, relative to
// the run ("" for the run's own folder), sorted and without repeats. A
// config without a path (given as functionConfig only) has no folder of
// its own and owns nothing apart.
func Roots(cfgs []*yaml.RNode) []string {
	var roots []string
	for _, c := range cfgs {
		if c.GetKind() != config.Kind {
			continue
		}
		if p := object.Path(c); p != "" {
			roots = append(roots, RootOf(p))
		}
	}
	slices.Sort(roots)
	return slices.Compact(roots)
}

// RootOf is the folder of a config's file, "" for the run's own.
func RootOf(file string) string {
	if d := path.Dir(file); d != "." {
		return d
	}
	return ""
}

// Owner returns the tree among roots that owns the file at p: the deepest
// root p is below. ok is false when p is in no tree.
func Owner(roots []string, p string) (root string, ok bool) {
	for _, r := range roots {
		if (r == "" || strings.HasPrefix(p, r+"/")) && (!ok || len(r) > len(root)) {
			root, ok = r, true
		}
	}
	return root, ok
}

// Split sorts in for the tree at root: the files it sees (its own and
// those of no tree, and items without a path) and the rest (the files of
// the other trees), which its run must pass over.
func Split(in fileset.Set, roots []string, root string) (view, rest fileset.Set) {
	for _, f := range in {
		if owner, ok := Owner(roots, f.Path); ok && owner != root && f.Path != "" {
			rest = append(rest, f)
			continue
		}
		view = append(view, f)
	}
	return view, rest
}

// SplitItems is Split over a ResourceList's items.
func SplitItems(items []*yaml.RNode, roots []string, root string) (view, rest []*yaml.RNode) {
	for _, it := range items {
		p := object.Path(it)
		if owner, ok := Owner(roots, p); ok && owner != root && p != "" {
			rest = append(rest, it)
			continue
		}
		view = append(view, it)
	}
	return view, rest
}

// Describe names a tree in messages: its folder and config.
func Describe(root string, cfg *yaml.RNode) string {
	if root == "" {
		root = "."
	}
	return fmt.Sprintf("%s (%s %q)", root, cfg.GetKind(), cfg.GetName())
}
