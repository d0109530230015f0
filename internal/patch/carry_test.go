package patch

import (
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

func TestReplaceRevision(t *testing.T) {
	for in, want := range map[string]string{
		"istiod-1-30":                        "istiod-1-31",
		"1-30/generated/x.yaml":              "1-31/generated/x.yaml",
		"istio-validator-1-30-istio-system":  "istio-validator-1-31-istio-system",
		"istiod-1-30.istio-system.svc:15012": "istiod-1-31.istio-system.svc:15012",
		"    istio.io/rev: 1-30\n":           "    istio.io/rev: 1-31\n",
		"      - 1-30\n":                     "      - 1-31\n",
		"1-30 and 1-30":                      "1-31 and 1-31",
		"1-300":                              "1-300",
		"11-30":                              "11-30",
		"v1-30":                              "v1-30",
		"1-30a":                              "1-30a",
		"1-301-30":                           "1-301-30",
		"11-30-1-30":                         "11-30-1-31",
		"":                                   "",
	} {
		if got := ReplaceRevision(in, "1-30", "1-31"); got != want {
			t.Errorf("ReplaceRevision(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ReplaceRevision("canary-x", "canary", "blue"); got != "blue-x" {
		t.Errorf("named revisions: %q", got)
	}
}

func TestCarryForward(t *testing.T) {
	d := strings.ReplaceAll(smallDiff, "configmap/x.yaml", "configmap/istio-1-30.yaml")
	n := gitPatchYAML(t, "mesh-1-30", d)
	for _, k := range []string{kioutil.PathAnnotation, kioutil.LegacyPathAnnotation} {
		if err := n.PipeE(yaml.SetAnnotation(k, "1-30/patches/mesh-1-30.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.PipeE(yaml.SetAnnotation(api.CarriedFromAnnotation, "1-29/mesh-1-29")); err != nil {
		t.Fatal(err)
	}
	c, err := CarryForward(n, "1-30", "1-31")
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, c)
	if p.Name != "mesh-1-31" || p.Diff != strings.ReplaceAll(d, "istio-1-30", "istio-1-31") {
		t.Errorf("carried %q:\n%s", p.Name, p.Diff)
	}
	want := map[string]string{api.LocalConfigAnnotation: "true", api.CarriedFromAnnotation: "1-30/mesh-1-30"}
	if got := c.GetAnnotations(); len(got) != len(want) || got[api.CarriedFromAnnotation] != want[api.CarriedFromAnnotation] || got[api.LocalConfigAnnotation] != "true" {
		t.Errorf("annotations %v, want %v", got, want)
	}
	if n.GetName() != "mesh-1-30" || mustParse(t, n).Diff != d {
		t.Error("CarryForward must not change the original")
	}
	b, _ := FileBytes(c)
	if !strings.Contains(string(b), "  diff: |\n") {
		t.Errorf("the copy must keep the block style:\n%s", b)
	}

	for _, tc := range []struct{ from, to, want string }{
		{"1-30", "1-30", `GitPatch "mesh-1-30" (1-30/patches/mesh-1-30.yaml): carrying forward from "1-30" to "1-30": the revisions must be two different names`},
		{"", "1-31", "must be two different names"},
	} {
		_, err := CarryForward(n, tc.from, tc.to)
		mustContain(t, err, tc.want)
	}
	bad, _ := yaml.Parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
	_, err = CarryForward(bad, "1-30", "1-31")
	mustContain(t, err, `GitPatch "x": kind: "ConfigMap" must be "GitPatch"`)
}
