package krm

import (
	"fmt"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// RunDir reads root as `kustomize fn run` does, runs the function configs
// of ours found in it (in path order) and writes root back all or nothing:
// files whose objects are no longer emitted are deleted, files a run
// passed through keep their bytes, the others are laid out as kustomize
// and kpt lay them out. A processor that runs over files (our pipeline)
// reads only the files it needs; the others get every object. The tree is
// locked from the read to the commit, and a commit an interrupted command
// left is finished or undone first (disk.Open).
func (ps Processors) RunDir(root string) (framework.Results, error) {
	t, lock, results, err := disk.Open(root)
	defer lock.Unlock()
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
	t.Origin.Command = "run"
	for _, cfg := range cfgs {
		t.Origin.Configs = append(t.Origin.Configs, object.Path(cfg))
	}
	cur := in
	for _, cfg := range cfgs {
		var res framework.Results
		p := ps[cfg.GetKind()]
		if hp, ok := p.(hiddenChecker); ok {
			p = hp.WithHidden(t.Hidden)
		}
		if fp, ok := p.(fileset.Processor); ok {
			cur, res, err = fp.ProcessFiles(cur, cfg)
		} else {
			cur, res, err = fileset.ProcessItems(p, cur, cfg, nil)
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

// hiddenChecker is a processor that refuses a tree whose .krmignore hides
// what it owns, when it is told what the ignore file hides.
type hiddenChecker interface {
	WithHidden(hidden func(path string, dir bool) bool) framework.ResourceListProcessor
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
