package pipeline

import (
	"fmt"
	"path"
	"slices"

	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/flux"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/nodeagent"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/pointer"
	"github.com/istio-gitops/istio-gitops/internal/state"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

// Config fields that render objects, as the rendered-from annotation names
// them.
const (
	fieldActive  = "spec.activeRevision"
	fieldTags    = "spec.tags"
	fieldLive    = "spec.gateways.live"
	fieldIngress = "spec.gateways.ingress"
	fieldCNI     = config.FieldNodeAgentsCNI
	fieldZtunnel = config.FieldNodeAgentsZtunnel
	fieldFlux    = "spec.flux"
	// fieldNodeAgentsOld is what trees written by an older istio-gitops
	// have on both node agents.
	fieldNodeAgentsOld = config.FieldNodeAgents
)

// agentField is the field that moves a node agent.
func agentField(a nodeagent.Agent) string {
	if a == nodeagent.CNI {
		return fieldCNI
	}
	return fieldZtunnel
}

// rendered are the files a run renders from the config.
type rendered struct {
	files []*fileset.File
}

func (r *rendered) add(f *fileset.File) { r.files = append(r.files, f) }

// render writes, from the config alone, the objects that point at one
// revision: the istiod Service and default validator (activeRevision), the
// revision tags (the default tag from activeRevision unless spec.tags has
// it), the stable gateway Services (gateways.live), each
// revision's Ingress, the node agents (nodeAgents.revision) and the Flux
// Kustomizations. Changing a pointer in the config changes these files and
// no other.
func render(t *tree, revs map[string]*revOut, o *old, res *results) (*rendered, error) {
	out := &rendered{}
	ns := t.cfg.Spec.Namespace
	active := t.cfg.Spec.ActiveRevision
	objs, err := objectsOf(t, revs[active], "Service", "ValidatingWebhookConfiguration")
	if err != nil {
		return nil, err
	}
	ptrs, err := pointer.DefaultRevision(ns, active, objs)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", fieldActive, active, err)
	}
	if err := emitRendered(t, out, ptrs, layout.Common, fieldActive, active); err != nil {
		return nil, err
	}
	if rev, ok := t.cfg.Spec.Tags[pointer.DefaultTag]; ok && rev != active {
		res.note(framework.Warning, fmt.Sprintf("spec.tags[%q] points at %q but spec.activeRevision is %q: istiod lets the default tag win, so namespaces on istio-injection=enabled use %q",
			pointer.DefaultTag, rev, active, rev))
	}
	for _, tag := range renderedTags(t.cfg) {
		rev, field := t.cfg.Spec.Tags[tag], fieldTags+"."+tag
		if _, ok := t.cfg.Spec.Tags[tag]; !ok {
			rev, field = active, fieldActive
		}
		objs, err := objectsOf(t, revs[rev], "MutatingWebhookConfiguration", "Service", "ConfigMap")
		if err != nil {
			return nil, err
		}
		tobjs, err := pointer.Tag(ns, tag, rev, objs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tagField(t.cfg, tag), err)
		}
		if err := emitRendered(t, out, tobjs, layout.Common, field, rev); err != nil {
			return nil, err
		}
	}
	gw := t.cfg.Spec.Gateways
	if gw.StableServices {
		objs, err := objectsOf(t, revs[gw.Live], gateway.Kinds...)
		if err != nil {
			return nil, err
		}
		svcs, err := gateway.StableServices(objs, gw.Live)
		if err != nil {
			return nil, fmt.Errorf("spec.gateways.stableServices: %w", err)
		}
		warnLostStableServices(o, svcs, gw.Live, res)
		if err := emitRendered(t, out, svcs, layout.Common, fieldLive, gw.Live); err != nil {
			return nil, err
		}
	}
	if gw.Ingress != nil {
		tmpl, err := gateway.IngressTemplate(t.cfg)
		if err != nil {
			return nil, err
		}
		for _, rev := range t.cfg.RevisionNames() {
			objs, err := objectsOf(t, revs[rev], gateway.Kinds...)
			if err != nil {
				return nil, err
			}
			in, err := gateway.Ingress(tmpl, rev, rev == gw.Live, gw.Ingress.LiveOnlyAnnotations, objs)
			if err != nil {
				return nil, fmt.Errorf("spec.gateways.ingress: revision %q: %w", rev, err)
			}
			// The live-only annotations move with spec.gateways.live: the
			// live revision's Ingress records that it is.
			if rev == gw.Live {
				if err := object.SetAnnotation(in, api.LiveRevisionAnnotation, rev); err != nil {
					return nil, err
				}
			}
			if err := emitRendered(t, out, []*yaml.RNode{in}, path.Join(rev, layout.Generated), fieldIngress, ""); err != nil {
				return nil, err
			}
		}
	}
	if err := renderNodeAgents(t, revs, out); err != nil {
		return nil, err
	}
	if f := t.cfg.Spec.Flux; f != nil {
		ks, err := flux.Kustomizations(*f, ns, t.cfg.RevisionNames())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldFlux, err)
		}
		folders := append([]string{layout.Common}, t.cfg.RevisionNames()...)
		for i, k := range ks {
			if err := object.SetAnnotation(k, api.RenderedFromAnnotation, fieldFlux); err != nil {
				return nil, err
			}
			file, err := placeRendered(t, k, flux.File(folders[i]))
			if err != nil {
				return nil, err
			}
			out.add(file)
		}
	}
	return out, nil
}

// renderedTags are the revision tags the run renders: those of spec.tags,
// and the default tag, which follows spec.activeRevision unless spec.tags
// names it. istiod's own default revision (istiod-default-validator) does
// not inject: namespaces labelled istio-injection=enabled and pods labelled
// sidecar.istio.io/inject=true are injected only by the default tag's
// webhooks, so without it they would silently get no sidecar.
func renderedTags(cfg *config.IstioGitOps) []string {
	tags := config.SortedKeys(cfg.Spec.Tags)
	if _, ok := cfg.Spec.Tags[pointer.DefaultTag]; !ok {
		tags = append(tags, pointer.DefaultTag)
		slices.Sort(tags)
	}
	return tags
}

// tagField names the config field that renders tag, for errors.
func tagField(cfg *config.IstioGitOps, tag string) string {
	if _, ok := cfg.Spec.Tags[tag]; ok {
		return fmt.Sprintf("spec.tags[%q]", tag)
	}
	return fmt.Sprintf("%s (the %q tag follows it while spec.tags has none)", fieldActive, tag)
}

// renderNodeAgents deploys, from common/, each node agent (istio-cni,
// ztunnel) of the revision spec.nodeAgents names for it, from the copy kept
// in that revision's folder. Once two revisions are listed and any has
// node agents, the fields must be set: moving the nodes is a step of its
// own, one for each agent (Istio's order: the control plane, then
// istio-cni, then ztunnel).
func renderNodeAgents(t *tree, revs map[string]*revOut, out *rendered) error {
	var with []string
	agentsOf := map[string]map[object.ID]nodeagent.Agent{}
	objsOf := map[string][]*yaml.RNode{}
	for _, rev := range t.cfg.RevisionNames() {
		objs, err := nodeAgentObjects(revs[rev])
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			continue
		}
		split, err := nodeagent.Split(objs)
		if err != nil {
			return fmt.Errorf("%s: %w", t.runPath(path.Join(rev, layout.Generated, nodeAgentsDir)), err)
		}
		with = append(with, rev)
		agentsOf[rev], objsOf[rev] = split, objs
	}
	if len(with) == 0 {
		return nil
	}
	for _, a := range nodeagent.Agents {
		has := func(rev string) bool {
			for _, o := range objsOf[rev] {
				if agentsOf[rev][object.IDOf(o)] == a {
					return true
				}
			}
			return false
		}
		if !slices.ContainsFunc(with, has) {
			continue
		}
		rev, field := t.cfg.NodeAgent(string(a))
		if rev == "" {
			return fmt.Errorf("%s: must be set once two revisions are listed (or, for %s alone, %s): revisions %q have ambient node agents (istio-cni, ztunnel), which run once per node and follow one revision each; add `nodeAgents: {revision: <the revision they run today>}` under spec, and move them when the nodes are to move (after the control plane, istio-cni first, then ztunnel, as Istio's upgrade guide has it: `cni: <new>`, then `ztunnel: <new>`)",
				fieldNodeAgentsOld, a, agentField(a), with)
		}
		if !has(rev) {
			return fmt.Errorf("%s: %q must be a revision with %s's node agent (as %q have): its istioctl output has none", field, rev, a, with)
		}
		var copies []*yaml.RNode
		for _, o := range objsOf[rev] {
			if agentsOf[rev][object.IDOf(o)] != a {
				continue
			}
			c := o.Copy()
			if err := layout.ClearReaderAnnotations(c); err != nil {
				return fmt.Errorf("%s: %w", object.Describe(o), err)
			}
			copies = append(copies, c)
		}
		if err := emitRendered(t, out, copies, layout.Common, agentField(a), rev); err != nil {
			return err
		}
	}
	return nil
}

// warnLostStableServices warns when switching live drops a stable Service
// (the new live revision has no such gateway): its load-balancer address
// goes with it.
func warnLostStableServices(o *old, now []*yaml.RNode, live string, res *results) {
	for _, f := range o.rendered {
		objs, err := f.Objects()
		if err != nil || len(objs) != 1 {
			continue
		}
		svc := objs[0]
		if svc.GetKind() != "Service" || svc.GetAnnotations()[api.RenderedFromAnnotation] != fieldLive {
			continue
		}
		if !slices.ContainsFunc(now, func(n *yaml.RNode) bool {
			return n.GetName() == svc.GetName() && n.GetNamespace() == svc.GetNamespace()
		}) {
			res.warn(svc, f.Path, fmt.Sprintf("stable Service deleted: the live revision %q has no such gateway, and the Service's load-balancer address goes with it", live))
		}
	}
}

// emitRendered marks rendered objects with the config field they come
// from and, for a pointer, the revision it names (points-at), guards their
// webhooks, and places them in folder.
func emitRendered(t *tree, out *rendered, objs []*yaml.RNode, folder, field, pointsAt string) error {
	for _, o := range objs {
		if err := object.SetAnnotation(o, api.RenderedFromAnnotation, field); err != nil {
			return err
		}
		if pointsAt != "" {
			if err := object.SetAnnotation(o, api.PointsAtAnnotation, pointsAt); err != nil {
				return err
			}
		}
		if t.cfg.DriftGuards() {
			if err := webhook.DriftGuards(o); err != nil {
				return err
			}
		}
		f, err := placeRendered(t, o, layout.ObjectFile(folder, o, t.cfg.Spec.Namespace))
		if err != nil {
			return err
		}
		out.add(f)
	}
	return nil
}

// placeRendered puts a rendered object alone in the file at tree path p,
// sealed with the digest of its bytes (see state.Seal).
func placeRendered(t *tree, o *yaml.RNode, p string) (*fileset.File, error) {
	full := t.runPath(p)
	data, err := state.Seal(o, disk.EncodeOwned)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", full, err)
	}
	if err := object.SetPath(o, full, 0); err != nil {
		return nil, err
	}
	return fileset.FromBytes(full, data, o), nil
}

// checkVersions checks the revisions' Istio versions against what Istio
// supports. A canary more than two minors ahead of the active revision is
// warned of. Istio supports istio-cni and ztunnel at 1.x with a control
// plane at 1.x or 1.x+1, and upgrades them after the new control plane is
// installed, istio-cni first, then ztunnel (which talks only to its own
// revision's istiod), before the tags and the default revision move: so a
// node agent may run a revision newer than the active one, but one more
// than a minor older than any listed revision is an error. ztunnel on a
// newer Istio than istio-cni (the reverse of Istio's order) is warned of.
func checkVersions(t *tree, revs map[string]*revOut, rendered *rendered, res *results) error {
	newest, active := t.cfg.Newest(), t.cfg.Spec.ActiveRevision
	nv, av := versionOf(t, revs, newest), versionOf(t, revs, active)
	if nv != nil && av != nil && nv.Major() == av.Major() && nv.Minor() > av.Minor()+2 {
		res.note(framework.Warning, fmt.Sprintf("revision %q (Istio %s) is %d minor versions ahead of the active revision %q (Istio %s): Istio supports canary upgrades across at most two minor versions",
			newest, nv, nv.Minor()-av.Minor(), active, av))
	}
	deployed := map[string]bool{}
	for _, f := range rendered.files {
		if objs, err := f.Objects(); err == nil && len(objs) == 1 {
			deployed[objs[0].GetAnnotations()[api.RenderedFromAnnotation]] = true
		}
	}
	type agentAt struct {
		agent      nodeagent.Agent
		rev, field string
		v          *version.Version
	}
	var at []agentAt
	for _, a := range nodeagent.Agents {
		if !deployed[agentField(a)] {
			continue
		}
		rev, field := t.cfg.NodeAgent(string(a))
		v := versionOf(t, revs, rev)
		if v == nil {
			continue
		}
		at = append(at, agentAt{a, rev, field, v})
		for _, other := range t.cfg.RevisionNames() {
			rv := versionOf(t, revs, other)
			if rv != nil && rv.Major() == v.Major() && rv.Minor() > v.Minor()+1 {
				return fmt.Errorf("%s: %q runs Istio %s, more than one minor older than revision %q (Istio %s): Istio supports %s at 1.x with a control plane at 1.x or 1.x+1; move it to a newer revision first",
					field, rev, v, other, rv, a)
			}
		}
	}
	if len(at) == 2 && at[0].v.LessThan(at[1].v) && at[0].agent == nodeagent.CNI {
		cni, zt := at[0], at[1]
		res.note(framework.Warning, fmt.Sprintf("%s: ztunnel runs revision %q (Istio %s), newer than istio-cni's %q (Istio %s): Istio's upgrade guide moves istio-cni first, then ztunnel; move istio-cni (%s) too",
			zt.field, zt.rev, zt.v, cni.rev, cni.v, cni.field))
	}
	return nil
}

// versionOf is a revision's Istio version: the config's, or its record's.
func versionOf(t *tree, revs map[string]*revOut, rev string) *version.Version {
	s := ""
	if c, ok := t.cfg.Revision(rev); ok && c.Version != "" {
		s = c.Version
	} else if r := revs[rev]; r != nil {
		s = r.version
	}
	v, err := version.ParseGeneric(s)
	if err != nil {
		return nil
	}
	return v
}
