// Package pipeline runs an IstioGitOps config over a tree: it ingests each
// revision's fresh istioctl output, classifies and lays out every object,
// applies the team's patches, renders the objects that point at one
// revision, and writes the kustomizations, so that kustomize and Flux build
// each folder as it is.
//
// A run is these stages, composed in Run, each a function with explicit
// inputs and outputs:
//
//	index       files by owner, from their paths (index.go)
//	check       the tree against its records: nothing lost, nothing
//	            edited by hand, nothing stray (check.go)
//	retirement  no namespace still uses a revision being retired (retire.go)
//	revisions   each listed revision regenerated from its fresh output
//	            (ingest.go, regenerate.go), or kept with new patches
//	            applied (patches.go); then common/ (common.go)
//	render      what the config points at: the active revision, tags,
//	            live gateways, node agents, Flux (render.go)
//	moves       what the config moved since the last run (moves.go)
//	kustomize   a kustomization per folder (kustomize.go)
//	output      the files of the tree after the run (output.go)
//
// Within a regeneration, each object of the output goes through the
// classification rules of the contract (classify.go), after the stages
// that look across objects: pinned EnvoyFilters, gateways, node agents.
package pipeline

import (
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
)

// DroppedTag tags the result of each source object a run does not write;
// its value is the revision whose output held it.
const DroppedTag = "dropped-from"

// Options are a run's settings that do not live in the config: what
// `istio-gitops run` takes as flags.
type Options struct {
	// AllowRemovals lets every regeneration of this run remove more than a
	// few objects (see config.Revision.AllowRemovals).
	AllowRemovals bool
	// Namespaces are Namespace manifests (and workloads) kept outside the
	// tree, read-only: they count for the retire guard.
	Namespaces fileset.Set
	// NamespacesFrom reports that Namespaces holds what spec.namespaces.from
	// names (istio-gitops run reads it from disk; under kustomize and kpt
	// the function cannot).
	NamespacesFrom bool
	// SharedPatches are the files of each path of spec.patchesFrom, as the
	// config spells it, read from disk; nil when the run takes them from
	// its input (under kustomize and kpt).
	SharedPatches map[string]fileset.Set
	// OrderChecked reports that the order of spec.promotion is judged
	// after the run (istio-gitops run reads the other clusters' trees and
	// the Git history; under kustomize and kpt the function cannot).
	OrderChecked bool
	// Hidden reports whether the reader's .krmignore hides a file or
	// folder (a run-relative path) from the run; nil when the input was
	// not read from disk (kustomize and kpt read it themselves).
	Hidden func(path string, dir bool) bool
}

// WithHidden is the processor with Options.Hidden set: istio-gitops run
// gives it what the tree's .krmignore hides.
func (p Processor) WithHidden(hidden func(path string, dir bool) bool) framework.ResourceListProcessor {
	p.Options.Hidden = hidden
	return p
}

// Processor runs IstioGitOps configs over a ResourceList (kustomize, kpt)
// or over files (istio-gitops run).
type Processor struct {
	Options Options
}

// Process implements framework.ResourceListProcessor.
func (p Processor) Process(rl *framework.ResourceList) error {
	in := fileset.FromItems(rl.Items)
	if err := in.CheckPaths(); err != nil {
		return err
	}
	if err := in.CheckShapes(); err != nil {
		return err
	}
	out, results, err := p.ProcessFiles(in, rl.FunctionConfig)
	rl.Results = append(rl.Results, results...)
	if err != nil {
		return err
	}
	items, err := out.Items()
	if err != nil {
		return err
	}
	rl.Items = items
	return nil
}

// ProcessFiles implements fileset.Processor.
func (p Processor) ProcessFiles(in fileset.Set, cfgNode *yaml.RNode) (fileset.Set, framework.Results, error) {
	cfg, res, err := config.LoadResults(cfgNode)
	if err != nil {
		return nil, res, err
	}
	return Run(cfg, in, p.Options)
}

// Run applies cfg to the files of a tree and returns the files the tree
// holds after the run, and the run's results. On error nothing may be
// written: kustomize, kpt and istio-gitops run write nothing.
func Run(cfg *config.IstioGitOps, in fileset.Set, opts Options) (fileset.Set, framework.Results, error) {
	t, out, list, err := run(cfg, in, opts)
	if err != nil && t != nil {
		err = t.advise(err)
	}
	return out, list, err
}

// run is Run's stages; t is the tree as indexed, when it was.
func run(cfg *config.IstioGitOps, in fileset.Set, opts Options) (*tree, fileset.Set, framework.Results, error) {
	var res results
	t, err := index(cfg, in)
	if err != nil {
		return t, nil, nil, err
	}
	if err := checkHidden(t, opts.Hidden); err != nil {
		return t, nil, nil, err
	}
	kept, err := check(t, &res)
	if err != nil {
		return t, nil, res.list, err
	}
	if err := checkRetirement(t, kept, opts, &res); err != nil {
		return t, nil, res.list, err
	}
	if err := readShared(t, opts); err != nil {
		return t, nil, res.list, err
	}
	if t.cfg.Spec.Promotion != nil && !opts.OrderChecked {
		res.warn(nil, t.runPath(t.cfgFile), "spec.promotion: the order is not checked here: the function sees only its input under kustomize and kpt; `istio-gitops run` and `istio-gitops fleet check` (in CI) check it")
	}
	revs, err := revisions(t, kept, opts, &res)
	if err != nil {
		return t, nil, res.list, err
	}
	common, err := commonFolder(t, revs, kept, opts, &res)
	if err != nil {
		return t, nil, res.list, err
	}
	retire(t, &res)
	rendered, err := render(t, revs, kept, &res)
	if err != nil {
		return t, nil, res.list, err
	}
	if err := checkVersions(t, revs, rendered, &res); err != nil {
		return t, nil, res.list, err
	}
	moves(t, kept, revs, rendered, &res)
	out, err := output(t, revs, common, rendered)
	if err != nil {
		return t, nil, res.list, err
	}
	out, err = kustomizations(t, out, &res)
	if err != nil {
		return t, nil, res.list, err
	}
	out.Sort()
	if err := checkPaths(out); err != nil {
		return t, nil, res.list, err
	}
	// Last, once nothing can fail: what the run writes.
	if err := summarize(t, revs, common, &res); err != nil {
		return t, nil, res.list, err
	}
	return t, out, res.list, nil
}

// results collects a run's results.
type results struct {
	list framework.Results
}

// refOf names an object in a result; nil for none.
func refOf(o *yaml.RNode) *yaml.ResourceIdentifier {
	if o == nil {
		return nil
	}
	return &yaml.ResourceIdentifier{
		TypeMeta: yaml.TypeMeta{APIVersion: o.GetApiVersion(), Kind: o.GetKind()},
		NameMeta: yaml.NameMeta{Name: o.GetName(), Namespace: o.GetNamespace()},
	}
}

func (r *results) add(sev framework.Severity, o *yaml.RNode, file, msg string) *framework.Result {
	return r.addRef(sev, refOf(o), file, msg)
}

func (r *results) addRef(sev framework.Severity, ref *yaml.ResourceIdentifier, file, msg string) *framework.Result {
	res := &framework.Result{Severity: sev, Message: msg, ResourceRef: ref}
	if file != "" {
		res.File = &framework.File{Path: file}
	}
	r.list = append(r.list, res)
	return res
}

func (r *results) info(o *yaml.RNode, file, msg string) { r.add(framework.Info, o, file, msg) }

func (r *results) warn(o *yaml.RNode, file, msg string) { r.add(framework.Warning, o, file, msg) }

func (r *results) note(sev framework.Severity, msg string) { r.add(sev, nil, "", msg) }

func (r *results) drop(ref *yaml.ResourceIdentifier, rev, file, msg string, sev framework.Severity) {
	res := r.addRef(sev, ref, file, msg)
	res.Tags = map[string]string{DroppedTag: rev}
}

// checkPaths makes sure no two emitted files share a path.
func checkPaths(out fileset.Set) error {
	seen := map[string]bool{}
	for _, f := range out {
		if f.Path == "" {
			continue
		}
		if seen[f.Path] {
			return fmt.Errorf("%s: two objects must not be written to the same file", f.Path)
		}
		seen[f.Path] = true
	}
	return nil
}

// CheckRecords checks a tree against its records, as a run does before it
// decides anything, and writes nothing: a generated file lost, emptied,
// edited by hand or unknown is an error that says how to repair.
func CheckRecords(cfg *config.IstioGitOps, in fileset.Set) (framework.Results, error) {
	var res results
	t, err := index(cfg, in)
	if err != nil {
		return nil, err
	}
	_, err = check(t, &res)
	return res.list, err
}
