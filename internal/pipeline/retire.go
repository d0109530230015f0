package pipeline

import (
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/krm"
)

// checkRetirement refuses to retire a revision that Namespaces of the input
// still select, by its name or through a tag that pointed at it and that
// spec.tags no longer lists. (The active revision, the live gateways and
// the tags must name listed revisions: the config's validation says so.)
func (r *run) checkRetirement() error {
	retiring := config.SortedKeys(r.retired)
	if len(retiring) == 0 {
		return nil
	}
	// Tags of the tree as it was: the tag webhooks last rendered.
	oldTags := map[string]string{}
	for _, o := range r.rendered {
		if o.GetKind() == "MutatingWebhookConfiguration" {
			if tag := o.GetLabels()[api.TagLabel]; tag != "" {
				oldTags[tag] = o.GetLabels()[api.RevisionLabel]
			}
		}
	}
	for _, o := range r.allItems() {
		if o.GetKind() != "Namespace" || o.GetApiVersion() != "v1" {
			continue
		}
		sel := o.GetLabels()[api.RevisionLabel]
		if sel == "" {
			continue
		}
		target := sel
		if _, still := r.cfg.Spec.Tags[sel]; !still && oldTags[sel] != "" {
			target = oldTags[sel]
		}
		if slices.Contains(retiring, target) {
			via := ""
			if target != sel {
				via = fmt.Sprintf(" through tag %q", sel)
			}
			return fmt.Errorf("%s: Namespace %q still selects revision %q%s (label %s=%s): revision %q must not be retired until no Namespace uses it; move the namespace first (istio-gitops migrate)",
				krm.Path(o), o.GetName(), target, via, api.RevisionLabel, sel, target)
		}
	}
	return nil
}

func (r *run) allItems() []*yaml.RNode {
	var all []*yaml.RNode
	all = append(all, r.outside...)
	all = append(all, r.user...)
	for _, rev := range config.SortedKeys(r.retired) {
		all = append(all, r.retired[rev]...)
	}
	return all
}

// retire drops every file of the revisions no longer listed, so the run
// deletes them and Flux prunes what they deployed; each file is reported.
func (r *run) retire() {
	for _, rev := range config.SortedKeys(r.retired) {
		var files []string
		for _, o := range r.retired[rev] {
			files = append(files, krm.Path(o))
		}
		slices.Sort(files)
		files = slices.Compact(files)
		for _, f := range files {
			r.results = append(r.results, &framework.Result{
				Severity: framework.Info,
				Message:  fmt.Sprintf("deleted: revision %q is no longer in spec.revisions", rev),
				File:     &framework.File{Path: f},
			})
		}
		r.note(framework.Info, fmt.Sprintf("retired revision %q: %d files deleted from %s/ (remove any other files there with git rm)", rev, len(files), r.abs(rev)))
	}
}
