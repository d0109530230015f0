// Package pipeline runs an IstioGitOps config over a tree: it ingests each
// revision's fresh istioctl output, classifies and lays out every object,
// applies the team's patches, renders the objects that point at one
// revision, and writes the kustomizations, so that kustomize and Flux build
// each folder as it is.
//
// The stages of a revision's fresh output, in order (regenerate.go):
//
//	check        istioctl.Check: kinds, names, identities
//	envoyfilter  drop EnvoyFilters pinned to another Istio version
//	pointers     drop the objects the run renders itself (pointer.IsPointer)
//	gateways     rename gateways <name>-<rev> (gateway.PerRevision)
//	classify     revision folder, or common/ from the newest revision
//	label        istio.io/rev on the revision's objects
//	guard        webhook drift guards (pointer.DriftGuards)
//	patch        the revision's GitPatches (patches.go)
//	record       digests of the written files (state)
//
// Then, every run: retire revisions no longer listed (retire.go); render
// the pointers, tags, stable Services, Ingresses and Flux Kustomizations
// (render.go); write a kustomization.yaml per folder (kustomize.go).
package pipeline

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// DroppedTag tags the result of each source object a run does not write;
// its value is the revision whose output held it.
const DroppedTag = "dropped-from"

// Processor runs IstioGitOps configs; it is a framework.ResourceListProcessor.
type Processor struct{}

// Process implements framework.ResourceListProcessor.
func (Processor) Process(rl *framework.ResourceList) error {
	cfg, err := config.Load(rl.FunctionConfig)
	if err != nil {
		return err
	}
	out, results, err := Run(cfg, rl.Items)
	rl.Results = append(rl.Results, results...)
	if err != nil {
		return err
	}
	rl.Items = out
	return nil
}

// run is one run's working state.
type run struct {
	*tree
	results framework.Results
	// out are the items to emit.
	out []*yaml.RNode
	// objs are each listed revision's generated objects after the run.
	objs map[string][]*yaml.RNode
	// records are each listed revision's record after the run.
	records     map[string]*state.State
	regenerated map[string]bool
}

// Run applies cfg to items and returns the items to write and the run's
// results. Items may be edited in place; on error the caller must not
// write them (kustomize, kpt and RunDir write nothing on error).
func Run(cfg *config.IstioGitOps, items []*yaml.RNode) ([]*yaml.RNode, framework.Results, error) {
	t, err := index(cfg, items)
	if err != nil {
		return nil, nil, err
	}
	r := &run{
		tree:        t,
		objs:        map[string][]*yaml.RNode{},
		records:     map[string]*state.State{},
		regenerated: map[string]bool{},
	}
	if err := r.execute(); err != nil {
		return nil, r.results, err
	}
	return r.out, r.results, nil
}

func (r *run) execute() error {
	if err := r.checkRetirement(); err != nil {
		return err
	}
	newest := r.cfg.Newest()
	for i, rev := range r.cfg.Spec.Revisions {
		if _, ok := r.sources[rev.Name]; ok {
			if err := r.regenerate(rev, rev.Name == newest); err != nil {
				return err
			}
		} else {
			if len(r.generated[rev.Name]) == 0 {
				return fmt.Errorf("spec.revisions[%d]: revision %q must have its istioctl output at %s or generated files from an earlier run",
					i, rev.Name, r.abs(rev.Source))
			}
			if err := r.keep(rev.Name); err != nil {
				return err
			}
		}
		if err := r.emitRecord(rev.Name); err != nil {
			return err
		}
	}
	if !r.regenerated[newest] {
		r.out = append(r.out, r.common...)
	}
	r.retire()
	if err := r.render(); err != nil {
		return err
	}
	r.checkSkew()
	r.out = append(r.out, r.user...)
	if err := r.kustomizations(); err != nil {
		return err
	}
	if err := checkPaths(r.out); err != nil {
		return err
	}
	r.out = append(r.out, r.outside...)
	sortItems(r.out)
	return nil
}

// keep carries a revision that is not regenerated: its files stay as they
// are, but patches added since the last run are applied.
func (r *run) keep(rev string) error {
	r.objs[rev] = r.generated[rev]
	st := state.New(rev)
	if old := r.recorded[rev]; old != nil {
		st = old.Clone()
	}
	r.records[rev] = st
	if !r.cfg.PerRevisionGateways() {
		comps, err := gateway.Find(r.objs[rev])
		if err != nil {
			return fmt.Errorf("%s: %w", r.abs(rev), err)
		}
		if len(comps) > 0 {
			r.note(framework.Warning, fmt.Sprintf("spec.gateways.perRevision is false, but revision %q still has its own gateways: regenerate it from istioctl output (%s) to move them to common/",
				rev, r.abs(r.sourceOf(rev))))
		}
	}
	if err := r.applyNewPatches(rev); err != nil {
		return err
	}
	r.out = append(r.out, r.objs[rev]...)
	return nil
}

func (r *run) summary(folder, src string, n int) {
	r.results = append(r.results, &framework.Result{
		Severity: framework.Info,
		Message:  fmt.Sprintf("%s: %d objects written from %s", r.abs(folder), n, src),
	})
}

func (r *run) drop(o *yaml.RNode, rev, file, msg string, sev framework.Severity) {
	res := result(sev, o, file, msg)
	res.Tags = map[string]string{DroppedTag: rev}
	r.results = append(r.results, res)
}

func (r *run) info(o *yaml.RNode, file, msg string) {
	r.results = append(r.results, result(framework.Info, o, file, msg))
}

func (r *run) warn(o *yaml.RNode, file, msg string) {
	r.results = append(r.results, result(framework.Warning, o, file, msg))
}

func (r *run) note(sev framework.Severity, msg string) {
	r.results = append(r.results, &framework.Result{Severity: sev, Message: msg})
}

func result(sev framework.Severity, o *yaml.RNode, file, msg string) *framework.Result {
	res := &framework.Result{Severity: sev, Message: msg}
	if o != nil {
		res.ResourceRef = &yaml.ResourceIdentifier{
			TypeMeta: yaml.TypeMeta{APIVersion: o.GetApiVersion(), Kind: o.GetKind()},
			NameMeta: yaml.NameMeta{Name: o.GetName(), Namespace: o.GetNamespace()},
		}
	}
	if file != "" {
		res.File = &framework.File{Path: file}
	}
	return res
}

// checkPaths makes sure no two emitted objects land in the same place.
func checkPaths(items []*yaml.RNode) error {
	seen := map[string]*yaml.RNode{}
	for _, it := range items {
		p := krm.Path(it)
		key := fmt.Sprintf("%s#%d", p, krm.Index(it))
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s: %s and %s must not be written to the same file", p, krm.Describe(prev), krm.Describe(it))
		}
		seen[key] = it
	}
	return nil
}

// sortItems orders the output by file and index, so the same input in any
// order gives the same output.
func sortItems(items []*yaml.RNode) {
	slices.SortStableFunc(items, func(a, b *yaml.RNode) int {
		if c := strings.Compare(krm.Path(a), krm.Path(b)); c != 0 {
			return c
		}
		return krm.Index(a) - krm.Index(b)
	})
}
