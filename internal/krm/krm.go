// Package krm holds the ResourceList plumbing shared by every function
// config of ours: choosing the processor by the config's kind, finding the
// configs in a tree, and reading and writing a directory the way
// `kustomize fn run` does.
package krm

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Processors maps the kind of a function config of ours to what runs it.
type Processors map[string]framework.ResourceListProcessor

// IsConfig reports whether node is a function config this binary runs.
func (ps Processors) IsConfig(node *yaml.RNode) bool {
	if node == nil || node.GetApiVersion() != api.APIVersion {
		return false
	}
	_, ok := ps[node.GetKind()]
	return ok
}

// Process runs the processor of the function config's kind. Without a
// config of ours (none, or the empty ConfigMap `kustomize fn run --exec-path`
// passes), it runs every config of ours found among the items, in path order.
func (ps Processors) Process(rl *framework.ResourceList) error {
	if ps.IsConfig(rl.FunctionConfig) {
		return ps[rl.FunctionConfig.GetKind()].Process(rl)
	}
	if rl.FunctionConfig != nil && !isEmptyConfigMap(rl.FunctionConfig) {
		return fmt.Errorf("functionConfig %s %q: kind must be one of %q with apiVersion %q",
			rl.FunctionConfig.GetKind(), rl.FunctionConfig.GetName(), ps.kinds(), api.APIVersion)
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
		if it.GetApiVersion() == api.APIVersion && slices.Contains(kinds, it.GetKind()) {
			found = append(found, it)
		}
	}
	slices.SortStableFunc(found, func(a, b *yaml.RNode) int { return strings.Compare(object.Path(a), object.Path(b)) })
	return found
}

func isEmptyConfigMap(n *yaml.RNode) bool {
	if n.GetKind() != "ConfigMap" {
		return false
	}
	data := n.GetDataMap()
	return len(data) == 0
}

// RunDir reads root as `kustomize fn run` does, runs the function configs
// of ours found in it (in path order) and writes root back all or nothing:
// files whose objects are no longer emitted are deleted, files a run
// passed through keep their bytes, the others are laid out as kustomize
// and kpt lay them out. A processor that runs over files (our pipeline)
// reads only the files it needs; the others get every object. A commit an
// interrupted run left unfinished is finished first.
func (ps Processors) RunDir(root string) (framework.Results, error) {
	var results framework.Results
	recovered, err := disk.Recover(root)
	if err != nil {
		return nil, err
	}
	if recovered {
		results = append(results, &framework.Result{Severity: framework.Warning,
			Message: fmt.Sprintf("%s: finished writing the changes of an earlier run that was interrupted", root)})
	}
	t, err := disk.Read(root)
	if err != nil {
		return results, err
	}
	in := fileset.FromTree(t)
	cfgs, err := FindConfigs(in, ps.kinds()...)
	if err != nil {
		return results, err
	}
	if len(cfgs) == 0 {
		return results, fmt.Errorf("%s: no function config: the tree must hold an object of kind %q with apiVersion %q",
			root, ps.kinds(), api.APIVersion)
	}
	cur := in
	for _, cfg := range cfgs {
		var res framework.Results
		if fp, ok := ps[cfg.GetKind()].(fileset.Processor); ok {
			cur, res, err = fp.ProcessFiles(cur, cfg)
		} else {
			cur, res, err = fileset.ProcessItems(ps[cfg.GetKind()], cur, cfg, nil)
		}
		results = append(results, res...)
		if err != nil {
			return results, err
		}
	}
	if results.ExitCode() != 0 {
		return results, fmt.Errorf("the run reported errors; nothing was written")
	}
	writes, deletes, err := fileset.Changes(in, cur)
	if err != nil {
		return results, err
	}
	return results, t.Commit(writes, deletes)
}

// FindConfigs finds the function configs of ours (objects of our API
// group of one of kinds) among files without parsing them all: only a
// file that names one of the kinds is parsed.
func FindConfigs(in fileset.Set, kinds ...string) ([]*yaml.RNode, error) {
	var found []*yaml.RNode
	for _, f := range in {
		ours, err := f.Mentions(kinds...)
		if err != nil {
			return nil, err
		}
		if !ours {
			continue
		}
		objs, err := f.Objects()
		if err != nil {
			return nil, err
		}
		found = append(found, ConfigsOf(objs, kinds...)...)
	}
	return found, nil
}
