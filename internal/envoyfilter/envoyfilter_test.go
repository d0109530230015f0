package envoyfilter_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/envoyfilter"
)

// pinned.yaml is in the shape Istio 1.8 to 1.20 emitted: the current
// minor's filters next to the previous minor's, each patch pinned with
// proxyVersion; plus a user filter that is not pinned.
func read(t *testing.T) []*yaml.RNode {
	t.Helper()
	f, err := os.Open("testdata/pinned.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nodes, err := (&kio.ByteReader{Reader: f}).Read()
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

func names(nodes []*yaml.RNode) string {
	var n []string
	for _, o := range nodes {
		n = append(n, o.GetName())
	}
	return strings.Join(n, " ")
}

func TestFilter(t *testing.T) {
	for _, c := range []struct{ version, kept, dropped string }{
		{"1.11.0", "stats-filter-1.11 tcp-stats-filter-1.11 metadata-exchange-1.11 mixed-1.10 access-log istio-ingressgateway",
			"stats-filter-1.10 tcp-stats-filter-1.10 metadata-exchange-1.10"},
		{"1.10.3", "stats-filter-1.10 tcp-stats-filter-1.10 metadata-exchange-1.10 mixed-1.10 access-log istio-ingressgateway",
			"stats-filter-1.11 tcp-stats-filter-1.11 metadata-exchange-1.11"},
		{"1.12.0", "mixed-1.10 access-log istio-ingressgateway",
			"stats-filter-1.10 tcp-stats-filter-1.10 metadata-exchange-1.10 stats-filter-1.11 tcp-stats-filter-1.11 metadata-exchange-1.11"},
	} {
		t.Run(c.version, func(t *testing.T) {
			f := &envoyfilter.Filter{Version: c.version}
			kept, err := f.Filter(read(t))
			if err != nil {
				t.Fatal(err)
			}
			var dropped []*yaml.RNode
			for _, d := range f.Dropped {
				dropped = append(dropped, d.Object)
				if !strings.Contains(d.Reason, "does not match Istio "+c.version) {
					t.Errorf("reason %q must say why", d.Reason)
				}
			}
			if got := names(kept); !sameSet(got, c.kept) {
				t.Errorf("kept %q, want %q", got, c.kept)
			}
			if got := names(dropped); !sameSet(got, c.dropped) {
				t.Errorf("dropped %q, want %q", got, c.dropped)
			}
		})
	}
}

func sameSet(a, b string) bool {
	as, bs := strings.Fields(a), strings.Fields(b)
	if len(as) != len(bs) {
		return false
	}
	m := map[string]int{}
	for _, s := range as {
		m[s]++
	}
	for _, s := range bs {
		m[s]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func TestUnknownVersion(t *testing.T) {
	f := &envoyfilter.Filter{}
	_, err := f.Filter(read(t))
	if err == nil || !strings.Contains(err.Error(), "EnvoyFilter istio-system/stats-filter-1.10 is pinned") {
		t.Fatalf("error %v must name the pinned filter", err)
	}
}

func ExamplePinned() {
	obj := yaml.MustParse(`apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: stats-filter-1.10
  namespace: istio-system
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      proxy:
        proxyVersion: '^1\.10.*'
`)
	drop, reason, _ := envoyfilter.Pinned(obj, "1.11.0")
	fmt.Println(drop, reason)
	// Output: true proxyVersion "^1\\.10.*" does not match Istio 1.11.0
}
