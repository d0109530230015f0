package gateway

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// TestLabelSelector: a PDB's selector is read and matched as Kubernetes
// matches it; an empty or missing one selects everything.
func TestLabelSelector(t *testing.T) {
	pod := labels.Set{"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": "1-31"}
	for _, c := range []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"matchLabels: {istio: ingressgateway}", true},
		{"matchLabels: {istio: ingressgateway, istio.io/rev: 1-30}", false},
		{"matchExpressions: [{key: istio.io/rev, operator: In, values: [1-30, 1-31]}]", true},
		{"matchExpressions: [{key: istio.io/rev, operator: NotIn, values: [1-31]}]", false},
		{"matchExpressions: [{key: team, operator: Exists}]", false},
		{"matchExpressions: [{key: team, operator: DoesNotExist}]", true},
	} {
		sel, err := labelSelector(yaml.MustParse("selector: {"+c.sel+"}"), "selector")
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Matches(pod); got != c.want {
			t.Errorf("%s matches %v, want %v", c.sel, got, c.want)
		}
	}
	if sel, err := labelSelector(yaml.MustParse("spec: {}"), "spec", "selector"); err != nil || !sel.Empty() || !sel.Matches(pod) {
		t.Errorf("a missing selector must match everything: %v, %v", sel, err)
	}
}

func TestLabelSelectorErrors(t *testing.T) {
	for sel, want := range map[string]string{
		"matchExpressions: [{key: a, operator: Has}]": `spec.selector.matchExpressions[0].operator: "Has" must be In, NotIn, Exists or DoesNotExist`,
		"matchExpressions: [{key: a, operator: In}]":  "spec.selector: must be a label selector: ",
		"matchLabels: {\"a b\": x}":                   "spec.selector: must be a label selector: ",
		"matchLabels: [a]":                            "spec.selector: must be a label selector: ",
	} {
		_, err := labelSelector(yaml.MustParse("spec:\n  selector: {"+sel+"}\n"), "spec", "selector")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", sel, err, want)
		}
	}
}
