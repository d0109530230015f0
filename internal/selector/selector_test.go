package selector_test

import (
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/selector"
)

func TestMatches(t *testing.T) {
	labels := map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": "1-31"}
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
		sel, err := selector.Read(yaml.MustParse("selector: {"+c.sel+"}"), "selector")
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Matches(labels); got != c.want {
			t.Errorf("%s matches %v, want %v", c.sel, got, c.want)
		}
	}
	var none *selector.LabelSelector
	if !none.Matches(labels) || !none.Empty() {
		t.Error("a nil selector must match everything")
	}
}

func TestReadBadOperator(t *testing.T) {
	_, err := selector.Read(yaml.MustParse("spec:\n  selector:\n    matchExpressions: [{key: a, operator: Has}]\n"), "spec", "selector")
	if err == nil || !strings.Contains(err.Error(), `spec.selector.matchExpressions[0].operator: "Has" must be`) {
		t.Fatalf("error %v", err)
	}
}

func ExampleLabelSelector_Matches() {
	sel := &selector.LabelSelector{MatchLabels: map[string]string{"istio": "ingressgateway"}}
	fmt.Println(sel.Matches(map[string]string{"istio": "ingressgateway", "app": "x"}))
	// Output: true
}
