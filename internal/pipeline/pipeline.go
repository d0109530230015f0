// Package pipeline runs an IstioGitOps config over a tree: it ingests each
// revision's fresh istioctl output, classifies and lays out every object,
// and writes the kustomizations, so that kustomize and Flux build each
// folder as it is.
//
// The stages, in order (each a kio.Filter or a function over RNodes):
//
//	index        sort the items by owner (tree.go)
//	check        istioctl.Check: kinds, names, identities
//	envoyfilter  drop EnvoyFilters pinned to another Istio version
//	classify     revision folder or common/ (classify.go)
//	label        istio.io/rev on the revision's objects
//	record       digests of the written files (state)
//	kustomize    kustomization.yaml per folder (kustomization)
package pipeline

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/envoyfilter"
	"github.com/istio-gitops/istio-gitops/internal/istioctl"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/kustomization"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// RevisionLabel is the label Istio selects a control plane by.
const RevisionLabel = "istio.io/rev"

// Processor runs IstioGitOps configs; it is a framework.ResourceListProcessor.
type Processor struct{}

// Process implements framework.ResourceListProcessor. On error the items
// are left as they were.
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
	// out are the items to emit, besides the untouched ones.
	out []*yaml.RNode
	// folders are the tree folders written, with their objects' files.
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
	r := &run{tree: t, regenerated: map[string]bool{}}
	if err := r.execute(); err != nil {
		return nil, r.results, err
	}
	return r.out, r.results, nil
}

func (r *run) execute() error {
	newest := r.cfg.Newest()
	for i, rev := range r.cfg.Spec.Revisions {
		if _, ok := r.sources[rev.Name]; ok {
			if err := r.regenerate(rev, rev.Name == newest); err != nil {
				return err
			}
			continue
		}
		if len(r.generated[rev.Name]) == 0 {
			return fmt.Errorf("spec.revisions[%d]: revision %q must have its istioctl output at %s or generated files from an earlier run",
				i, rev.Name, r.abs(rev.Source))
		}
		r.out = append(r.out, r.generated[rev.Name]...)
		if st := r.states[rev.Name]; st != nil {
			r.out = append(r.out, st)
		}
	}
	if !r.regenerated[newest] {
		r.out = append(r.out, r.common...)
	}
	for _, rev := range config.SortedKeys(r.stale) {
		r.results = append(r.results, &framework.Result{
			Severity: framework.Warning,
			Message:  fmt.Sprintf("folder %s is not a listed revision; it is left as it is", r.abs(rev)),
		})
		r.out = append(r.out, r.stale[rev]...)
	}
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

// regenerate lays out a revision's fresh istioctl output, replacing its
// generated files and, for the newest revision, the common ones.
func (r *run) regenerate(rev config.Revision, newest bool) error {
	src := r.abs(rev.Source)
	objs := r.sources[rev.Name]
	if err := istioctl.Check(src, objs); err != nil {
		return err
	}
	version := rev.Version
	if version == "" {
		version, _ = istioctl.Version(objs)
	}
	ef := &envoyfilter.Filter{Version: version}
	objs, err := ef.Filter(objs)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	for _, d := range ef.Dropped {
		r.drop(d.Object, rev.Name, src, "dropped: "+d.Reason)
	}

	var revObjs, commonObjs []*yaml.RNode
	for _, o := range objs {
		if istioctl.HasRevision(o.GetName(), rev.Name) {
			revObjs = append(revObjs, o)
			continue
		}
		if !newest {
			r.drop(o, rev.Name, src, fmt.Sprintf("not written: common/ is taken from the newest revision %q", r.cfg.Newest()))
			continue
		}
		commonObjs = append(commonObjs, o)
	}
	for _, o := range revObjs {
		if _, ok := o.GetLabels()[RevisionLabel]; ok {
			continue
		}
		if err := krm.SetLabel(o, RevisionLabel, rev.Name); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
	}

	genDir := path.Join(rev.Name, layout.Generated)
	written, err := r.place(revObjs, genDir, true)
	if err != nil {
		return err
	}
	st := state.New(rev.Name)
	st.Spec.Version = version
	for p, d := range written {
		st.Spec.Files[strings.TrimPrefix(p, rev.Name+"/")] = d
	}
	if err := r.reportReplaced(rev.Name, written); err != nil {
		return err
	}
	stNode, err := st.Node()
	if err != nil {
		return err
	}
	if err := krm.SetPath(stNode, r.abs(path.Join(genDir, layout.StateFile))); err != nil {
		return err
	}
	r.out = append(r.out, stNode)
	r.summary(genDir, src, len(revObjs))

	if newest {
		if _, err := r.place(commonObjs, layout.Common, false); err != nil {
			return err
		}
		r.summary(layout.Common, src, len(commonObjs))
	}
	r.regenerated[rev.Name] = true
	return nil
}

// place gives each object its file under folder and queues it for output.
// With digests, it returns the digest of each file, by tree path.
func (r *run) place(objs []*yaml.RNode, folder string, digests bool) (map[string]string, error) {
	paths := make([]string, len(objs))
	for i, o := range objs {
		paths[i] = layout.ObjectFile(folder, o, r.cfg.Spec.Namespace)
		if err := krm.SetPath(o, r.abs(paths[i])); err != nil {
			return nil, err
		}
		// Files the function owns are always laid out alike, whichever
		// orchestrator runs it and whatever the source's indentation.
		if _, err := o.Pipe(yaml.ClearAnnotation(kioutil.SeqIndentAnnotation)); err != nil {
			return nil, err
		}
		r.out = append(r.out, o)
	}
	if !digests {
		return nil, nil
	}
	sums, err := digestAll(objs, func(i int) string { return r.abs(paths[i]) })
	if err != nil {
		return nil, err
	}
	written := make(map[string]string, len(objs))
	for i, p := range paths {
		written[p] = sums[i]
	}
	return written, nil
}

// digestAll digests the file of each object, on every core.
func digestAll(objs []*yaml.RNode, name func(i int) string) ([]string, error) {
	sums := make([]string, len(objs))
	err := krm.Parallel(len(objs), func(i int) error {
		b, err := layout.FileBytes(objs[i])
		if err != nil {
			return fmt.Errorf("%s: %w", name(i), err)
		}
		sums[i] = state.Digest(b)
		return nil
	})
	return sums, err
}

// reportReplaced names the generated files a regeneration replaced that
// had been edited by hand since the last run, and those it removed.
func (r *run) reportReplaced(rev string, written map[string]string) error {
	var recorded map[string]string
	if n := r.states[rev]; n != nil {
		st, err := state.Read(n)
		if err != nil {
			return err
		}
		recorded = st.Spec.Files
	}
	old := r.generated[rev]
	sums, err := digestAll(old, func(i int) string { return krm.Path(old[i]) })
	if err != nil {
		return err
	}
	for i, o := range old {
		p, _ := r.rel(o)
		d := sums[i]
		want, known := recorded[strings.TrimPrefix(p, rev+"/")]
		edited := known && want != d
		_, kept := written[p]
		switch {
		case edited && kept:
			r.warn(o, r.abs(p), "replaced a file edited by hand since the last run; keep changes as GitPatches in "+rev+"/patches/")
		case edited:
			r.warn(o, r.abs(p), "removed a file edited by hand since the last run: the new istioctl output no longer has it")
		case !kept:
			r.info(o, r.abs(p), "removed: the new istioctl output no longer has it")
		}
	}
	return nil
}

func (r *run) summary(folder, src string, n int) {
	r.results = append(r.results, &framework.Result{
		Severity: framework.Info,
		Message:  fmt.Sprintf("%s: %d objects written from %s", r.abs(folder), n, src),
	})
}

// DroppedTag tags the result of each source object a run does not write;
// its value is the revision whose output held it.
const DroppedTag = "dropped-from"

func (r *run) drop(o *yaml.RNode, rev, file, msg string) {
	res := result(framework.Info, o, file, msg)
	res.Tags = map[string]string{DroppedTag: rev}
	r.results = append(r.results, res)
}

func (r *run) info(o *yaml.RNode, file, msg string) {
	r.results = append(r.results, result(framework.Info, o, file, msg))
}

func (r *run) warn(o *yaml.RNode, file, msg string) {
	r.results = append(r.results, result(framework.Warning, o, file, msg))
}

func result(sev framework.Severity, o *yaml.RNode, file, msg string) *framework.Result {
	return &framework.Result{
		Severity: sev,
		Message:  msg,
		ResourceRef: &yaml.ResourceIdentifier{
			TypeMeta: yaml.TypeMeta{APIVersion: o.GetApiVersion(), Kind: o.GetKind()},
			NameMeta: yaml.NameMeta{Name: o.GetName(), Namespace: o.GetNamespace()},
		},
		File: &framework.File{Path: file},
	}
}

// kustomizations writes one per folder: the root lists common/ and each
// revision folder; common/ and each revision list their object files and
// the user's deployable files.
func (r *run) kustomizations() error {
	files := map[string][]string{}
	add := func(folder, file string) {
		files[folder] = append(files[folder], file)
	}
	revs := r.cfg.RevisionNames()
	isRev := map[string]bool{}
	for _, rev := range revs {
		isRev[rev] = true
	}
	for _, o := range r.out {
		p, _ := r.rel(o)
		if !deployable(o) {
			continue
		}
		top, rest, nested := strings.Cut(p, "/")
		switch {
		case !nested:
			add("", p)
		case top == layout.Common || isRev[top]:
			add(top, rest)
		}
	}
	root := []string{layout.Common}
	root = append(root, revs...)
	root = append(root, uniqSorted(files[""])...)
	for _, f := range append([]string{""}, root[:len(revs)+1]...) {
		res := root
		if f != "" {
			res = uniqSorted(files[f])
		}
		k, err := kustomization.New(res)
		if err != nil {
			return err
		}
		if err := krm.SetPath(k, r.abs(path.Join(f, layout.Kustomization))); err != nil {
			return err
		}
		r.out = append(r.out, k)
	}
	return nil
}

// deployable reports whether a kustomization lists the object: not the
// function's configs and records, not the user's IstioOperator, not
// local-config.
func deployable(o *yaml.RNode) bool {
	group, _, _ := strings.Cut(o.GetApiVersion(), "/")
	switch {
	case krm.IsLocalConfig(o):
		return false
	case group == config.Group, group == "install.istio.io", group == "kpt.dev":
		return false
	case kustomization.Is(o):
		return false
	}
	return true
}

func uniqSorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
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
