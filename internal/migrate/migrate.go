// Package migrate moves the data plane to a new control-plane revision, one
// owning team at a time: it relabels the Namespace manifests kept in Git
// (istio.io/rev: <to>), reports the workloads that choose their revision
// themselves, and writes one report per team to serve as the body of that
// team's pull request.
//
// It runs as the RevisionMigration function config (a KRM function over
// repositories of Namespace manifests) and as `istio-gitops migrate DIR`.
//
// "spec.from is the default revision" when it is the `default` tag, or when
// the input holds IstioGitOps configs and spec.from is where the default
// tag of every one of them points (spec.tags.default, else
// spec.activeRevision, which renders the default tag then). Only then are namespaces labelled
// istio-injection=enabled (which Istio injects from the default revision,
// whatever their istio.io/rev says) moved, by dropping that label.
package migrate

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

const ()

// Processor runs a RevisionMigration function config over a ResourceList.
type Processor struct {
	// Report is filled by each Process call with what that run did;
	// a nil Report is allocated.
	Report *Report
	// Meshes are IstioGitOps configs read besides the input (migrate
	// --tree): spec.to is checked against them, and they say whether
	// spec.from is the default revision, as the input's own do.
	Meshes []*yaml.RNode
}

// Process reads rl.FunctionConfig (a RevisionMigration), relabels the
// Namespaces and, when asked, the workloads of rl.Items in place, and
// appends one result per Namespace and per overriding workload. Every other
// item passes through untouched. On error, no item is modified.
func (p *Processor) Process(rl *framework.ResourceList) error {
	m, err := Load(rl.FunctionConfig)
	if err != nil {
		return err
	}
	r := &run{m: m, to: newValue(m.Spec.To), rep: &Report{
		Name: m.Metadata.Name, From: m.Spec.From, To: m.Spec.To, OwnerKey: m.Spec.OwnerKey,
		Owners: slices.Sorted(slices.Values(m.Spec.Owners)), MoveWorkloads: m.Spec.Workloads,
	}}
	if err := r.plan(rl.Items, p.Meshes); err != nil {
		return err
	}
	if err := r.apply(); err != nil {
		return err
	}
	if p.Report == nil {
		p.Report = &Report{}
	}
	*p.Report = *r.rep
	rl.Results = append(rl.Results, r.rep.Results()...)
	return nil
}

// run is one Process call: decisions first, edits after, so that an error
// found anywhere leaves every item as it was.
type run struct {
	m     *RevisionMigration
	to    value
	rep   *Report
	edits []edit
	// namespaces by name, the first in file order, for their workloads.
	namespaces map[string]*nsState
}

type nsState struct {
	entry *NamespaceEntry
	// selected: in this run, owned by one team, matched, not excluded.
	selected bool
	why      string // why not selected
	// disabled: istio-injection is present and not "enabled".
	disabled  bool
	injection string
	// labelled: istio.io/rev or istio-injection is on the namespace, which
	// then decides the revision of its pods (the injector webhooks'
	// selectors consult a pod's istio.io/rev only when neither is).
	labelled bool
}

// edit changes one item; it is applied to a copy, and the copies replace
// the items' content only once every edit succeeded.
type edit struct {
	node *yaml.RNode
	what string
	fn   func(*yaml.RNode) error
}

// item is an input object with the file it came from.
type item struct {
	node  *yaml.RNode
	file  string
	index int
	// at is its place in a List (items[2]), empty for a document of its
	// own: an edit of it is written back inside the List.
	at string
}

func (r *run) plan(nodes, meshes []*yaml.RNode) error {
	items := make([]item, 0, len(nodes))
	for _, n := range nodes {
		p, idx := fileOf(n)
		// `kubectl get ns -o yaml` writes a List: its items are read, and
		// edited, in place.
		if err := object.Items(n, func(it *yaml.RNode, at string) error {
			items = append(items, item{node: it, file: p, index: idx, at: at})
			return nil
		}); err != nil {
			return fmt.Errorf("%s: document %d: %w", p, idx, err)
		}
	}
	// File order, so that results, reports and "first namespace of a name"
	// do not depend on the order of the input.
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(strings.Compare(a.file, b.file), cmp.Compare(a.index, b.index))
	})
	var besides []item
	for _, n := range meshes {
		besides = append(besides, item{node: n, file: object.Path(n)})
	}
	if err := r.checkMeshes(append(besides, items...)); err != nil {
		return err
	}
	r.namespaces = map[string]*nsState{}
	for _, it := range items {
		if it.node.GetKind() != "Namespace" || it.node.GetApiVersion() != "v1" {
			continue
		}
		if err := r.namespace(it); err != nil {
			return err
		}
	}
	if err := r.checkOwners(); err != nil {
		return err
	}
	for _, it := range items {
		meta, ok := object.PodMetadataPath(it.node.GetKind())
		if !ok {
			continue
		}
		if err := r.workload(it, meta); err != nil {
			return err
		}
	}
	return nil
}

// checkOwners refuses a team of spec.owners that owns no namespace of the
// input: a misspelled team would move nothing and pass for done.
func (r *run) checkOwners() error {
	owned := map[string]bool{}
	for _, e := range r.rep.Namespaces {
		if e.Owner != "" {
			owned[e.Owner] = true
		}
	}
	for i, o := range r.m.Spec.Owners {
		if !owned[o] {
			return fmt.Errorf("%s %q: spec.owners[%d]: %q must own a namespace of the input (%s label or annotation); the owners found are %q",
				Kind, r.m.Metadata.Name, i, o, r.m.Spec.OwnerKey, config.SortedKeys(owned))
		}
	}
	return nil
}

// checkMeshes checks spec.to against every IstioGitOps config in the input
// and decides whether spec.from is the default revision.
func (r *run) checkMeshes(items []item) error {
	s := &r.m.Spec
	var meshes []string
	allActive := true
	for _, it := range items {
		if it.node.GetApiVersion() != api.APIVersion || it.node.GetKind() != config.Kind {
			continue
		}
		cfg, err := config.Load(it.node)
		if err != nil {
			return fmt.Errorf("%s %q: checking spec.to against %s: %w", Kind, r.m.Metadata.Name, it.file, err)
		}
		known := append(cfg.RevisionNames(), config.SortedKeys(cfg.Spec.Tags)...)
		if !slices.Contains(known, s.To) {
			return fmt.Errorf("%s %q: spec.to: %q must be one of the revisions or tags %q of IstioGitOps %q in %s",
				Kind, r.m.Metadata.Name, s.To, known, cfg.Metadata.Name, it.file)
		}
		// The default tag injects istio-injection=enabled: spec.tags
		// points it, else it follows spec.activeRevision.
		def, ok := cfg.Spec.Tags[DefaultTag]
		if !ok {
			def = cfg.Spec.ActiveRevision
		}
		allActive = allActive && (def == s.From || (ok && s.From == DefaultTag))
		meshes = append(meshes, fmt.Sprintf("IstioGitOps %q in %s", cfg.Metadata.Name, it.file))
	}
	r.rep.FromIsDefault = s.From == DefaultTag || (len(meshes) > 0 && allActive)
	if len(meshes) == 0 {
		r.rep.Notes = append(r.rep.Notes, Note{Severity: framework.Info,
			Message: fmt.Sprintf("%q could not be checked against the mesh: the input holds no IstioGitOps config", s.To)})
		return nil
	}
	r.rep.Notes = append(r.rep.Notes, Note{Severity: framework.Info,
		Message: fmt.Sprintf("%q is a revision or tag of %s", s.To, strings.Join(meshes, ", "))})
	return nil
}

// namespace decides what happens to one Namespace and queues its edit.
func (r *run) namespace(it item) error {
	s := &r.m.Spec
	n := it.node
	what := fmt.Sprintf("%s in %s", object.Describe(n), it.file)
	labels, err := stringMap(n, yaml.MetadataField, yaml.LabelsField)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	annotations, err := stringMap(n, yaml.MetadataField, yaml.AnnotationsField)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	e := &NamespaceEntry{Name: n.GetName(), File: it.file, Index: it.index, Item: it.at, Severity: framework.Info}
	owner, hasLabel := labels[s.OwnerKey]
	annOwner, hasAnn := annotations[s.OwnerKey]
	if !hasLabel {
		owner = annOwner
	}
	e.Owner = owner
	e.InRun = len(s.Owners) == 0 || slices.Contains(s.Owners, owner)
	rev, hasRev := labels[api.RevisionLabel]
	inj, hasInj := labels[api.InjectionLabel]
	e.Before = injectionLabels(labels)

	excluded := slices.Contains(s.Exclude, e.Name)
	matches, err := r.m.Selects(labels)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	conflict := hasLabel && hasAnn && annOwner != owner
	// st.why says why the namespace is not part of the run: its workloads
	// stay, and so does the namespace itself.
	st := &nsState{entry: e, disabled: hasInj && inj != "enabled", injection: inj, labelled: hasInj || hasRev}
	switch {
	case excluded:
		st.why = "listed in spec.exclude"
	case !e.InRun && owner == "":
		st.why = fmt.Sprintf("no team owns it (no %q label or annotation) and spec.owners is set", s.OwnerKey)
	case !e.InRun:
		st.why = fmt.Sprintf("team %q is not in this run", owner)
	case !matches:
		st.why = "does not match spec.selector"
	case owner == "":
		st.why = fmt.Sprintf("no team owns it: it has no %q label or annotation", s.OwnerKey)
	case conflict:
		st.why = fmt.Sprintf("label %s=%q and annotation %s=%q name different teams", s.OwnerKey, owner, s.OwnerKey, annOwner)
	}
	st.selected = st.why == ""

	move := false
	switch {
	case st.why != "" && (excluded || !e.InRun || !matches):
		e.Why = st.why
	case hasInj && inj == "disabled":
		e.Why = "istio-injection=disabled is never touched"
	case hasInj && inj != "enabled":
		e.Why = fmt.Sprintf("istio-injection=%q is neither enabled nor disabled, and Istio's revision webhooks skip a namespace that has the label at all: fix it by hand", inj)
		e.Severity = framework.Warning
	case hasInj && !r.rep.FromIsDefault:
		e.Why = fmt.Sprintf("istio-injection=enabled overrides istio.io/rev and selects the default tag, which is not known to inject from %q (spec.from is not \"default\", and no IstioGitOps config in the input points its default tag at it: spec.tags.default, else spec.activeRevision)", s.From)
		e.Severity = framework.Warning
	case hasInj:
		move = true
	case hasRev && rev == s.To:
		e.Why = fmt.Sprintf("already on %q", s.To)
	case hasRev && rev == s.From:
		move = true
	case hasRev:
		e.Why = fmt.Sprintf("on %q, not %q", rev, s.From)
	default:
		e.Why = "not in the mesh: no istio.io/rev or istio-injection label"
	}
	// A namespace no team (or two teams) owns can go in no team's pull
	// request: say so only where it matters, when it would move.
	if move && !st.selected {
		move = false
		e.Why = st.why
		e.Severity = framework.Warning
	}
	if move {
		e.Moved = true
		e.After = api.RevisionLabel + "=" + s.To
		r.edits = append(r.edits, edit{node: n, what: what, fn: func(c *yaml.RNode) error { return setNamespaceRevision(c, r.to) }})
	}
	r.rep.Namespaces = append(r.rep.Namespaces, e)
	if _, seen := r.namespaces[e.Name]; !seen {
		r.namespaces[e.Name] = st
	}
	return nil
}

// workload reports a pod template that chooses its own revision or opts
// in or out of injection, and queues its edit when spec.workloads is set.
func (r *run) workload(it item, meta []string) error {
	s := &r.m.Spec
	n := it.node
	what := fmt.Sprintf("%s in %s", object.Describe(n), it.file)
	labels, err := stringMap(n, append(slices.Clone(meta), "labels")...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	annotations, err := stringMap(n, append(slices.Clone(meta), "annotations")...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	rev, hasRev := labels[api.RevisionLabel]
	inj, hasInj := labels[api.InjectLabel]
	injAnn, hasInjAnn := annotations[api.InjectLabel]
	if !hasRev && !hasInj && !hasInjAnn {
		return nil
	}
	field := strings.Join(meta, ".")
	var overrides []string
	if hasRev {
		overrides = append(overrides, fmt.Sprintf("%s=%s", api.RevisionLabel, rev))
	}
	if hasInj {
		overrides = append(overrides, fmt.Sprintf("%s=%s", api.InjectLabel, inj))
	}
	if hasInjAnn {
		overrides = append(overrides, fmt.Sprintf("%s=%s (annotation)", api.InjectLabel, injAnn))
	}
	w := &WorkloadEntry{Kind: n.GetKind(), APIVersion: n.GetApiVersion(), Namespace: n.GetNamespace(), Name: n.GetName(),
		File: it.file, Index: it.index, Item: it.at, Field: field, Override: strings.Join(overrides, ", "), Severity: framework.Info}
	ns := r.namespaces[w.Namespace]
	if ns != nil {
		w.Owner, w.InRun = ns.entry.Owner, ns.entry.InRun
	}
	pinnedFrom := hasRev && rev == s.From
	switch {
	case ns == nil:
		w.InRun = len(s.Owners) == 0
		if w.Namespace == "" {
			w.Note = "it has no metadata.namespace, so no team owns it here"
		} else {
			w.Note = fmt.Sprintf("its Namespace %q is not in the input, so no team owns it here", w.Namespace)
		}
		if pinnedFrom {
			w.Note += fmt.Sprintf(": left on %q", s.From)
			w.Severity = framework.Warning
		}
	case !ns.selected:
		w.Note = fmt.Sprintf("Namespace %s is not part of this run: %s", w.Namespace, ns.why)
	case ns.disabled:
		w.Note = fmt.Sprintf("Namespace %s has istio-injection=%s: never touched", w.Namespace, ns.injection)
	case pinnedFrom && s.Workloads:
		w.Moved = true
		w.Note = fmt.Sprintf("pod template %s %s -> %s", api.RevisionLabel, s.From, s.To)
		path := append(slices.Clone(meta), "labels", api.RevisionLabel)
		r.edits = append(r.edits, edit{node: n, what: what, fn: func(c *yaml.RNode) error { return setScalar(c, r.to, path...) }})
	case pinnedFrom && ns.labelled:
		w.Note = fmt.Sprintf("Istio ignores a pod's %s while its Namespace has a revision label, so this one is stale: set spec.workloads (--workloads) to keep it in step", api.RevisionLabel)
	case pinnedFrom:
		w.Note = fmt.Sprintf("its Namespace has no revision label, so these pods stay on %q after a restart: set spec.workloads (--workloads) to move them, or edit the label", s.From)
		w.Severity = framework.Warning
	default:
		w.Note = "left as it is"
	}
	r.rep.Workloads = append(r.rep.Workloads, w)
	return nil
}

// apply runs every queued edit on a copy of its item, then swaps the copies
// in: an error leaves every item unmodified.
func (r *run) apply() error {
	copies := make([]*yaml.RNode, len(r.edits))
	for i, e := range r.edits {
		c := e.node.Copy()
		if err := e.fn(c); err != nil {
			return fmt.Errorf("%s: %w", e.what, err)
		}
		copies[i] = c
	}
	for i, e := range r.edits {
		e.node.SetYNode(copies[i].YNode())
	}
	return nil
}

// setNamespaceRevision puts a Namespace on revision to. An istio-injection
// label (only "enabled" reaches here) is dropped, as it would override the
// revision; when the namespace had no istio.io/rev, the istio-injection
// entry is renamed in place so the labels keep their order and comments.
func setNamespaceRevision(n *yaml.RNode, to value) error {
	labels, err := lookup(n, yaml.MetadataField, yaml.LabelsField)
	if err != nil {
		return err
	}
	if labels == nil || labels.YNode().Kind != yaml.MappingNode {
		return fmt.Errorf("metadata.labels: must be a mapping")
	}
	if labels.Field(api.RevisionLabel) == nil {
		inj := labels.Field(api.InjectionLabel)
		if inj == nil {
			return fmt.Errorf("metadata.labels: must hold %s or %s", api.RevisionLabel, api.InjectionLabel)
		}
		inj.Key.YNode().Value = api.RevisionLabel
		to.set(inj.Value.YNode())
		return nil
	}
	if err := labels.PipeE(yaml.Clear(api.InjectionLabel)); err != nil {
		return fmt.Errorf("metadata.labels.%s: %w", api.InjectionLabel, err)
	}
	return setScalar(n, to, yaml.MetadataField, yaml.LabelsField, api.RevisionLabel)
}

// setScalar sets an existing string field, keeping its style and comments.
func setScalar(n *yaml.RNode, v value, path ...string) error {
	f, err := lookup(n, path...)
	if err != nil {
		return err
	}
	if f == nil || f.YNode().Kind != yaml.ScalarNode {
		return fmt.Errorf("%s: must be a string", strings.Join(path, "."))
	}
	v.set(f.YNode())
	return nil
}

// value is a label value to write, with whether a plain scalar of it would
// read as a number or boolean to Kubernetes' YAML 1.1 parser (decided once:
// the check parses YAML).
type value struct {
	s     string
	quote bool
}

func newValue(s string) value { return value{s: s, quote: yaml.IsValueNonString(s)} }

func (v value) set(y *yaml.Node) {
	y.Value = v.s
	y.Tag = yaml.NodeTagString
	if y.Style == 0 && v.quote {
		y.Style = yaml.DoubleQuotedStyle
	}
}

// stringMap reads the string mapping at path, which may be absent.
func stringMap(n *yaml.RNode, path ...string) (map[string]string, error) {
	f, err := lookup(n, path...)
	if err != nil || f == nil {
		return nil, err
	}
	y := f.YNode()
	if y.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: must be a mapping of strings", strings.Join(path, "."))
	}
	m := make(map[string]string, len(y.Content)/2)
	for i := 0; i+1 < len(y.Content); i += 2 {
		k, v := y.Content[i], y.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s[%q]: must be a string", strings.Join(path, "."), k.Value)
		}
		m[k.Value] = v.Value
	}
	return m, nil
}

// lookup is yaml.Lookup for a path of mapping fields, without its
// bookkeeping (it runs for every object of large trees): nil when a field
// is absent or null, an error naming the field when a parent on the path is
// not a mapping.
func lookup(n *yaml.RNode, path ...string) (*yaml.RNode, error) {
	for i, f := range path {
		if n.YNode().Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: must be a mapping", strings.Join(path[:i], "."))
		}
		m := n.Field(f)
		if m == nil || m.Value.IsNil() {
			return nil, nil
		}
		n = m.Value
	}
	return n, nil
}

// fileOf reads the file annotations the reader set, current or legacy.
func fileOf(n *yaml.RNode) (string, int) {
	a := n.GetAnnotations(kioutil.PathAnnotation, kioutil.LegacyPathAnnotation, kioutil.IndexAnnotation, kioutil.LegacyIndexAnnotation)
	p, ok := a[kioutil.PathAnnotation]
	if !ok {
		p = a[kioutil.LegacyPathAnnotation]
	}
	i, ok := a[kioutil.IndexAnnotation]
	if !ok {
		i = a[kioutil.LegacyIndexAnnotation]
	}
	idx, _ := strconv.Atoi(i)
	if p == "" {
		return "", idx
	}
	return path.Clean(strings.ReplaceAll(p, `\`, "/")), idx
}

// injectionLabels renders the labels that choose a namespace's revision.
func injectionLabels(labels map[string]string) string {
	var out []string
	for _, k := range []string{api.InjectionLabel, api.RevisionLabel} {
		if v, ok := labels[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return strings.Join(out, ", ")
}
