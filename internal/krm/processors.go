// Package krm runs the function configs of ours (IstioGitOps,
// RevisionMigration): over a ResourceList, as orchestrators call a KRM
// function (processors.go), and over a directory, read and written back
// the way `kustomize fn run` does (rundir.go).
package krm

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Processors maps the kind of a function config of ours to what runs it.
type Processors map[string]framework.ResourceListProcessor

// IsConfig reports whether node is a function config this binary runs.
func (ps Processors) IsConfig(node *yaml.RNode) bool {
	if node == nil || object.Scalar(node, "apiVersion") != api.APIVersion {
		return false
	}
	_, ok := ps[object.Scalar(node, "kind")]
	return ok
}

// Process runs the processor of the function config's kind. Without a
// config of ours (none, or the empty ConfigMap `kustomize fn run --exec-path`
// passes), it runs every config of ours found among the items, in path order.
// Several IstioGitOps trees among the items are each run on their own
// items (see Split), as RunDir runs them.
// The items' paths are checked first (fileset.Set.CheckPaths).
func (ps Processors) Process(rl *framework.ResourceList) error {
	// kustomize and kpt write each item to its path.
	if err := fileset.FromItems(rl.Items).CheckPaths(); err != nil {
		return err
	}
	if ps.IsConfig(rl.FunctionConfig) {
		return ps.processTree(rl, rl.FunctionConfig)
	}
	if rl.FunctionConfig != nil && !isEmptyConfigMap(rl.FunctionConfig) {
		return fmt.Errorf("functionConfig %s %q: kind must be one of %q with apiVersion %q",
			object.Scalar(rl.FunctionConfig, "kind"), object.Scalar(rl.FunctionConfig, "metadata", "name"), ps.kinds(), api.APIVersion)
	}
	found := ps.Configs(rl.Items)
	if len(found) == 0 {
		return fmt.Errorf("no function config: the input must hold an object of kind %q with apiVersion %q, or one must be given as functionConfig",
			ps.kinds(), api.APIVersion)
	}
	for _, cfg := range found {
		rl.FunctionConfig = cfg
		if err := ps.processTree(rl, cfg); err != nil {
			return err
		}
	}
	return nil
}

// processTree runs cfg over the items its tree sees, when the items hold
// several trees, else over every item.
func (ps Processors) processTree(rl *framework.ResourceList, cfg *yaml.RNode) error {
	p := ps[object.Scalar(cfg, "kind")]
	roots := Roots(ConfigsOf(rl.Items, config.Kind))
	if cfg.GetKind() != config.Kind || len(roots) < 2 {
		return p.Process(rl)
	}
	root, ok := rootOf(rl.Items, cfg)
	if !ok {
		return p.Process(rl)
	}
	view, rest := SplitItems(rl.Items, roots, root)
	sub := &framework.ResourceList{Items: view, FunctionConfig: cfg}
	err := p.Process(sub)
	rl.Results = append(rl.Results, tagTree(sub.Results, root)...)
	if err != nil {
		return fmt.Errorf("tree %s: %w", Describe(root, cfg), err)
	}
	rl.Items = append(rest, sub.Items...)
	return nil
}

// rootOf is the folder of cfg's tree: its own path, or that of the config
// among items it names (a functionConfig given apart from the items, as
// kpt's configPath gives it).
func rootOf(items []*yaml.RNode, cfg *yaml.RNode) (string, bool) {
	if p := object.Path(cfg); p != "" {
		return RootOf(p), true
	}
	for _, c := range ConfigsOf(items, cfg.GetKind()) {
		if c.GetName() == cfg.GetName() && object.Path(c) != "" {
			return RootOf(object.Path(c)), true
		}
	}
	return "", false
}

func (ps Processors) kinds() []string {
	return config.SortedKeys(ps)
}

// Configs returns the function configs of ours among items, by path.
func (ps Processors) Configs(items []*yaml.RNode) []*yaml.RNode {
	return ConfigsOf(items, ps.kinds()...)
}

// ConfigsOf returns the objects of our API group among items whose kind is
// one of kinds, by path.
func ConfigsOf(items []*yaml.RNode, kinds ...string) []*yaml.RNode {
	var found []*yaml.RNode
	for _, it := range items {
		if object.Scalar(it, "apiVersion") == api.APIVersion && slices.Contains(kinds, object.Scalar(it, "kind")) {
			found = append(found, it)
		}
	}
	slices.SortStableFunc(found, func(a, b *yaml.RNode) int { return strings.Compare(object.Path(a), object.Path(b)) })
	return found
}

// isEmptyConfigMap reports whether n is a ConfigMap without data, what
// `kustomize fn run --exec-path` passes as functionConfig.
func isEmptyConfigMap(n *yaml.RNode) bool {
	if object.Scalar(n, "kind") != "ConfigMap" || n.YNode().Kind != yaml.MappingNode {
		return false
	}
	data := n.Field("data")
	return data == nil || data.Value.IsNilOrEmpty()
}
