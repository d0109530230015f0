package webhook_test

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

// TestListShapes: webhooks that are not a list of mappings are refused,
// by the configuration and the entry, before any stage reads them.
func TestListShapes(t *testing.T) {
	for body, want := range map[string]string{
		"webhooks: [a, b]\n":          "webhooks[0] must be a webhook (a mapping)",
		"webhooks: {name: x}\n":       "webhooks must be a list",
		"webhooks:\n- name: a\n- 3\n": "webhooks[1] must be a webhook (a mapping)",
	} {
		obj := yaml.MustParse("apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: x\n  labels:\n    istio.io/rev: 1-31\n" + body)
		if _, err := webhook.List(obj); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
		if err := webhook.DriftGuards(obj); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: drift guards: error %v, want %q", body, err, want)
		}
	}
}
