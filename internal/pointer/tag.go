package pointer

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

// Tag renders revision tag tag pointing at revision rev, from rev's own
// objects, as Istio renders it (istio-discovery chart templates
// revision-tags-mwc.yaml and revision-tags-svc.yaml, which both
// `istioctl tag generate` and values.revisionTags use):
//
//   - MutatingWebhookConfiguration istio-revision-tag-<tag> (suffixed
//     -<namespace> outside istio-system, as the chart does): the injector
//     webhooks of istio-sidecar-injector-<rev>, selecting namespaces and pods
//     labelled istio.io/rev=<tag>; the default tag adds the webhooks for
//     istio-injection=enabled and sidecar.istio.io/inject=true, and the
//     auto-injection one when the revision enables
//     sidecarInjectorWebhook.enableNamespacesByDefault;
//   - Service <namespace>/istiod-revision-tag-<tag>: istiod-<rev>'s Service
//     labelled istio.io/tag=<tag>, which istiod's tag watcher reads.
//
// Fields are in istioctl's order (sorted keys).
func Tag(namespace, tag, rev string, objs []*yaml.RNode) ([]*yaml.RNode, error) {
	if err := checkLabel("namespace", namespace); err != nil {
		return nil, err
	}
	if err := checkLabel("tag", tag); err != nil {
		return nil, err
	}
	if err := checkLabel("revision", rev); err != nil {
		return nil, err
	}
	if tag == rev {
		return nil, fmt.Errorf("tag %q must not be named like the revision it points at", tag)
	}
	injector, err := mustFind(objs, webhook.KindMutating, "", "istio-sidecar-injector-"+rev+namespaceSuffix(namespace), rev,
		"tag "+tag+"'s webhooks are rendered from it")
	if err != nil {
		return nil, err
	}
	svc, err := revisionService(namespace, rev, objs, "tag "+tag+"'s Service is rendered from it")
	if err != nil {
		return nil, err
	}
	auto, err := enableNamespacesByDefault(namespace, rev, objs)
	if err != nil {
		return nil, err
	}
	mwc, err := tagWebhook(namespace, tag, rev, injector, auto)
	if err != nil {
		return nil, err
	}
	s, err := tagService(namespace, tag, svc)
	if err != nil {
		return nil, err
	}
	return []*yaml.RNode{mwc, s}, nil
}

// tagWebhook follows istioctl's tag generator (istioctl/pkg/tag/generate.go):
// the revision's first injector webhook gives the webhook core (its
// clientConfig: service, path, port or URL, caBundle; its
// reinvocationPolicy, rules, failurePolicy), the configuration's labels
// and annotations carry over with istio.io/tag added, and the selectors are
// those of revision-tags-mwc.yaml.
func tagWebhook(namespace, tag, rev string, injector *yaml.RNode, auto bool) (*yaml.RNode, error) {
	whs, err := webhook.List(injector)
	if err != nil {
		return nil, err
	}
	var core *yaml.RNode
	for _, w := range whs {
		if strings.HasSuffix(object.Scalar(w, "name"), webhook.InjectorSuffix) {
			core = w
			break
		}
	}
	if core == nil {
		return nil, fmt.Errorf("%s: a webhook named *%s must be there: tag %s's webhooks are rendered from it", object.Describe(injector), webhook.InjectorSuffix, tag)
	}

	labels := withLabel(injector.GetLabels(), api.TagLabel, tag)
	labels[api.RevisionLabel] = rev
	name := TagWebhookPrefix + tag + namespaceSuffix(namespace)
	mwc, err := newObject(admissionV1, webhook.KindMutating, "", name, injector, labels)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", webhook.KindMutating, name, err)
	}
	list := yaml.NewListRNode()
	for _, sel := range tagSelectors(tag, auto) {
		w := core.Copy()
		for _, f := range []struct {
			name  string
			value *yaml.RNode
		}{
			{"name", yaml.NewStringRNode(sel.prefix + webhook.InjectorSuffix)},
			{"namespaceSelector", sel.namespace},
			{"objectSelector", sel.object},
		} {
			if err := w.PipeE(yaml.SetField(f.name, f.value)); err != nil {
				return nil, fmt.Errorf("%s: webhook %s%s: %w", name, sel.prefix, webhook.InjectorSuffix, err)
			}
		}
		list.YNode().Content = append(list.YNode().Content, w.YNode())
	}
	if err := mwc.PipeE(yaml.SetField("webhooks", list)); err != nil {
		return nil, err
	}
	sortFields(mwc.YNode())
	return mwc, nil
}

type selectors struct {
	prefix            string
	namespace, object *yaml.RNode
}

// tagSelectors are the webhooks of revision-tags-mwc.yaml, in its order.
func tagSelectors(tag string, auto bool) []selectors {
	out := []selectors{
		// A namespace labelled with the tag, unless a pod opts out.
		{"rev.namespace.",
			matchExpressions(req(api.RevisionLabel, "In", tag), req(api.InjectionLabel, "DoesNotExist")),
			matchExpressions(req(api.InjectLabel, "NotIn", "false"))},
		// A pod labelled with the tag in an unlabelled namespace.
		{"rev.object.",
			matchExpressions(req(api.RevisionLabel, "DoesNotExist"), req(api.InjectionLabel, "DoesNotExist")),
			matchExpressions(req(api.InjectLabel, "NotIn", "false"), req(api.RevisionLabel, "In", tag))},
	}
	if tag != DefaultTag {
		return out
	}
	// The default tag also answers the selectors of an unrevisioned install.
	out = append(out,
		selectors{"namespace.",
			matchExpressions(req(api.InjectionLabel, "In", "enabled")),
			matchExpressions(req(api.InjectLabel, "NotIn", "false"))},
		selectors{"object.",
			matchExpressions(req(api.InjectionLabel, "DoesNotExist"), req(api.RevisionLabel, "DoesNotExist")),
			matchExpressions(req(api.InjectLabel, "In", "true"), req(api.RevisionLabel, "DoesNotExist"))},
	)
	if auto {
		out = append(out, selectors{"auto.",
			matchExpressions(req(api.InjectionLabel, "DoesNotExist"), req(api.RevisionLabel, "DoesNotExist"),
				req("kubernetes.io/metadata.name", "NotIn", "kube-system", "kube-public", "kube-node-lease", "local-path-storage")),
			matchExpressions(req(api.InjectLabel, "DoesNotExist"), req(api.RevisionLabel, "DoesNotExist"))})
	}
	return out
}

// matchExpressions is a label selector of reqs. Setting a field of a new
// mapping cannot fail, hence the ignored errors here and in req.
func matchExpressions(reqs ...*yaml.RNode) *yaml.RNode {
	list := yaml.NewListRNode()
	for _, r := range reqs {
		list.YNode().Content = append(list.YNode().Content, r.YNode())
	}
	sel := yaml.NewMapRNode(nil)
	_ = sel.PipeE(yaml.SetField("matchExpressions", list))
	return sel
}

// req is one label selector requirement.
func req(key, operator string, values ...string) *yaml.RNode {
	r := yaml.NewMapRNode(nil)
	_ = r.PipeE(yaml.SetField("key", yaml.NewStringRNode(key)))
	_ = r.PipeE(yaml.SetField("operator", yaml.NewStringRNode(operator)))
	if len(values) > 0 {
		_ = r.PipeE(yaml.SetField("values", stringList(values...)))
	}
	return r
}

// enableNamespacesByDefault reads sidecarInjectorWebhook.enableNamespacesByDefault
// from the values istioctl rendered the revision with (ConfigMap
// values-<rev>, key merged-values, JSON), which decides whether the default
// tag injects every unlabelled namespace. Without the ConfigMap (older
// Istio) it is false, the chart's default.
func enableNamespacesByDefault(namespace, rev string, objs []*yaml.RNode) (bool, error) {
	cm, err := find(objs, kindConfigMap, namespace, "values-"+rev)
	if err != nil || cm == nil {
		return false, err
	}
	text, ok := cm.GetDataMap()["merged-values"]
	if !ok {
		return false, nil
	}
	values, err := yaml.Parse(text)
	if err != nil {
		return false, fmt.Errorf("%s: data.merged-values must be the JSON of the Helm values: %w", object.Describe(cm), err)
	}
	v, err := values.Pipe(yaml.Lookup("sidecarInjectorWebhook", "enableNamespacesByDefault"))
	if err != nil {
		return false, fmt.Errorf("%s: data.merged-values: sidecarInjectorWebhook.enableNamespacesByDefault: %w", object.Describe(cm), err)
	}
	return v != nil && yaml.GetValue(v) == "true", nil
}

// tagService follows revision-tags-svc.yaml, which is the istiod chart's
// service.yaml with the istio.io/tag label and without trafficDistribution:
// istiod-<rev> with its labels, annotations, ports, selector and IP family
// settings.
func tagService(namespace, tag string, src *yaml.RNode) (*yaml.RNode, error) {
	name := TagServicePrefix + tag
	svc, err := newObject("v1", kindService, namespace, name, src, withLabel(src.GetLabels(), api.TagLabel, tag))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(kindService, namespace, name), err)
	}
	spec, err := src.Pipe(yaml.Lookup("spec"))
	if err != nil || spec == nil {
		return nil, fmt.Errorf("%s: spec must be set", object.Describe(src))
	}
	spec = spec.Copy()
	if err := spec.PipeE(yaml.Clear("trafficDistribution")); err != nil {
		return nil, err
	}
	if err := svc.PipeE(yaml.SetField("spec", spec)); err != nil {
		return nil, err
	}
	sortFields(svc.YNode())
	return svc, nil
}
