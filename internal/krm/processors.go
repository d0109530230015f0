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
// The items' paths are checked first (fileset.Set.CheckPaths).
func (ps Processors) Process(rl *framework.ResourceList) error {
	// kustomize and kpt write each item to its path.
	if err := fileset.FromItems(rl.Items).CheckPaths(); err != nil {
		return err
	}
	if ps.IsConfig(rl.FunctionConfig) {
		return ps[object.Scalar(rl.FunctionConfig, "kind")].Process(rl)
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
		if err := ps[cfg.GetKind()].Process(rl); err != nil {
			return err
		}
	}
	return nil
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
