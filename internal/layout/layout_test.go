package layout_test

import (
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/layout"
)

func obj(kind, ns, name string) *yaml.RNode {
	s := "apiVersion: v1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
	if ns != "" {
		s += "  namespace: " + ns + "\n"
	}
	return yaml.MustParse(s)
}

func TestObjectFile(t *testing.T) {
	for _, c := range []struct{ kind, ns, name, want string }{
		{"Deployment", "istio-system", "istiod-1-31", "1-31/generated/deployment/istiod-1-31.yaml"},
		{"ClusterRole", "", "istiod-clusterrole-1-31-istio-system", "1-31/generated/clusterrole/istiod-clusterrole-1-31-istio-system.yaml"},
		{"RoleBinding", "kube-system", "x", "1-31/generated/rolebinding/kube-system/x.yaml"},
	} {
		if got := layout.ObjectFile("1-31/generated", obj(c.kind, c.ns, c.name), "istio-system"); got != c.want {
			t.Errorf("ObjectFile(%s %s/%s) = %q, want %q", c.kind, c.ns, c.name, got, c.want)
		}
	}
}

func TestCheckIdentity(t *testing.T) {
	for _, c := range []struct{ kind, ns, name, want string }{
		{"ConfigMap", "", "ok.name:with-colon", ""},
		{"ConfigMap", "", "../x", "must not contain a path separator"},
		{"ConfigMap", "", "a/b", "must not contain a path separator"},
		{"ConfigMap", "", "..", `must not contain ".."`},
		{"ConfigMap", "", "-x", "must be a DNS subdomain name"},
		{"ConfigMap", "a/b", "x", `namespace "a/b" must be a namespace name`},
		{"Config/Map", "", "x", `kind "Config/Map" must be a Kubernetes kind`},
	} {
		err := layout.CheckIdentity(obj(c.kind, c.ns, c.name))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %q: %v", c.kind, c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %q: error %v, want %q", c.kind, c.name, err, c.want)
		}
	}
}

// TestFileBytes: what a file holds is the object without the annotations
// readers and orchestrators add.
func TestFileBytes(t *testing.T) {
	o := yaml.MustParse(`apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  annotations:
    internal.config.kubernetes.io/path: a.yaml
    internal.config.kubernetes.io/package-path: .
    config.kubernetes.io/index: '0'
    keep: me
data:
  list: [a]
`)
	b, err := layout.FileBytes(o)
	if err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n    keep: me\ndata:\n  list: [a]\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	if !strings.Contains(o.MustString(), "internal.config.kubernetes.io/path") {
		t.Error("FileBytes changed its argument")
	}
}

func ExampleObjectFile() {
	o := yaml.MustParse("apiVersion: v1\nkind: Service\nmetadata:\n  name: istiod-1-31\n  namespace: istio-system\n")
	fmt.Println(layout.ObjectFile("1-31/generated", o, "istio-system"))
	// Output: 1-31/generated/service/istiod-1-31.yaml
}

// TestSegmentCutsAreDisjoint: a name spelled like another's cut form keeps
// a file of its own.
func TestSegmentCutsAreDisjoint(t *testing.T) {
	long := strings.Repeat("a", 253)
	cut := layout.Segment(long, ".yaml")
	if len(cut) != layout.MaxSegment {
		t.Fatalf("cut segment %q has %d bytes, want %d", cut, len(cut), layout.MaxSegment)
	}
	spelled := strings.TrimSuffix(cut, ".yaml")
	if got := layout.Segment(spelled, ".yaml"); got == cut {
		t.Errorf("the name %q gets the file of the cut name %q", spelled, long)
	}
	for n := 240; n <= 253; n++ {
		s := strings.Repeat("b", n)
		got := layout.Segment(s, ".yaml")
		if whole := got == s+".yaml"; whole != (n+len(".yaml") < layout.MaxSegment) {
			t.Errorf("a %d-byte name: %q", n, got)
		}
	}
}
