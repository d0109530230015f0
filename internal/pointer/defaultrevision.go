package pointer

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

// DefaultRevision renders what makes active the default revision, from
// the active revision's own objects (its istioctl output, labels may have
// been added):
//
//   - Service <namespace>/istiod: istiod-<active> renamed, selecting
//     app=istiod,istio.io/rev=<active>, with the labels of the unrevisioned
//     istiod Service istioctl renders (istio.io/rev: default);
//   - ValidatingWebhookConfiguration istiod-default-validator: what istioctl
//     renders with values.defaultRevision=<active>, built from the
//     revision's own validator istio-validator-<active>-<namespace>.
//
// Fields are in istioctl's order (sorted keys). The webhook keeps istioctl's
// failurePolicy; DriftGuards writes Fail.
func DefaultRevision(namespace, active string, objs []*yaml.RNode) ([]*yaml.RNode, error) {
	if err := checkLabel("namespace", namespace); err != nil {
		return nil, err
	}
	if err := checkLabel("active revision", active); err != nil {
		return nil, err
	}
	svc, err := revisionService(namespace, active, objs, "the istiod Service selects its pods")
	if err != nil {
		return nil, err
	}
	vname := "istio-validator-" + active + "-" + namespace
	vwc, err := mustFind(objs, webhook.KindValidating, "", vname, active, DefaultValidatorName+" is rendered from it (is values.global.configValidation off?)")
	if err != nil {
		return nil, err
	}
	s, err := istiodService(namespace, svc)
	if err != nil {
		return nil, err
	}
	v, err := defaultValidator(active, vwc)
	if err != nil {
		return nil, err
	}
	return []*yaml.RNode{s, v}, nil
}

// revisionService finds istiod-<rev> and checks it selects the revision's
// pods, as every Service rendered from it must.
func revisionService(namespace, rev string, objs []*yaml.RNode, why string) (*yaml.RNode, error) {
	svc, err := mustFind(objs, kindService, namespace, "istiod-"+rev, rev, why)
	if err != nil {
		return nil, err
	}
	sel, err := svc.Pipe(yaml.Lookup("spec", "selector", api.RevisionLabel))
	if err != nil {
		return nil, fmt.Errorf("%s: spec.selector: %w", object.Describe(svc), err)
	}
	if got := yaml.GetValue(sel); got != rev {
		return nil, fmt.Errorf("%s: spec.selector must select %s=%s, not %q", object.Describe(svc), api.RevisionLabel, rev, got)
	}
	return svc, nil
}

// istiodService is the unrevisioned istiod Service of Istio's istiod chart
// (templates/service.yaml with revision ""), adapted to select the active
// revision. Its ports, annotations and IP family settings come from the
// same chart values as istiod-<active>'s, so they are copied from it.
//
// It is labelled istio.io/rev: default as the chart labels it, not with the
// active revision: istioctl finds "the" Service of a revision by
// istio.io/rev=<rev>,!istio.io/tag,app=istiod (GetServicesWithRevision) and
// refuses to set a tag on a revision that has two.
func istiodService(namespace string, src *yaml.RNode) (*yaml.RNode, error) {
	labels := withLabel(src.GetLabels(), api.RevisionLabel, DefaultTag)
	svc, err := newObject("v1", kindService, namespace, IstiodServiceName, src, labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(kindService, namespace, IstiodServiceName), err)
	}
	spec, err := src.Pipe(yaml.Lookup("spec"))
	if err != nil || spec == nil {
		return nil, fmt.Errorf("%s: spec must be set", object.Describe(src))
	}
	if err := svc.PipeE(yaml.SetField("spec", spec.Copy())); err != nil {
		return nil, err
	}
	sortFields(svc.YNode())
	return svc, nil
}

// defaultValidator renders Istio's base chart
// templates/defaultrevision-validatingwebhookconfiguration.yaml. That
// template and the revision's validator
// (istio-discovery templates/validatingwebhookconfiguration.yaml) share
// their rules, clientConfig (service istiod-<rev>, or base.validationURL and
// base.validationCABundle) and failurePolicy logic, so the webhook is the
// revision's rev.validation.istio.io renamed validation.istio.io, without
// its objectSelector: the default revision validates every Istio object,
// whatever its istio.io/rev.
func defaultValidator(active string, src *yaml.RNode) (*yaml.RNode, error) {
	whs, err := webhook.List(src)
	if err != nil {
		return nil, err
	}
	var rev *yaml.RNode
	for _, w := range whs {
		if object.Scalar(w, "name") == "rev.validation.istio.io" {
			rev = w
		}
	}
	if rev == nil {
		return nil, fmt.Errorf("%s: webhook rev.validation.istio.io must be there: %s is rendered from it", object.Describe(src), DefaultValidatorName)
	}
	service, err := rev.Pipe(yaml.Lookup("clientConfig", "service", "name"))
	if err != nil {
		return nil, fmt.Errorf("%s: clientConfig.service.name: %w", object.Describe(src), err)
	}
	if service != nil && yaml.GetValue(service) != "istiod-"+active {
		return nil, fmt.Errorf("%s: webhook rev.validation.istio.io must call Service istiod-%s, not %q", object.Describe(src), active, yaml.GetValue(service))
	}

	labels := src.GetLabels()
	// The base chart renders it: its helm.sh/chart label names that chart.
	if c, ok := labels["helm.sh/chart"]; ok {
		labels["helm.sh/chart"] = "base-" + strings.TrimPrefix(c, "istiod-")
	}
	labels[api.RevisionLabel] = active
	v, err := newObject(admissionV1, webhook.KindValidating, "", DefaultValidatorName, src, labels)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", webhook.KindValidating, DefaultValidatorName, err)
	}
	w := rev.Copy()
	if err := w.PipeE(yaml.SetField("name", yaml.NewStringRNode("validation.istio.io"))); err != nil {
		return nil, err
	}
	if err := w.PipeE(yaml.Clear("objectSelector")); err != nil {
		return nil, err
	}
	list := yaml.NewListRNode()
	list.YNode().Content = append(list.YNode().Content, w.YNode())
	if err := v.PipeE(yaml.SetField("webhooks", list)); err != nil {
		return nil, err
	}
	sortFields(v.YNode())
	return v, nil
}
