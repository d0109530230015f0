package revision_test

import (
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/revision"
)

func TestInName(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"istiod-1-31", true},
		{"istio-validator-1-31-istio-system", true},
		{"1-31", true},
		{"1-31-x", true},
		{"istiod-1-310", false},
		{"istiod-11-31", false},
		{"istiod-1-3", false},
		{"istio-reader-service-account", false},
		{"x1-31", false},
		{"a-1-311-1-31", true},
	} {
		if got := revision.InName(c.name, "1-31"); got != c.want {
			t.Errorf("InName(%q) = %v, want %v", c.name, got, c.want)
		}
	}
	if revision.InName("istiod", "") {
		t.Error("no name carries the empty revision")
	}
}

func TestValidateName(t *testing.T) {
	for name, want := range map[string]string{
		"1-31":                  "",
		"canary":                "",
		"":                      "must not be empty",
		"default":               `"default" must not be used: istioctl reserves it`,
		"1.31":                  `"1.31" must not contain a dot`,
		"common":                `"common" must not be used: the tree has a folder`,
		"flux":                  `"flux" must not be used: the tree has a folder`,
		"1_31":                  `"1_31" must be a DNS label`,
		"Canary":                `"Canary" must be a DNS label`,
		"-1-31":                 `"-1-31" must be a DNS label`,
		"../1-31":               `"../1-31" must not contain a dot`,
		"a/b":                   `"a/b" must be a DNS label`,
		strings.Repeat("a", 64): "must be a DNS label",
	} {
		err := revision.ValidateName(name)
		switch {
		case want == "" && err != nil:
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("ValidateName(%q) = %v, want %q", name, err, want)
		}
	}
}

func TestNamespaceSelects(t *testing.T) {
	for _, c := range []struct {
		labels map[string]string
		want   string
		ok     bool
	}{
		{map[string]string{"istio.io/rev": "1-31"}, "1-31", true},
		{map[string]string{"istio.io/rev": "prod-stable"}, "prod-stable", true},
		// istio-injection wins over istio.io/rev, as in Istio's webhooks.
		{map[string]string{"istio-injection": "enabled", "istio.io/rev": "1-31"}, "default", true},
		{map[string]string{"istio-injection": "disabled", "istio.io/rev": "1-31"}, "", false},
		{map[string]string{"istio.io/rev": ""}, "", false},
		{nil, "", false},
	} {
		sel, ok := revision.NamespaceSelects(c.labels)
		if ok != c.ok || sel.Value != c.want {
			t.Errorf("NamespaceSelects(%v) = %+v, %v; want %q, %v", c.labels, sel, ok, c.want, c.ok)
		}
	}
}

func TestResolve(t *testing.T) {
	p := revision.Pointers{Revisions: []string{"1-30", "1-31"}, Tags: map[string]string{"prod-stable": "1-30"}, Active: "1-31"}
	for sel, want := range map[string]string{
		"1-30": "1-30", "prod-stable": "1-30", "default": "1-31", "1-29": "", "prod-canary": "",
	} {
		if got := p.Resolve(sel); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", sel, got, want)
		}
	}
	// A tag named like a revision can not take it over.
	p.Tags["1-30"] = "1-31"
	if got := p.Resolve("1-30"); got != "1-30" {
		t.Errorf("Resolve(1-30) = %q with a tag of that name, want the revision", got)
	}
}

func TestObjectSelects(t *testing.T) {
	for _, c := range []struct {
		doc           string
		want          string
		namespace, ok bool
	}{
		{"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n    istio.io/rev: 1-31\n", "1-31", true, true},
		{"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n", "", true, false},
		{"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  template:\n    metadata:\n      labels:\n        istio.io/rev: prod-canary\n", "prod-canary", false, true},
		{"apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: a\nspec:\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          labels:\n            istio.io/rev: 1-30\n", "1-30", false, true},
		{"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels:\n    istio.io/rev: 1-30\n", "1-30", false, true},
		// A Deployment's own labels are not its pods'.
		{"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  labels:\n    istio.io/rev: 1-30\n", "", false, false},
		{"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  template:\n    metadata:\n      labels:\n        istio.io/rev: [1-30]\n", "", false, false},
	} {
		sel, ns, ok := revision.ObjectSelects(yaml.MustParse(c.doc))
		if sel.Value != c.want || ns != c.namespace || ok != c.ok {
			t.Errorf("ObjectSelects(%s) = %+v, %v, %v; want %q, %v, %v", c.doc, sel, ns, ok, c.want, c.namespace, c.ok)
		}
	}
}

func ExampleInName() {
	fmt.Println(revision.InName("istio-validator-1-31-istio-system", "1-31"))
	fmt.Println(revision.InName("istiod-1-310", "1-31"))
	// Output:
	// true
	// false
}

func ExamplePointers_Resolve() {
	p := revision.Pointers{
		Revisions: []string{"1-30", "1-31"},
		Tags:      map[string]string{"prod-stable": "1-30", "prod-canary": "1-31"},
		Active:    "1-30",
	}
	sel, _ := revision.NamespaceSelects(map[string]string{"istio-injection": "enabled"})
	fmt.Println(sel.Label, "->", p.Resolve(sel.Value))
	sel, _ = revision.NamespaceSelects(map[string]string{"istio.io/rev": "prod-canary"})
	fmt.Println(sel.Label, "->", p.Resolve(sel.Value))
	// Output:
	// istio-injection=enabled -> 1-30
	// istio.io/rev=prod-canary -> 1-31
}

// TestCheckList: the revisions Flux and Argo CD make an object each for.
func TestCheckList(t *testing.T) {
	for _, c := range []struct {
		revs []string
		want string
	}{
		{[]string{"1-30", "1-31"}, ""},
		{nil, "spec.revisions: must list at least one revision"},
		{[]string{"1-30", "1.31"}, `spec.revisions[1].name: "1.31" must be a DNS label`},
		{[]string{"flux"}, `spec.revisions[0].name: "flux" must not be used: the tree has a folder of that name`},
		{[]string{"1-30", "1-30"}, `spec.revisions[1].name: "1-30" must be unique`},
		{[]string{"argocd"}, `spec.revisions[0].name: "argocd" must not be used: the tree has a folder of that name`},
		{[]string{"1-30", strings.Repeat("r", 57)}, ""},
		{[]string{"1-30", strings.Repeat("r", 58)}, `spec.revisions[1].name: "` + strings.Repeat("r", 58) + `" must be at most 57 characters with Flux: Kustomization "istio-` + strings.Repeat("r", 58) + `" is too long for a label value`},
	} {
		err := revision.CheckList(c.revs, func(r string) string { return "istio-" + r }, "Kustomization", "Flux")
		if got := fmt.Sprint(err); c.want == "" && err != nil || c.want != "" && got != c.want {
			t.Errorf("CheckList(%q): %v, want %q", c.revs, err, c.want)
		}
	}
}
