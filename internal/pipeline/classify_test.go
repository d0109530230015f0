package pipeline_test

import (
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/pipeline"
)

// obj is a minimal object of a kind and name, in istio-system.
func obj(apiVersion, kind, name string, extra ...string) string {
	return fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n  namespace: istio-system\n%s", apiVersion, kind, name, strings.Join(extra, "\n"))
}

// envoyFilter is an EnvoyFilter whose one patch matches proxyVersion expr.
func envoyFilter(name, expr string) string {
	return obj("networking.istio.io/v1alpha3", "EnvoyFilter", name,
		"spec:\n  configPatches:\n  - applyTo: HTTP_FILTER\n    match:\n      proxy:\n        proxyVersion: '"+expr+"'")
}

// revLabel is the labels of an object of revision rev.
func revLabel(rev string) string {
	return "  labels:\n    istio.io/rev: " + rev
}

const (
	webhookEntry = "webhooks:\n- name: rev.validation.istio.io\n  clientConfig:\n    service: {name: istiod, namespace: istio-system}"
)

// TestClassify is the spec of where each object of a revision's output
// goes (README, "where each object goes"): one row per rule, in the order
// the rules apply, for the newest revision (1-31) and an older one (1-30).
func TestClassify(t *testing.T) {
	t.Parallel()
	newest := pipeline.Facts{Revision: "1-31", Version: "1.31.0", Newest: "1-31", Namespace: "istio-system", Active: "1-31"}
	older := pipeline.Facts{Revision: "1-30", Version: "1.30.2", Newest: "1-31", Namespace: "istio-system", Active: "1-31"}
	tagged := func(f *pipeline.Facts) { f.Tags = map[string]string{"default": "1-30", "prod-stable": "1-31"} }
	with := func(f pipeline.Facts, edit func(*pipeline.Facts)) pipeline.Facts { edit(&f); return f }
	gateway := func(f *pipeline.Facts) { f.Gateway = true }
	perRevision := func(f *pipeline.Facts) { f.Gateway, f.PerRevisionGateways = true, true }
	nodeAgent := func(f *pipeline.Facts) { f.NodeAgent = true }

	for _, c := range []struct {
		rule   string
		object string
		facts  pipeline.Facts
		want   pipeline.Destination
		reason string // in the reason of a drop
		warn   bool
	}{
		{"5: EnvoyFilter pinned to another version", envoyFilter("stats-1.30", `^1\.30.*`), newest, pipeline.Dropped, `proxyVersion "^1\\.30.*" does not match Istio 1.31.0`, false},
		{"5: EnvoyFilter pinned to its version is kept", envoyFilter("stats-1.31", `^1\.31.*`), newest, pipeline.ToCommon, "", false},
		{"5: before the revision in the name", envoyFilter("stats-1-31", `^1\.30.*`), newest, pipeline.Dropped, "does not match Istio 1.31.0", false},
		{"4: the default revision's istiod Service", obj("v1", "Service", "istiod"), newest, pipeline.Dropped, "spec.activeRevision", true},
		{"4: istiod-default-validator", obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "istiod-default-validator", webhookEntry), newest, pipeline.Dropped, "spec.activeRevision", true},
		{"4: istiod-default-validator of the active revision", obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "istiod-default-validator", revLabel("1-31"), webhookEntry), newest, pipeline.Dropped, "spec.activeRevision", true},
		{"4: a tag's webhook that spec.tags renders", obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "istio-revision-tag-default", webhookEntry), with(older, tagged), pipeline.Dropped, "spec.tags.default", true},
		{"4: a tag's Service that spec.tags renders", obj("v1", "Service", "istiod-revision-tag-prod-stable", revLabel("1-31")), with(newest, tagged), pipeline.Dropped, "spec.tags.prod-stable", true},
		{"4: the default tag of the active revision, no tags.default", obj("v1", "Service", "istiod-revision-tag-default"), newest, pipeline.Dropped, "spec.activeRevision", true},
		{"1: the revision in the name", obj("apps/v1", "Deployment", "istiod-1-30"), older, pipeline.ToRevision, "", false},
		{"1: the revision as a token inside the name", obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "istio-validator-1-31-istio-system", webhookEntry), newest, pipeline.ToRevision, "", false},
		{"1: another revision's name is not this one's", obj("v1", "ConfigMap", "istio-1-310"), older, pipeline.Dropped, `newest revision "1-31"`, false},
		{"1: before the gateway rules", obj("v1", "ServiceAccount", "istio-ingressgateway-1-31"), with(newest, gateway), pipeline.ToRevision, "", false},
		{"2: a gateway, per revision", obj("apps/v1", "Deployment", "istio-ingressgateway"), with(older, perRevision), pipeline.ToRevision, "", false},
		{"2: a gateway in place, newest", obj("apps/v1", "Deployment", "istio-ingressgateway"), with(newest, gateway), pipeline.ToCommon, "", false},
		{"2: a gateway in place, older", obj("apps/v1", "Deployment", "istio-ingressgateway"), with(older, gateway), pipeline.Dropped, `newest revision "1-31"`, false},
		{"3: a node agent, newest", obj("apps/v1", "DaemonSet", "ztunnel"), with(newest, nodeAgent), pipeline.ToNodeAgents, "", false},
		{"3: a node agent, older", obj("v1", "ServiceAccount", "istio-cni"), with(older, nodeAgent), pipeline.ToNodeAgents, "", false},
		{"3: anything else, newest", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "gateways.networking.istio.io"), newest, pipeline.ToCommon, "", false},
		{"3: anything else, older", obj("rbac.authorization.k8s.io/v1", "ClusterRole", "istio-reader-clusterrole-istio-system"), older, pipeline.Dropped, `newest revision "1-31"`, false},
	} {
		t.Run(c.rule, func(t *testing.T) {
			d, err := pipeline.Classify(yaml.MustParse(c.object), c.facts)
			if err != nil {
				t.Fatal(err)
			}
			if d.Destination != c.want || d.Warn != c.warn || !strings.Contains(d.Reason, c.reason) || (c.want != pipeline.Dropped) != (d.Reason == "") {
				t.Errorf("got %+v, want destination %d, warn %v, a reason holding %q", d, c.want, c.warn, c.reason)
			}
		})
	}
}

// TestClassifyRefuses: an EnvoyFilter pinned with a broken expression, or
// pinned when the revision's version is not known, cannot be placed.
func TestClassifyRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		object string
		facts  pipeline.Facts
		want   string
	}{
		{envoyFilter("bad", `^1\.31(`), pipeline.Facts{Revision: "1-31", Version: "1.31.0", Newest: "1-31"}, "must be a regular expression"},
		{envoyFilter("stats", `^1\.31.*`), pipeline.Facts{Revision: "1-31", Newest: "1-31"}, "version must be known"},
		// Pointers the config does not render (or renders elsewhere) are
		// refused, saying which line to write.
		{obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "istio-revision-tag-prod-stable", revLabel("1-31"), webhookEntry),
			pipeline.Facts{Revision: "1-31", Newest: "1-31", Namespace: "istio-system", Active: "1-31"},
			"spec.tags has no such tag: revision tags are rendered from spec.tags alone; move it there: add `prod-stable: 1-31` under spec.tags"},
		{obj("v1", "Service", "istiod-revision-tag-prod-stable", revLabel("1-31")),
			pipeline.Facts{Revision: "1-31", Newest: "1-31", Namespace: "istio-system", Active: "1-30", Tags: map[string]string{"prod-stable": "1-30"}},
			`but spec.tags["prod-stable"] is "1-30"`},
		{obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "istio-revision-tag-default", revLabel("1-31"), webhookEntry),
			pipeline.Facts{Revision: "1-31", Newest: "1-31", Namespace: "istio-system", Active: "1-30"},
			"the default tag follows spec.activeRevision \"1-30\": revision tags are rendered from spec.tags alone; move it there: add `default: 1-31` under spec.tags"},
		{obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "istiod-default-validator", revLabel("1-31"), webhookEntry),
			pipeline.Facts{Revision: "1-31", Newest: "1-31", Namespace: "istio-system", Active: "1-30"},
			`makes revision "1-31" the default revision (values.defaultRevision in its IstioOperator), but spec.activeRevision is "1-30"`},
	} {
		if _, err := pipeline.Classify(yaml.MustParse(c.object), c.facts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error holding %q", strings.SplitN(c.object, "\n", 4)[2], err, c.want)
		}
	}
}
