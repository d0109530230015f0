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
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/flux"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/pointer"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

// Config fields that render objects, as the rendered-from annotation names
// them.
const (
	fieldActive     = "spec.activeRevision"
	fieldTags       = "spec.tags"
	fieldLive       = "spec.gateways.live"
	fieldIngress    = "spec.gateways.ingress"
	fieldNodeAgents = "spec.nodeAgents.revision"
	fieldFlux       = "spec.flux"
)

// rendered are the files a run renders from the config.
type rendered struct {
	files []*fileset.File
	// byField lists the run-relative paths rendered from each config
	// field (a tag's field is spec.tags.<tag>).
	byField map[string][]string
}

func (r *rendered) add(field string, f *fileset.File) {
	r.files = append(r.files, f)
	r.byField[field] = append(r.byField[field], f.Path)
}

// render writes, from the config alone, the objects that point at one
// revision: the istiod Service and default validator (activeRevision), the
// revision tags (the default tag from activeRevision unless spec.tags has
// it), the stable gateway Services (gateways.live), each
// revision's Ingress, the node agents (nodeAgents.revision) and the Flux
// Kustomizations. Changing a pointer in the config changes these files and
// no other.
func render(t *tree, revs map[string]*revOut, o *old, res *results) (*rendered, error) {
	out := &rendered{byField: map[string][]string{}}
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
	if err := emitRendered(t, out, ptrs, layout.Common, fieldActive, fieldActive); err != nil {
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
		if err := emitRendered(t, out, tobjs, layout.Common, field, field); err != nil {
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
		if err := emitRendered(t, out, svcs, layout.Common, fieldLive, fieldLive); err != nil {
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
			// The live-only annotations move with spec.gateways.live.
			if err := emitRendered(t, out, []*yaml.RNode{in}, path.Join(rev, layout.Generated), fieldIngress, fieldLive); err != nil {
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
			file, err := place(t, k, flux.File(folders[i]), true)
			if err != nil {
				return nil, err
			}
			out.add(fieldFlux, file)
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

// renderNodeAgents deploys, from common/, the node agents of the revision
// spec.nodeAgents.revision names, from the copy kept in its folder. Once
// two revisions are listed and any has node agents, the field must be set:
// moving the nodes is a step of its own.
func renderNodeAgents(t *tree, revs map[string]*revOut, out *rendered) error {
	var with []string
	for _, rev := range t.cfg.RevisionNames() {
		objs, err := nodeAgentObjects(revs[rev])
		if err != nil {
			return err
		}
		if len(objs) > 0 {
			with = append(with, rev)
		}
	}
	if len(with) == 0 {
		return nil
	}
	rev := t.cfg.Spec.NodeAgents.Revision
	if rev == "" {
		return fmt.Errorf("%s: must be set once two revisions are listed: revisions %q have ambient node agents (ztunnel, istio-cni), which run once per node and follow one revision; add `nodeAgents: {revision: <the revision they run today>}` under spec, and change it when the nodes are to move (after the control plane: Istio supports node agents one minor older than istiod, not newer)",
			fieldNodeAgents, with)
	}
	objs, err := nodeAgentObjects(revs[rev])
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return fmt.Errorf("%s: %q must be a revision with node agents (of %q): its istioctl output has none", fieldNodeAgents, rev, with)
	}
	var copies []*yaml.RNode
	for _, o := range objs {
		c := o.Copy()
		if err := layout.ClearReaderAnnotations(c); err != nil {
			return fmt.Errorf("%s: %w", object.Describe(o), err)
		}
		copies = append(copies, c)
	}
	return emitRendered(t, out, copies, layout.Common, fieldNodeAgents, fieldNodeAgents)
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
// from, guards their webhooks, and places them in folder; moves names the
// pointer that moves them.
func emitRendered(t *tree, out *rendered, objs []*yaml.RNode, folder, field, moves string) error {
	for _, o := range objs {
		if err := object.SetAnnotation(o, api.RenderedFromAnnotation, field); err != nil {
			return err
		}
		if t.cfg.DriftGuards() {
			if err := webhook.DriftGuards(o); err != nil {
				return err
			}
		}
		f, err := place(t, o, layout.ObjectFile(folder, o, t.cfg.Spec.Namespace), true)
		if err != nil {
			return err
		}
		out.add(moves, f)
	}
	return nil
}

// checkVersions checks the revisions' Istio versions against what Istio
// supports. A canary more than two minors ahead of the active revision is
// warned of. Node agents newer than the active revision, or more than one
// minor older than any listed revision, are an error: Istio supports node
// agents at 1.x with a control plane at 1.x or 1.x+1, and no canary of
// node agents.
func checkVersions(t *tree, revs map[string]*revOut, res *results) error {
	newest, active := t.cfg.Newest(), t.cfg.Spec.ActiveRevision
	nv, av := versionOf(t, revs, newest), versionOf(t, revs, active)
	if nv != nil && av != nil && nv.Major() == av.Major() && nv.Minor() > av.Minor()+2 {
		res.note(framework.Warning, fmt.Sprintf("revision %q (Istio %s) is %d minor versions ahead of the active revision %q (Istio %s): Istio supports canary upgrades across at most two minor versions",
			newest, nv, nv.Minor()-av.Minor(), active, av))
	}
	na := t.cfg.Spec.NodeAgents.Revision
	if na == "" {
		return nil
	}
	if objs, err := nodeAgentObjects(revs[na]); err != nil || len(objs) == 0 {
		return err
	}
	v := versionOf(t, revs, na)
	if v == nil {
		return nil
	}
	if av != nil && av.LessThan(v) {
		return fmt.Errorf("%s: %q runs Istio %s, newer than the active revision %q (Istio %s): node agents must not be newer than the control plane; promote %q first, then move the node agents",
			fieldNodeAgents, na, v, active, av, na)
	}
	for _, rev := range t.cfg.RevisionNames() {
		rv := versionOf(t, revs, rev)
		if rv != nil && rv.Major() == v.Major() && rv.Minor() > v.Minor()+1 {
			return fmt.Errorf("%s: %q runs Istio %s, more than one minor older than revision %q (Istio %s): Istio supports node agents one minor older than istiod at most; move the node agents to a newer revision first",
				fieldNodeAgents, na, v, rev, rv)
		}
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
