package krm

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// TreeTag tags each result of a run over several trees with the folder of
// the tree it is about ("." for the run's own folder).
const TreeTag = "tree"

// RunDir reads root as `kustomize fn run` does, runs the function configs
// of ours found in it (in path order) and writes root back all or nothing:
// files whose objects are no longer emitted are deleted, files a run
// passed through keep their bytes, the others are laid out as kustomize
// and kpt lay them out. A processor that runs over files (our pipeline)
// reads only the files it needs; the others get every object. The tree is
// locked from the read to the commit, and a commit an interrupted command
// left is finished or undone first, a tree's below root too (disk.OpenBelow).
//
// Several IstioGitOps trees (a parent folder of clusters) are each run on
// their own files (see Split), every one of them before anything is
// written; each result names its tree, and each tree is written as a unit
// of its own, its journal in its folder.
func (ps Processors) RunDir(root string) (framework.Results, error) {
	t, lock, results, err := disk.OpenBelow(root)
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
	roots := Roots(cfgs)
	several := len(roots) > 1
	cur := in
	var failed []string
	for _, cfg := range cfgs {
		var res framework.Results
		p := ps[cfg.GetKind()]
		if hp, ok := p.(hiddenChecker); ok {
			p = hp.WithHidden(t.Hidden)
		}
		if !several || cfg.GetKind() != config.Kind {
			cur, res, err = processFiles(p, cur, cfg)
			results = append(results, res...)
			if err != nil {
				return Unwritten(results), err
			}
			continue
		}
		tree := RootOf(object.Path(cfg))
		view, rest := Split(cur, roots, tree)
		out, res, err := processFiles(p, view, cfg)
		results = append(results, tagTree(res, tree)...)
		if err == nil && res.ExitCode() != 0 {
			err = errors.New("the run reported errors")
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("tree %s: %v", Describe(tree, cfg), err))
			continue
		}
		cur = append(rest, out...)
	}
	if len(failed) > 0 {
		return Unwritten(results), fmt.Errorf("%s; nothing was written", strings.Join(failed, "; "))
	}
	if results.ExitCode() != 0 {
		return Unwritten(results), fmt.Errorf("the run reported errors; nothing was written")
	}
	writes, deletes, err := fileset.Changes(in, cur)
	if err != nil {
		return Unwritten(results), err
	}
	if !several {
		if err := t.Commit(writes, deletes); err != nil {
			return Unwritten(results), err
		}
		return results, nil
	}
	// Trees are written one by one: what was written before an error holds.
	return results, commitTrees(t, roots, cfgs, writes, deletes, &results)
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

// processFiles runs one config over files.
func processFiles(p framework.ResourceListProcessor, in fileset.Set, cfg *yaml.RNode) (fileset.Set, framework.Results, error) {
	if fp, ok := p.(fileset.Processor); ok {
		return fp.ProcessFiles(in, cfg)
	}
	return fileset.ProcessItems(p, in, cfg, nil)
}

// commitTrees writes each tree's changes as a commit of its own, in path
// order, then the changes in no tree (a RevisionMigration's), and says
// what each tree got.
func commitTrees(t *disk.Tree, roots []string, cfgs []*yaml.RNode, writes []disk.Write, deletes []string, results *framework.Results) error {
	type change struct {
		writes  []disk.Write
		deletes []string
	}
	byTree := map[string]*change{}
	var rest change
	at := func(p string) (*change, string) {
		r, ok := Owner(roots, p)
		if !ok {
			return &rest, p
		}
		if byTree[r] == nil {
			byTree[r] = &change{}
		}
		if r == "" {
			return byTree[r], p
		}
		return byTree[r], strings.TrimPrefix(p, r+"/")
	}
	for _, w := range writes {
		c, p := at(w.Path)
		c.writes = append(c.writes, disk.Write{Path: p, Data: w.Data})
	}
	for _, d := range deletes {
		c, p := at(d)
		c.deletes = append(c.deletes, p)
	}
	for _, r := range roots {
		c := byTree[r]
		if c == nil {
			c = &change{}
		}
		if err := t.Sub(r, roots).Commit(c.writes, c.deletes); err != nil {
			return fmt.Errorf("tree %s: %w", displayRoot(r), err)
		}
		msg := "no change"
		if n := len(c.writes) + len(c.deletes); n > 0 {
			msg = fmt.Sprintf("%d files written, %d deleted", len(c.writes), len(c.deletes))
		}
		for _, cfg := range cfgs {
			if cfg.GetKind() == config.Kind && RootOf(object.Path(cfg)) == r {
				msg = fmt.Sprintf("tree %s: %s", Describe(r, cfg), msg)
				break
			}
		}
		*results = append(*results, tagTree(framework.Results{{Severity: framework.Info, Message: msg}}, r)...)
	}
	if slices.Contains(roots, "") {
		return nil
	}
	return t.Sub("", roots).Commit(rest.writes, rest.deletes)
}

// tagTree tags results with their tree.
func tagTree(res framework.Results, root string) framework.Results {
	for _, r := range res {
		if r.Tags == nil {
			r.Tags = map[string]string{}
		}
		r.Tags[TreeTag] = displayRoot(root)
	}
	return res
}

func displayRoot(root string) string {
	if root == "" {
		return "."
	}
	return root
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
