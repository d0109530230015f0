package pipeline

import (
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/kustomization"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/patch"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// tree sorts a run's items by who owns them. Paths are relative to the
// tree root (the folder of the IstioGitOps config).
type tree struct {
	cfg  *config.IstioGitOps
	root string

	// outside are items beyond the tree root; the run leaves them alone.
	outside []*yaml.RNode
	// user are items in the tree the function does not own.
	user []*yaml.RNode
	// sources are the revisions' fresh istioctl output, by revision.
	sources map[string][]*yaml.RNode
	// generated are the revisions' current generated objects.
	generated map[string][]*yaml.RNode
	states    map[string]*yaml.RNode
	// recorded are the records of states, decoded once.
	recorded map[string]*state.State
	// patches are each revision's GitPatch objects (also in user).
	patches map[string][]*yaml.RNode
	// common are the objects in common/<kind>/ taken from istioctl output.
	common []*yaml.RNode
	// rendered are last run's rendered objects; they are rendered anew.
	rendered []*yaml.RNode
	// retired are the items of revision folders no longer listed.
	retired map[string][]*yaml.RNode
}

// rel is an item's path relative to the tree root, and whether it is in
// the tree at all.
func (t *tree) rel(n *yaml.RNode) (string, bool) {
	p := krm.Path(n)
	if t.root == "" {
		return p, true
	}
	if r, ok := strings.CutPrefix(p, t.root+"/"); ok {
		return r, true
	}
	return "", false
}

// abs is the run-relative path of a tree path.
func (t *tree) abs(p string) string {
	if t.root == "" {
		return p
	}
	return path.Join(t.root, p)
}

// findRoot is the folder of the config among the items: the tree it
// governs. A config given only as functionConfig governs the whole input.
func findRoot(cfgNode *yaml.RNode, items []*yaml.RNode) string {
	root := ""
	if p := krm.Path(cfgNode); p != "." && p != "" {
		root = path.Dir(p)
	} else {
		for _, it := range items {
			if it.GetApiVersion() == cfgNode.GetApiVersion() && it.GetKind() == cfgNode.GetKind() &&
				it.GetName() == cfgNode.GetName() {
				root = path.Dir(krm.Path(it))
				break
			}
		}
	}
	if root == "." {
		return ""
	}
	return root
}

func index(cfg *config.IstioGitOps, items []*yaml.RNode) (*tree, error) {
	t := &tree{
		cfg:       cfg,
		root:      findRoot(cfg.Node, items),
		sources:   map[string][]*yaml.RNode{},
		generated: map[string][]*yaml.RNode{},
		states:    map[string]*yaml.RNode{},
		recorded:  map[string]*state.State{},
		patches:   map[string][]*yaml.RNode{},
		retired:   map[string][]*yaml.RNode{},
	}
	listed := map[string]bool{}
	bySource := map[string]string{}
	for _, r := range cfg.Spec.Revisions {
		listed[r.Name] = true
		bySource[r.Source] = r.Name
	}
	// A folder that is not listed but holds a revision record is a
	// revision being retired.
	retiring := map[string]bool{}
	for _, it := range items {
		if p, in := t.rel(it); in && state.Is(it) {
			if parts := strings.Split(p, "/"); len(parts) == 3 && parts[1] == layout.Generated && !listed[parts[0]] {
				retiring[parts[0]] = true
			}
		}
	}
	for _, it := range items {
		p, in := t.rel(it)
		if !in {
			t.outside = append(t.outside, it)
			continue
		}
		if rev, ok := bySource[p]; ok {
			t.sources[rev] = append(t.sources[rev], it)
			continue
		}
		parts := strings.Split(p, "/")
		top := parts[0]
		if retiring[top] && len(parts) > 1 {
			t.retired[top] = append(t.retired[top], it)
			continue
		}
		if path.Base(p) == config.SourceFile {
			return nil, fmt.Errorf("%s: %s is istioctl output for a revision that spec.revisions must list (sources: %q)",
				t.abs(p), krm.Describe(it), config.SortedKeys(bySource))
		}
		_, rendered := it.GetAnnotations()[api.RenderedFromAnnotation]
		switch {
		case path.Base(p) == layout.Kustomization && kustomization.Is(it) &&
			(len(parts) == 1 || len(parts) == 2 && (top == layout.Common || top == layout.Flux || listed[top])):
			// Rewritten every run.
		case rendered && (top == layout.Common || top == layout.Flux || listed[top]):
			t.rendered = append(t.rendered, it)
		case top == layout.Common && len(parts) >= 3 && parts[1] == strings.ToLower(it.GetKind()):
			t.common = append(t.common, it)
		case len(parts) >= 3 && parts[1] == layout.Generated && listed[top]:
			if state.Is(it) && len(parts) == 3 {
				st, err := state.Read(it)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", t.abs(p), err)
				}
				t.states[top] = it
				t.recorded[top] = st
			} else {
				t.generated[top] = append(t.generated[top], it)
			}
		default:
			if it.GetKind() == patch.Kind && strings.HasPrefix(it.GetApiVersion(), api.Group+"/") {
				if len(parts) != 3 || parts[1] != layout.Patches || !listed[top] {
					return nil, fmt.Errorf("%s: GitPatch %q must be in the patches/ folder of a listed revision (<rev>/patches/<name>.yaml) to be applied",
						t.abs(p), it.GetName())
				}
				t.patches[top] = append(t.patches[top], it)
			}
			t.user = append(t.user, it)
		}
	}
	return t, nil
}
