package pipeline

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/argocd"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/flux"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/istioctl"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/nodeagent"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/state"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

// removalLimit is how many objects a regeneration may remove from a
// revision's folder, or from common/, before the output is taken for a
// truncated one: 1.30 and 1.31 have the same objects, and dropping the
// egress gateway (a profile change) removes five.
const removalLimit = 3

// revOut is a listed revision after the run.
type revOut struct {
	name        string
	version     string
	regenerated bool
	// patched names the patches this run applied to the revision kept.
	patched []string
	// files are the revision's generated files after the run, node agents
	// included, by path relative to the revision folder.
	files map[string]*fileset.File
	// record is the revision's record after the run; recordFile the record
	// as read, when it did not change.
	record     *state.State
	recordFile *fileset.File
	// applied are the records of patches applied since the revision was
	// generated, after the run, by patch name.
	applied map[string]*fileset.File
	// carried are the patches carried forward into the revision's patches/.
	carried []*fileset.File
	// common are the common/ files the revision's output gave, by path
	// relative to common/: set when the newest revision is regenerated.
	common map[string]*fileset.File
}

// revisions regenerates each listed revision that has fresh output and
// keeps the others, oldest first.
func revisions(t *tree, o *old, opts Options, res *results) (map[string]*revOut, error) {
	out := map[string]*revOut{}
	for i, rev := range t.cfg.Spec.Revisions {
		var (
			r   *revOut
			err error
		)
		if _, fresh := t.sources[rev.Name]; fresh {
			r, err = regenerate(t, rev, opts, res)
		} else {
			r, err = keep(t, rev.Name, res)
			if _, listed := t.cfg.Revision(rev.PatchesFrom); rev.PatchesFrom != "" && !listed {
				res.warn(nil, t.runPath(t.cfgFile), fmt.Sprintf("spec.revisions[%d].patchesFrom: %q is no longer listed; its patches were carried when %q was generated (they are in its patches/): remove patchesFrom before %q is generated again",
					i, rev.PatchesFrom, rev.Name, rev.Name))
			}
			if rev.AllowRemovals {
				res.warn(nil, t.runPath(t.cfgFile), fmt.Sprintf("spec.revisions[%d].allowRemovals is set but revision %q was not regenerated: it applies to its next regeneration only; remove it once that is done", i, rev.Name))
			}
		}
		if err != nil {
			return nil, err
		}
		out[rev.Name] = r
	}
	return out, nil
}

// gen lays out one regeneration's objects.
type gen struct {
	t   *tree
	rev string
	// keepNodes keeps the YAML of every object with its file; otherwise
	// only the objects later stages read are kept (see streamed).
	keepNodes bool
	files     map[string]*fileset.File
	common    map[string]*fileset.File
	// by names the object of each file, for collisions (a name, not the
	// object: a streamed object's YAML must not stay in memory).
	by map[string]string
	// pending are objects placed and not yet laid out: they are laid out
	// a batch at a time, concurrently, while the next batch is read (see
	// handOff and flush); encoding is the batch being laid out.
	pending  []placed
	encoding *encodeBatch
	// later are the objects laid out as they were read whose folder waits
	// for the node agents (see byReference), in the output's order.
	later []*deferred
}

// deferred is an object laid out as it was read, placed once the whole
// output is: its decision as it stands, and if a node agent claims it.
type deferred struct {
	id          object.ID
	apiVersion  string
	asIs, agent Decision
	// asIsPath and agentPath are its file, as it stands and if a node
	// agent claims it: tree paths ("" when it would be dropped).
	asIsPath, agentPath string
	data                []byte
	err                 error
	// obj is the object, kept when the gen keeps nodes.
	obj *yaml.RNode
}

// ref names the object in a result.
func (e *deferred) ref() *yaml.ResourceIdentifier {
	return &yaml.ResourceIdentifier{
		TypeMeta: yaml.TypeMeta{APIVersion: e.apiVersion, Kind: e.id.Kind},
		NameMeta: yaml.NameMeta{Name: e.id.Name, Namespace: e.id.Namespace},
	}
}

// encodeBatch is a batch of objects being laid out in the background.
type encodeBatch struct {
	ps   []placed
	done chan struct{}
	// panicked is a panic of the batch's goroutine, raised again by wait
	// in the run's goroutine, where the command's last-resort recover is.
	panicked any
}

// placed is an object on its way to its file.
type placed struct {
	o     *yaml.RNode
	full  string // its file, as the run names it
	rel   string // its file, relative to the folder files holds
	files map[string]*fileset.File
	keep  bool // keep the object's YAML with the file
	// later, when set, takes the laid-out object instead of files.
	later *deferred
	data  []byte
	err   error
}

// flushAt is how many objects wait to be laid out together: enough to
// keep every core busy, few enough that streamed objects do not pile up.
const flushAt = 8

// regenerate lays out a revision's fresh istioctl output, replacing its
// generated files and, for the newest revision, the common ones.
func regenerate(t *tree, rev config.Revision, opts Options, res *results) (*revOut, error) {
	src := t.sources[rev.Name]
	ns := t.cfg.Spec.Namespace
	g := &gen{t: t, rev: rev.Name, keepNodes: !src.OnDisk(), files: map[string]*fileset.File{}, common: map[string]*fileset.File{}, by: map[string]string{}}
	facts := Facts{Revision: rev.Name, Version: rev.Version, Newest: t.cfg.Newest(), PerRevisionGateways: t.cfg.PerRevisionGateways(),
		Namespace: ns, Active: t.cfg.Spec.ActiveRevision, Tags: t.cfg.Spec.Tags}
	classify := func(o *yaml.RNode, f Facts) (Decision, error) {
		d, err := Classify(o, f)
		if err != nil {
			return d, fmt.Errorf("%s: %w", src.Path, err)
		}
		return d, nil
	}
	act := func(o *yaml.RNode, d Decision, keep bool) error {
		if d.Destination == Dropped {
			res.drop(refOf(o), rev.Name, src.Path, d.Reason, dropSeverity(d))
			return nil
		}
		return g.finish(o, d.Destination, keep)
	}
	// Objects no stage looks across for: decided as they are read, unless
	// a node agent may claim them (byReference) and that would change
	// where they go.
	stream := func(o *yaml.RNode) error {
		d, err := classify(o, facts)
		if err != nil || !byReference(o) {
			return cmp.Or(err, act(o, d, g.keepNodes))
		}
		f := facts
		f.NodeAgent = true
		agent, err := classify(o, f)
		if err != nil || agent == d {
			return cmp.Or(err, act(o, d, g.keepNodes))
		}
		return g.postpone(o, d, agent)
	}
	batch, err := ingest(src, rev.Name, stream)
	if err != nil {
		return nil, err
	}
	if err := g.flush(); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(batch, func(o *yaml.RNode) bool { return istioctl.IsIstiod(o, rev.Name, ns) }) {
		return nil, fmt.Errorf("%s: must hold revision %q's control plane (Deployment %s/istiod-%s), as every istioctl profile and Istio's istiod chart do: is the output truncated, for another revision (--set revision=%s), or for another namespace?",
			src.Path, rev.Name, ns, rev.Name, rev.Name)
	}
	if facts.Version == "" {
		facts.Version, _ = istioctl.Version(batch)
	}
	comps, err := gateway.Find(batch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path, err)
	}
	agents, err := nodeagent.Find(batch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path, err)
	}
	if err := g.placeLater(agents, func(e *deferred, d Decision) {
		res.drop(e.ref(), rev.Name, src.Path, d.Reason, dropSeverity(d))
	}); err != nil {
		return nil, err
	}
	var (
		kept  []*yaml.RNode
		dests = map[*yaml.RNode]Decision{}
	)
	for _, o := range batch {
		f := facts
		f.Gateway = gateway.IsGatewayObject(comps, o)
		f.NodeAgent = nodeagent.Has(agents, o)
		d, err := Classify(o, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.Path, err)
		}
		if d.Destination == Dropped {
			if err := act(o, d, true); err != nil {
				return nil, err
			}
			continue
		}
		kept = append(kept, o)
		dests[o] = d
	}
	if t.cfg.PerRevisionGateways() {
		if err := gateway.PerRevision(kept, rev.Name); err != nil {
			return nil, fmt.Errorf("%s: %w", src.Path, err)
		}
	}
	for _, o := range kept {
		if err := g.finish(o, dests[o].Destination, true); err != nil {
			return nil, err
		}
	}
	if err := g.flush(); err != nil {
		return nil, err
	}

	out := &revOut{name: rev.Name, version: facts.Version, regenerated: true, files: g.files, applied: map[string]*fileset.File{}}
	st := state.New(api.KindRevisionState, rev.Name)
	st.Spec.Version = facts.Version
	guards, perRev := t.cfg.DriftGuards(), t.cfg.PerRevisionGateways()
	st.Spec.DriftGuards, st.Spec.PerRevisionGateways = &guards, &perRev
	out.record = st
	if err := applyPatches(t, rev, out, res); err != nil {
		return nil, err
	}
	if err := recordFiles(st, out.files); err != nil {
		return nil, err
	}
	old := t.revisions[rev.Name]
	allow := rev.AllowRemovals || opts.AllowRemovals
	if err := guardRemovals(t, old, out.files, src, allow, fmt.Sprintf("spec.revisions[%d].allowRemovals", indexOf(t.cfg, rev.Name))); err != nil {
		return nil, err
	}
	if err := reportReplaced(t, old, out.files, res); err != nil {
		return nil, err
	}
	if rev.Name == t.cfg.Newest() {
		out.common = g.common
	}
	return out, nil
}

// dropSeverity is how a drop is reported.
func dropSeverity(d Decision) framework.Severity {
	if d.Warn {
		return framework.Warning
	}
	return framework.Info
}

// folder is where objects of a destination go: the folder, the files it
// holds and what their paths are relative to.
func (g *gen) folder(dest Destination) (folder string, files map[string]*fileset.File, base string) {
	switch dest {
	case ToRevision:
		return path.Join(g.rev, layout.Generated), g.files, g.rev
	case ToNodeAgents:
		return path.Join(g.rev, layout.Generated, nodeAgentsDir), g.files, g.rev
	}
	return layout.Common, g.common, layout.Common
}

// prepare applies what an object's destination asks: the revision label
// and the drift guards in the revision's folder, no pruning of CRDs in
// common/.
func (g *gen) prepare(o *yaml.RNode, dest Destination) error {
	switch dest {
	case ToRevision:
		if _, ok := o.GetLabels()[api.RevisionLabel]; !ok {
			if err := object.SetLabel(o, api.RevisionLabel, g.rev); err != nil {
				return err
			}
		}
		if g.t.cfg.DriftGuards() {
			return webhook.DriftGuards(o)
		}
	case ToCommon:
		// Removing a folder must never delete every Istio custom resource
		// in the cluster with the CRDs (Flux's prune, Argo CD's delete).
		return KeepCRD(o)
	}
	return nil
}

// claim takes the file at tree path p for an object, refusing a second.
func (g *gen) claim(p, what string) error {
	if prev, dup := g.by[p]; dup {
		return fmt.Errorf("%s: %s and %s must not be written to the same file", g.t.runPath(p), prev, what)
	}
	g.by[p] = what
	return nil
}

// finish applies what an object's destination asks, places it in its
// file and lays the file out.
func (g *gen) finish(o *yaml.RNode, dest Destination, keepNode bool) error {
	if err := g.prepare(o, dest); err != nil {
		return err
	}
	folder, files, base := g.folder(dest)
	p := layout.ObjectFile(folder, o, g.t.cfg.Spec.Namespace)
	if err := g.claim(p, object.Describe(o)); err != nil {
		return err
	}
	if err := disk.StripReaderAnnotations(o); err != nil {
		return fmt.Errorf("%s: %w", g.t.runPath(p), err)
	}
	return g.queue(placed{o: o, full: g.t.runPath(p), rel: strings.TrimPrefix(p, base+"/"), files: files, keep: keepNode})
}

// queue lays an object out with the next batch.
func (g *gen) queue(p placed) error {
	g.pending = append(g.pending, p)
	if len(g.pending) >= flushAt {
		return g.handOff()
	}
	return nil
}

// postpone lays an object out now and leaves its folder to placeLater: as
// it stands it goes where asIs says (common/, or nowhere), and where agent
// says (node-agents/) if a node agent claims it. Neither changes its
// bytes, which prepare would: it is no CRD (see byReference), and a name
// of the revision's sends it to the revision's folder either way.
func (g *gen) postpone(o *yaml.RNode, asIs, agent Decision) error {
	e := &deferred{id: object.IDOf(o), apiVersion: o.GetApiVersion(), asIs: asIs, agent: agent}
	for _, at := range []struct {
		d    Decision
		path *string
	}{{asIs, &e.asIsPath}, {agent, &e.agentPath}} {
		if at.d.Destination != Dropped {
			folder, _, _ := g.folder(at.d.Destination)
			*at.path = layout.ObjectFile(folder, o, g.t.cfg.Spec.Namespace)
		}
	}
	if err := disk.StripReaderAnnotations(o); err != nil {
		return fmt.Errorf("%s: %w", object.Describe(o), err)
	}
	g.later = append(g.later, e)
	return g.queue(placed{o: o, later: e, keep: g.keepNodes})
}

// placeLater puts each deferred object in its folder, now that agents
// says which belong to a node agent, in the output's order; drop reports
// those that go nowhere. The objects must be laid out (flush).
func (g *gen) placeLater(agents nodeagent.Set, drop func(*deferred, Decision)) error {
	for _, e := range g.later {
		d, p := e.asIs, e.asIsPath
		if agents[e.id] {
			d, p = e.agent, e.agentPath
		}
		if d.Destination == Dropped {
			drop(e, d)
			continue
		}
		if e.err != nil {
			return fmt.Errorf("%s: %w", g.t.runPath(p), e.err)
		}
		if err := g.claim(p, e.id.String()); err != nil {
			return err
		}
		_, files, base := g.folder(d.Destination)
		full := g.t.runPath(p)
		if e.obj != nil {
			if err := object.SetPath(e.obj, full, 0); err != nil {
				return err
			}
		}
		files[strings.TrimPrefix(p, base+"/")] = fileset.FromBytes(full, e.data, e.obj)
	}
	g.later = nil
	return nil
}

// handOff puts the batch laid out in the background, if any, in its files
// and starts laying out the pending batch in the background.
func (g *gen) handOff() error {
	if err := g.wait(); err != nil {
		return err
	}
	b := &encodeBatch{ps: g.pending, done: make(chan struct{})}
	g.pending, g.encoding = make([]placed, 0, flushAt), b
	go func() {
		defer close(b.done)
		defer func() { b.panicked = recover() }()
		encodeAll(b.ps)
	}()
	return nil
}

// wait puts the batch laid out in the background, if any, in its files.
func (g *gen) wait() error {
	b := g.encoding
	if b == nil {
		return nil
	}
	g.encoding = nil
	<-b.done
	if b.panicked != nil {
		panic(b.panicked)
	}
	return store(b.ps)
}

// flush lays out every object placed so far and puts each in its file; it
// must run before the files are read.
func (g *gen) flush() error {
	if err := g.wait(); err != nil {
		return err
	}
	encodeAll(g.pending)
	err := store(g.pending)
	g.pending = g.pending[:0]
	return err
}

// store puts laid-out objects in their files, in their order.
func store(ps []placed) error {
	for i := range ps {
		p := &ps[i]
		if e := p.later; e != nil {
			e.data, e.err = p.data, p.err
			if p.keep {
				e.obj = p.o
			}
			*p = placed{}
			continue
		}
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.full, p.err)
		}
		if err := object.SetPath(p.o, p.full, 0); err != nil {
			return err
		}
		var o *yaml.RNode
		if p.keep {
			o = p.o
		}
		p.files[p.rel] = fileset.FromBytes(p.full, p.data, o)
		*p = placed{}
	}
	return nil
}

// encodeAll encodes the objects of ps on every core: encoding only reads
// them.
func encodeAll(ps []placed) {
	_ = disk.Parallel(len(ps), func(i int) error {
		ps[i].data, ps[i].err = disk.Encode(ps[i].o)
		return nil
	})
}

// KeepCRD marks a CustomResourceDefinition never to be pruned or deleted,
// whether Flux or Argo CD deploys the tree: removing a folder must never
// delete every Istio custom resource in the cluster with the CRDs. Other
// kinds are left alone.
func KeepCRD(o *yaml.RNode) error {
	if err := flux.DisablePrune(o); err != nil {
		return err
	}
	return argocd.DisableDelete(o)
}

// place puts an object alone in the file at tree path p, laid out as every
// orchestrator lays out the function's files, whatever the source's
// indentation.
func place(t *tree, o *yaml.RNode, p string, keepNode bool) (*fileset.File, error) {
	full := t.runPath(p)
	// The object is the run's own: laid out without a copy, its reader
	// annotations (the source's file, seqindent) dropped, then placed.
	data, err := disk.EncodeOwned(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", full, err)
	}
	if err := object.SetPath(o, full, 0); err != nil {
		return nil, err
	}
	if !keepNode {
		o = nil
	}
	return fileset.FromBytes(full, data, o), nil
}

// recordFiles sets a record's file digests to files'.
func recordFiles(st *state.State, files map[string]*fileset.File) error {
	st.Spec.Files = map[string]string{}
	for _, p := range config.SortedKeys(files) {
		d, err := files[p].Digest()
		if err != nil {
			return err
		}
		st.Spec.Files[p] = d
	}
	return nil
}

// guardRemovals refuses an output that would remove more than a few of a
// folder's objects (a truncated istioctl output looks like that), unless
// the user allowed it.
func guardRemovals(t *tree, old *folder, now map[string]*fileset.File, src *fileset.File, allow bool, field string) error {
	removed := removedFiles(old, now)
	if len(removed) <= removalLimit || allow {
		return nil
	}
	total := len(before(old))
	return fmt.Errorf("%s would remove %d of the %d objects of %s (%s): is the output truncated or made with other flags? Generate it again; if the removals are meant (a profile change), set %s: true for this run (or run istio-gitops run --allow-removals), and remove it afterwards",
		src.Path, len(removed), total, t.runPath(old.name)+"/", listed(removed, ", "), field)
}

// before are a folder's generated files as the last run left them: its
// record's, or the files themselves without one.
func before(old *folder) []string {
	if want := expected(old); len(want) > 0 {
		return config.SortedKeys(want)
	}
	return old.paths()
}

func removedFiles(old *folder, now map[string]*fileset.File) []string {
	var removed []string
	for _, p := range before(old) {
		if _, kept := now[p]; !kept {
			removed = append(removed, path.Join(old.name, p))
		}
	}
	return removed
}

// reportReplaced warns of each generated file a regeneration removed, and
// of each it replaced that had been edited by hand since the last run.
func reportReplaced(t *tree, old *folder, now map[string]*fileset.File, res *results) error {
	want := expected(old)
	for _, p := range old.paths() {
		f := old.files[p]
		_, kept := now[p]
		edited := false
		if d, known := want[p]; known {
			got, err := f.Digest()
			if err != nil {
				return err
			}
			edited = got != d
		}
		switch {
		case edited && kept && old.name == layout.Common:
			res.warn(nil, f.Path, "replaced a file edited by hand since the last run: common/'s generated files are the function's")
		case edited && kept:
			res.warn(nil, f.Path, fmt.Sprintf("replaced a file edited by hand since the last run; keep changes as GitPatches in %s/patches/", t.runPath(old.name)))
		case edited:
			res.warn(nil, f.Path, "removed a file edited by hand since the last run: the new istioctl output no longer has it")
		case !kept:
			res.warn(nil, f.Path, "removed: the new istioctl output no longer has it")
		}
	}
	for _, p := range before(old) {
		if _, there := old.files[p]; !there {
			if _, kept := now[p]; kept {
				res.warn(nil, t.runPath(path.Join(old.name, p)), "restored: it was missing from the tree")
			}
		}
	}
	return nil
}

// keep carries a revision that is not regenerated: its files stay as they
// are, but patches added since the last run are applied.
func keep(t *tree, rev string, res *results) (*revOut, error) {
	fo := t.revisions[rev]
	out := &revOut{name: rev, files: fo.files, record: fo.record, recordFile: fo.recordFile, applied: map[string]*fileset.File{}}
	for name, f := range fo.appliedFiles {
		out.applied[name] = f
	}
	if fo.record != nil {
		out.version = fo.record.Spec.Version
		pending(t, rev, fo.record, res)
	}
	if !t.cfg.PerRevisionGateways() && (fo.record == nil || fo.record.Spec.PerRevisionGateways == nil) {
		objs, err := objectsOf(out, gateway.Kinds...)
		if err != nil {
			return nil, err
		}
		comps, err := gateway.Find(objs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.runPath(rev), err)
		}
		if len(comps) > 0 {
			res.warn(nil, "", fmt.Sprintf("spec.gateways.perRevision is false, but revision %q still has its own gateways: regenerate it from istioctl output (%s) to move them to common/",
				rev, t.runPath(sourceOf(t.cfg, rev))))
		}
	}
	if err := applyNewPatches(t, rev, out, res); err != nil {
		return nil, err
	}
	return out, nil
}

// pending warns, every run until the revision is generated again, of a
// setting its files do not follow yet.
func pending(t *tree, rev string, st *state.State, res *results) {
	src := t.runPath(sourceOf(t.cfg, rev))
	for _, s := range []struct {
		field string
		was   *bool
		now   bool
	}{
		{"spec.webhooks.driftGuards", st.Spec.DriftGuards, t.cfg.DriftGuards()},
		{"spec.gateways.perRevision", st.Spec.PerRevisionGateways, t.cfg.PerRevisionGateways()},
	} {
		if s.was != nil && *s.was != s.now {
			res.warn(nil, t.runPath(recordPath(t.revisions[rev])), fmt.Sprintf("%s is %t, but revision %q was generated with %t: the change takes effect when it is generated again (write %s and run)",
				s.field, s.now, rev, *s.was, src))
		}
	}
}

// objectsOf parses the generated files of a revision whose kind is one of
// kinds (its folder, lower-cased), node agents apart: the stages that read
// a kept revision read only these.
func objectsOf(r *revOut, kinds ...string) ([]*yaml.RNode, error) {
	return generatedWhere(r, func(kind, _ string) bool {
		return slices.ContainsFunc(kinds, func(k string) bool { return strings.ToLower(k) == kind })
	})
}

// tagSources are what a revision tag is rendered from: the revision's
// injector webhooks and Services, and its values ConfigMap (values-<rev>),
// not its other ConfigMaps: the sidecar injector's is the largest file of
// a revision, and a run with three tags parsed it three times.
func tagSources(r *revOut) ([]*yaml.RNode, error) {
	return generatedWhere(r, func(kind, file string) bool {
		if kind == "configmap" {
			return strings.HasPrefix(file, "values-")
		}
		return kind == "mutatingwebhookconfiguration" || kind == "service"
	})
}

// generatedWhere parses the files of a revision's generated/ (node agents
// apart) whose kind folder and file name keep accepts.
func generatedWhere(r *revOut, keep func(kind, file string) bool) ([]*yaml.RNode, error) {
	return parseFiles(r, func(p string) bool {
		rest, ok := strings.CutPrefix(p, layout.Generated+"/")
		if !ok {
			return false
		}
		kind, _, file, ok := layout.Parse(rest)
		return ok && keep(kind, file)
	})
}

// nodeAgentObjects are a revision's node agents, as kept in its folder.
func nodeAgentObjects(r *revOut) ([]*yaml.RNode, error) {
	prefix := path.Join(layout.Generated, nodeAgentsDir) + "/"
	return parseFiles(r, func(p string) bool { return strings.HasPrefix(p, prefix) })
}

// parseFiles parses the revision's files whose path keep accepts, in path
// order.
func parseFiles(r *revOut, keep func(path string) bool) ([]*yaml.RNode, error) {
	var objs []*yaml.RNode
	for _, p := range config.SortedKeys(r.files) {
		if !keep(p) {
			continue
		}
		o, err := r.files[p].Objects()
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	return objs, nil
}
