package fleet

import (
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// TestLineOf: the line of a config field, for an annotation: keys with
// dots (hosts), list entries, a field not there (its parent's line).
func TestLineOf(t *testing.T) {
	node := yaml.MustParse(`apiVersion: fn.istio-gitops.dev/v1alpha1
kind: IstioGitOps
metadata:
  name: prod
spec:
  revisions:
  - name: 1-30
  - name: 1-31
  activeRevision: 1-31
  tags:
    prod-stable: 1-30
  gateways:
    ingress:
      hosts:
        shop.example.com: 1-31
`)
	for field, want := range map[string]int{
		"spec.revisions[1]":                            8,
		"spec.activeRevision":                          9,
		"spec.tags.prod-stable":                        11,
		"spec.gateways.ingress.hosts.shop.example.com": 15,
		"spec.promotion":                               5,
		"":                                             0,
	} {
		if got := lineOf(node, field); got != want {
			t.Errorf("lineOf(%q) = %d, want %d", field, got, want)
		}
	}
}
