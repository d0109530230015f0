package pipeline

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/argocd"
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
	fieldActive    = config.FieldActiveRevision
	fieldTags      = config.FieldTags
	fieldLive      = config.FieldLive
	fieldIngress   = config.FieldIngress
	fieldIngresses = config.FieldIngresses
	fieldCNI       = config.FieldNodeAgentsCNI
	fieldZtunnel   = config.FieldNodeAgentsZtunnel
	fieldFlux      = "spec.flux"
	fieldArgoCD    = "spec.argocd"
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
// revision's Ingress, the node agents (nodeAgents.revision), the Flux
// Kustomizations and the Argo CD Applications. Changing a pointer in the
// config changes these files and
// no other.
func render(t *tree, revs map[string]*revOut, o *old, res *results) (*rendered, error) {
	out := &rendered{}
	ns := t.cfg.Spec.Namespace
	active := t.cfg.Spec.ActiveRevision
	objs, err := objectsOf(revs[active], "Service", "ValidatingWebhookConfiguration")
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
		objs, err := tagSources(revs[rev])
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
		objs, err := objectsOf(revs[gw.Live], gateway.Kinds...)
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
	if err := renderIngresses(t, revs, out, res); err != nil {
		return nil, err
	}
	if err := warnSharedServices(t, revs, res); err != nil {
		return nil, err
	}
	if err := renderNodeAgents(t, revs, out); err != nil {
		return nil, err
	}
	if f := t.cfg.Spec.Flux; f != nil {
		ks, err := flux.Kustomizations(*f, ns, t.cfg.RevisionNames())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldFlux, err)
		}
		files := []string{flux.File(layout.Common)}
		for _, r := range t.cfg.RevisionNames() {
			files = append(files, flux.File(r))
		}
		if err := emitDeployers(t, out, ks, files, fieldFlux); err != nil {
			return nil, err
		}
	}
	if a := t.cfg.Spec.ArgoCD; a != nil {
		apps, err := argocd.Applications(*a, ns, t.cfg.RevisionNames())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldArgoCD, err)
		}
		files := []string{path.Join(argocd.Folder, argocd.AppOfAppsFile), argocd.File(layout.Common)}
		for _, r := range t.cfg.RevisionNames() {
			files = append(files, argocd.File(r))
		}
		if err := emitDeployers(t, out, apps, files, fieldArgoCD); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// renderIngresses renders each Ingress template once per revision, each
// revision's Ingress with its own values and, when the template moves DNS
// host by host, the hosts it publishes. Values that a load balancer holds
// alone (a static address's name) and that two Ingresses, or two
// revisions' gateway Services, share are warned of.
func renderIngresses(t *tree, revs map[string]*revOut, out *rendered, res *results) error {
	gw := t.cfg.Spec.Gateways
	specs := t.cfg.Ingresses()
	if len(specs) == 0 {
		return nil
	}
	var ingresses []*yaml.RNode
	fieldOf := map[*yaml.RNode]string{}
	templates := make([]*yaml.RNode, len(specs))
	for i, s := range specs {
		tmpl, err := s.TemplateNode(t.cfg)
		if err != nil {
			return err
		}
		templates[i] = tmpl
	}
	for _, rev := range t.cfg.RevisionNames() {
		objs, err := objectsOf(revs[rev], gateway.Kinds...)
		if err != nil {
			return err
		}
		for i, s := range specs {
			in, err := gateway.Ingress(templates[i], rev, gateway.IngressOptions{
				Live:     rev == gw.Live,
				LiveOnly: s.LiveOnlyAnnotations,
				Values:   s.PerRevision[rev],
				DNS:      s.ManagesDNS(),
				Hosts:    s.HostsOf(rev, gw.Live),
			}, objs)
			if err != nil {
				return fmt.Errorf("%s: revision %q: %w", s.Field, rev, err)
			}
			ingresses = append(ingresses, in)
			fieldOf[in] = s.Field
			// The live-only annotations and the hosts that follow live
			// move with spec.gateways.live: the live revision's Ingress
			// records that it is (the hosts record themselves, in the
			// hostname annotation).
			if rev == gw.Live {
				if err := object.SetAnnotation(in, api.LiveRevisionAnnotation, rev); err != nil {
					return err
				}
			}
			if err := emitRendered(t, out, []*yaml.RNode{in}, path.Join(rev, layout.Generated), s.RenderedFrom, ""); err != nil {
				return err
			}
		}
	}
	for _, s := range specs {
		warnDNSLiveOnly(s, res)
	}
	for _, sv := range gateway.SharedValues(ingresses) {
		var fields []string
		for _, o := range sv.Objects {
			fields = append(fields, fieldOf[o]+".perRevision.<revision>.annotations")
		}
		slices.Sort(fields)
		res.note(framework.Warning, fmt.Sprintf("%s all have the annotation %s: %q, which a load balancer holds alone: their load balancers fight over it; give each its own value in %s",
			describeAll(sv.Objects), sv.Key, sv.Value, strings.Join(slices.Compact(fields), " and ")))
	}
	return nil
}

// warnSharedServices warns of values that a load balancer holds alone (an
// Elastic IP, a public IP's name) which two revisions' gateway Services
// share: copied from IstioOperators alike, they make the revisions' load
// balancers fight over it.
func warnSharedServices(t *tree, revs map[string]*revOut, res *results) error {
	if !t.cfg.PerRevisionGateways() || len(t.cfg.Spec.Revisions) < 2 {
		return nil
	}
	var services []*yaml.RNode
	for _, rev := range t.cfg.RevisionNames() {
		objs, err := objectsOf(revs[rev], gateway.Kinds...)
		if err != nil {
			return err
		}
		comps, err := gateway.Find(objs)
		if err != nil {
			return err
		}
		for _, c := range comps {
			services = append(services, c.Services()...)
		}
	}
	for _, sv := range gateway.SharedValues(services) {
		res.note(framework.Warning, fmt.Sprintf("%s all have the annotation %s: %q, which a load balancer holds alone: their load balancers fight over it; give each revision its own value in its IstioOperator (the gateway's k8s.serviceAnnotations) and generate it again",
			describeAll(sv.Objects), sv.Key, sv.Value))
	}
	return nil
}

// warnDNSLiveOnly warns of external-dns annotations of a template that
// moves DNS host by host which live-only patterns keep off the other
// revisions' Ingresses: the hosts those publish would go without them
// (a TTL, a target, a provider's setting).
func warnDNSLiveOnly(s config.IngressSpec, res *results) {
	if !s.ManagesDNS() {
		return
	}
	for _, k := range s.TemplateAnnotations() {
		if config.IsDNSAnnotation(k) && gateway.MatchesAny(k, s.LiveOnlyAnnotations) {
			res.note(framework.Warning, fmt.Sprintf("%s.template: the annotation %s is live-only (liveOnlyAnnotations), so the hosts that %s.hosts puts on other revisions are published without it; drop it from liveOnlyAnnotations, or set it per revision",
				s.Field, k, s.Field))
		}
	}
}

// describeAll names objects for a message: "Ingress x, Ingress y".
func describeAll(objs []*yaml.RNode) string {
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, object.Describe(o))
	}
	return strings.Join(names, ", ")
}

// emitDeployers adds the objects that deploy the tree (Flux
// Kustomizations, Argo CD Applications), each to its file, annotated as
// rendered from field.
func emitDeployers(t *tree, out *rendered, objs []*yaml.RNode, files []string, field string) error {
	for i, o := range objs {
		if err := object.SetAnnotation(o, api.RenderedFromAnnotation, field); err != nil {
			return err
		}
		file, err := placeRendered(t, o, files[i])
		if err != nil {
			return err
		}
		out.add(file)
	}
	return nil
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
