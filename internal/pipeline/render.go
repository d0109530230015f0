package pipeline

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/flux"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/pointer"
)

// render writes, from the config alone, the objects that point at one
// revision: the istiod Service and default validator (activeRevision), the
// revision tags, the stable gateway Services (gateways.live), each
// revision's Ingress and the Flux Kustomizations. Changing a pointer in the
// config changes these files and no other.
func (r *run) render() error {
	ns := r.cfg.Spec.Namespace
	active := r.cfg.Spec.ActiveRevision
	objs, err := pointer.DefaultRevision(ns, active, r.objs[active])
	if err != nil {
		return fmt.Errorf("spec.activeRevision %q: %w", active, err)
	}
	if err := r.emitRendered(objs, layout.Common, "spec.activeRevision"); err != nil {
		return err
	}
	if rev, ok := r.cfg.Spec.Tags[pointer.DefaultTag]; ok && rev != active {
		r.note(framework.Warning, fmt.Sprintf("spec.tags[%q] points at %q but spec.activeRevision is %q: istiod lets the default tag win, so namespaces on istio-injection=enabled use %q",
			pointer.DefaultTag, rev, active, rev))
	}
	for _, tag := range config.SortedKeys(r.cfg.Spec.Tags) {
		rev := r.cfg.Spec.Tags[tag]
		objs, err := pointer.Tag(ns, tag, rev, r.objs[rev])
		if err != nil {
			return fmt.Errorf("spec.tags[%q]: %w", tag, err)
		}
		if err := r.emitRendered(objs, layout.Common, "spec.tags."+tag); err != nil {
			return err
		}
	}
	gw := r.cfg.Spec.Gateways
	if gw.StableServices {
		objs, err := gateway.StableServices(r.objs[gw.Live], gw.Live)
		if err != nil {
			return fmt.Errorf("spec.gateways.stableServices: %w", err)
		}
		r.warnLostStableServices(objs)
		if err := r.emitRendered(objs, layout.Common, "spec.gateways.live"); err != nil {
			return err
		}
	}
	if gw.Ingress != nil {
		tmpl, err := gateway.IngressTemplate(r.cfg)
		if err != nil {
			return err
		}
		for _, rev := range r.cfg.RevisionNames() {
			in, err := gateway.Ingress(tmpl, rev, rev == gw.Live, gw.Ingress.LiveOnlyAnnotations, r.objs[rev])
			if err != nil {
				return fmt.Errorf("spec.gateways.ingress: revision %q: %w", rev, err)
			}
			if err := r.emitRendered([]*yaml.RNode{in}, path.Join(rev, layout.Generated), "spec.gateways.ingress"); err != nil {
				return err
			}
		}
	}
	if f := r.cfg.Spec.Flux; f != nil {
		ks, err := flux.Kustomizations(*f, ns, r.cfg.RevisionNames())
		if err != nil {
			return fmt.Errorf("spec.flux: %w", err)
		}
		folders := append([]string{layout.Common}, r.cfg.RevisionNames()...)
		for i, k := range ks {
			if err := krm.SetAnnotation(k, api.RenderedFromAnnotation, "spec.flux"); err != nil {
				return err
			}
			if err := krm.SetPath(k, r.abs(flux.File(folders[i]))); err != nil {
				return err
			}
			r.out = append(r.out, k)
		}
	}
	return nil
}

// warnLostStableServices warns when switching live drops a stable Service
// (the new live revision has no such gateway): its load-balancer address
// goes with it.
func (r *run) warnLostStableServices(now []*yaml.RNode) {
	for _, o := range r.rendered {
		if o.GetKind() != "Service" || o.GetAnnotations()[api.RenderedFromAnnotation] != "spec.gateways.live" {
			continue
		}
		if !slices.ContainsFunc(now, func(n *yaml.RNode) bool { return n.GetName() == o.GetName() && n.GetNamespace() == o.GetNamespace() }) {
			r.warn(o, krm.Path(o), fmt.Sprintf("stable Service deleted: the live revision %q has no such gateway, and the Service's load-balancer address goes with it", r.cfg.Spec.Gateways.Live))
		}
	}
}

// emitRendered marks rendered objects with the field they come from,
// guards their webhooks, and places them in folder.
func (r *run) emitRendered(objs []*yaml.RNode, folder, field string) error {
	for _, o := range objs {
		if err := krm.SetAnnotation(o, api.RenderedFromAnnotation, field); err != nil {
			return err
		}
	}
	if err := r.guard(objs); err != nil {
		return err
	}
	if err := r.place(objs, folder); err != nil {
		return err
	}
	r.out = append(r.out, objs...)
	return nil
}

// checkSkew warns when the newest revision is more than two minor versions
// ahead of the active one: Istio supports canary upgrades across at most
// two minors.
func (r *run) checkSkew() {
	newest, active := r.cfg.Newest(), r.cfg.Spec.ActiveRevision
	nv, av := r.version(newest), r.version(active)
	nm, ok1 := minor(nv)
	am, ok2 := minor(av)
	if ok1 && ok2 && nm.major == am.major && nm.minor-am.minor > 2 {
		r.note(framework.Warning, fmt.Sprintf("revision %q (Istio %s) is %d minor versions ahead of the active revision %q (Istio %s): Istio supports canary upgrades across at most two minor versions",
			newest, nv, nm.minor-am.minor, active, av))
	}
}

func (r *run) version(rev string) string {
	if c, ok := r.cfg.Revision(rev); ok && c.Version != "" {
		return c.Version
	}
	if st := r.records[rev]; st != nil {
		return st.Spec.Version
	}
	return ""
}

type majorMinor struct{ major, minor int }

func minor(v string) (majorMinor, bool) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return majorMinor{}, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	return majorMinor{ma, mi}, err1 == nil && err2 == nil
}
