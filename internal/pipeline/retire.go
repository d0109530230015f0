package pipeline

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

// checkRetirement refuses to retire a revision that Namespaces still
// select, by its name or through a tag that pointed at it and that
// spec.tags no longer lists: the Namespaces of the input (the tree, and
// beside it) and those kept elsewhere (--namespaces). Workloads that set
// istio.io/rev themselves count too. (The active revision, the live
// gateways, the node agents and the tags must name listed revisions: the
// config's validation says so.)
func checkRetirement(t *tree, o *old, opts Options, res *results) error {
	retiring := config.SortedKeys(t.retired)
	if len(retiring) == 0 {
		return nil
	}
	elsewhere := opts.Namespaces
	switch from := t.cfg.Spec.Namespaces.From; {
	case len(from) > 0 && !opts.NamespacesFrom:
		res.warn(nil, t.runPath(t.cfgFile), fmt.Sprintf("retiring %q: the Namespaces of spec.namespaces.from %q were not checked: the function sees only its input under kustomize and kpt; retire with `istio-gitops run`, which reads them",
			retiring, from))
	case len(from) == 0 && opts.Namespaces == nil:
		res.warn(nil, t.runPath(t.cfgFile), fmt.Sprintf("retiring %q: no namespace source is configured, so only the Namespaces of the input were checked; namespaces kept elsewhere (the teams' repositories) were not: list them in spec.namespaces.from",
			retiring))
	}
	now := revision.Pointers{Revisions: t.cfg.RevisionNames(), Tags: t.cfg.Spec.Tags, Active: t.cfg.Spec.ActiveRevision}
	// Tags of the tree as it was: the record's, or the tag webhooks last
	// rendered.
	before := revision.Pointers{Tags: oldTags(t, o)}
	var files []*fileset.File
	files = append(files, t.outside...)
	files = append(files, t.user...)
	files = append(files, elsewhere...)
	// A retiring folder's own workloads go with it; Namespace manifests
	// kept there still count.
	retired := map[*fileset.File]bool{}
	for _, rev := range retiring {
		for _, f := range t.retired[rev] {
			retired[f] = true
			files = append(files, f)
		}
	}
	for _, f := range files {
		objs, err := f.Objects()
		if err != nil {
			return err
		}
		// `kubectl get ns -o yaml` writes a List.
		if objs, err = object.Unwrap(objs); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		for _, o := range objs {
			if retired[f] {
				if err := checkPublishedHosts(f, o); err != nil {
					return err
				}
			}
			if err := object.CheckPodMetadata(o); err != nil {
				return fmt.Errorf("%s: %s: %w", f.Path, object.Describe(o), err)
			}
			sel, isNamespace, ok := revision.ObjectSelects(o)
			if !ok || retired[f] && !isNamespace {
				continue
			}
			what := object.Describe(o)
			if isNamespace {
				what = fmt.Sprintf("Namespace %q", o.GetName())
			}
			// A label names a revision, or a tag (as it points now, or as it
			// pointed when the tree was last written, if spec.tags dropped it).
			target := now.Resolve(sel.Value)
			if target == "" {
				target = sel.Value
				if old := before.Resolve(sel.Value); old != "" {
					target = old
				}
			}
			if slices.Contains(retiring, target) {
				via := ""
				if target != sel.Value {
					via = fmt.Sprintf(" through tag %q", sel.Value)
				}
				return fmt.Errorf("%s: %s still selects revision %q%s (label %s): revision %q must not be retired until nothing uses it; move it first (istio-gitops migrate)",
					f.Path, what, target, via, sel.Label, target)
			}
		}
	}
	return nil
}

// checkPublishedHosts refuses to retire a revision whose Ingress still
// published hosts in DNS when the tree was last written: the hosts would
// move and their load balancer go in one step, and resolvers that cached
// the old address would reach nothing until the TTL ran out.
func checkPublishedHosts(f *fileset.File, o *yaml.RNode) error {
	if o.GetKind() != "Ingress" || !isIngress(o.GetAnnotations()[api.RenderedFromAnnotation]) {
		return nil
	}
	hosts, _ := gateway.PublishedHosts(o)
	if len(hosts) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s still publishes %q in DNS (%s): its revision must not be retired in the run that moves them; move them in a run of their own (spec.gateways.ingress hosts, or gateways.live), let external-dns update the records and their TTL pass, then retire it",
		f.Path, object.Describe(o), hosts, config.HostnameAnnotation)
}

// oldTags are the tags as the tree last rendered them: what the tag
// webhooks record (or, from an older istio-gitops, the record's, or their
// labels).
func oldTags(t *tree, o *old) map[string]string {
	tags := map[string]string{}
	for field, revs := range oldPointers(t, o) {
		if tag, ok := strings.CutPrefix(field, fieldTags+"."); ok && len(revs) == 1 {
			tags[tag] = revs[0]
		}
	}
	for _, f := range o.rendered {
		objs, err := f.Objects()
		if err != nil || len(objs) != 1 {
			continue
		}
		o := objs[0]
		if o.GetKind() == "MutatingWebhookConfiguration" {
			if tag := o.GetLabels()[api.TagLabel]; tag != "" && tags[tag] == "" {
				tags[tag] = o.GetLabels()[api.RevisionLabel]
			}
		}
	}
	return tags
}

// retire reports every file of the revisions no longer listed: the run
// deletes them, and Flux prunes what they deployed.
func retire(t *tree, res *results) {
	for _, rev := range config.SortedKeys(t.retired) {
		files := sortedFiles(t.retired[rev])
		for _, f := range files {
			res.add(framework.Info, nil, f.Path, fmt.Sprintf("deleted: revision %q is no longer in spec.revisions", rev))
		}
		res.note(framework.Info, fmt.Sprintf("retired revision %q: %d files deleted from %s/ (remove any other files there with git rm)", rev, len(files), t.runPath(rev)))
	}
}
