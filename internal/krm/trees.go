package krm

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
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

// ConfigIn reads the config of kind at the top of the folder dir, as a
// tree keeps it (the files of dir itself, not of its subfolders): one
// object of our group, its path annotation the file's name. Only files
// that name kind are parsed.
func ConfigIn(dir, kind string) (*yaml.RNode, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var found []*yaml.RNode
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		f, err := disk.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ff := fileset.Named(e.Name(), fileset.FromDisk(f))
		if ok, err := ff.Mentions(kind); err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		objs, err := ff.Objects()
		if err != nil {
			return nil, err
		}
		found = append(found, ConfigsOf(objs, kind)...)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s holds no %s config: it must be the folder of a cluster's config", dir, kind)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%s holds %d %s configs (%s and %s): one folder holds one tree", dir, len(found), kind, object.Path(found[0]), object.Path(found[1]))
}
