package krm

import (
	"errors"
	"fmt"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

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
			return Unwritten(results), err
		}
	}
	if results.ExitCode() != 0 {
		return Unwritten(results), fmt.Errorf("the run reported errors; nothing was written")
	}
	writes, deletes, err := fileset.Changes(in, cur)
	if err == nil {
		err = t.Commit(writes, deletes)
	}
	if err != nil {
		return Unwritten(results), err
	}
	return results, nil
}

// Unwritten are the results of a run that wrote nothing: those that say
// what it writes (tagged api.WritesTag) do not hold.
func Unwritten(results framework.Results) framework.Results {
	var out framework.Results
	for _, r := range results {
		if _, writes := r.Tags[api.WritesTag]; !writes {
			out = append(out, r)
		}
	}
	return out
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
			var ce *disk.ConflictError
			if errors.As(err, &ce) && ce.Advice == "" {
				ce.Advice = disk.Yours + "; if it is the function config, where the two sides moved different pointers, keep both moves"
			}
			return nil, err
		}
		found = append(found, ConfigsOf(objs, kinds...)...)
	}
	return found, nil
}
