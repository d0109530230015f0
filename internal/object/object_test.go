package object_test

import (
	"fmt"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// TestSetString: new strings are plain unless YAML 1.1 or 1.2 would read
// them as something else; an existing value keeps its style and comment.
func TestSetString(t *testing.T) {
	for value, want := range map[string]string{
		"1-31":   "rev: 1-31",
		"123":    `rev: "123"`,
		"true":   `rev: "true"`,
		"yes":    `rev: "yes"`,
		"0o12":   `rev: "0o12"`,
		"1.31":   `rev: "1.31"`,
		"":       `rev: ""`,
		"a: b":   `rev: "a: b"`,
		"canary": "rev: canary",
	} {
		n := yaml.MustParse("metadata:\n  name: x\n")
		if err := object.SetString(n, value, "metadata", "labels", "rev"); err != nil {
			t.Fatal(err)
		}
		got, _ := n.Pipe(yaml.Lookup("metadata", "labels"))
		if s := got.MustString(); s != want+"\n" {
			t.Errorf("SetString(%q) wrote %q, want %q", value, s, want)
		}
		var back map[string]any
		if err := yaml.Unmarshal([]byte(n.MustString()), &back); err != nil || back["metadata"].(map[string]any)["labels"].(map[string]any)["rev"] != value {
			t.Errorf("SetString(%q) does not read back as the string: %v", value, back)
		}
	}
	n := yaml.MustParse("metadata:\n  labels:\n    rev: 'old' # pinned\n")
	if err := object.SetLabel(n, "rev", "new"); err != nil {
		t.Fatal(err)
	}
	if s := n.MustString(); s != "metadata:\n  labels:\n    rev: 'new' # pinned\n" {
		t.Errorf("existing value lost its style or comment:\n%s", s)
	}
}

func ExampleSetAnnotation() {
	n := yaml.MustParse("apiVersion: v1\nkind: Service\nmetadata:\n  name: istiod\n  annotations: null\n")
	_ = object.SetAnnotation(n, "fn.istio-gitops.dev/rendered-from", "spec.activeRevision")
	fmt.Print(n.MustString())
	// Output:
	// apiVersion: v1
	// kind: Service
	// metadata:
	//   name: istiod
	//   annotations:
	//     fn.istio-gitops.dev/rendered-from: spec.activeRevision
}

func TestScalar(t *testing.T) {
	doc := yaml.MustParse(`apiVersion: v1
kind: Pod
metadata:
  name: a
spec:
  containers:
  - name: proxy
    image: proxyv2
  - image: no-name
  - [odd]
`)
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{"metadata", "name"}, "a"},
		{[]string{"spec", "containers", "[name=proxy]", "image"}, "proxyv2"},
		{[]string{"spec", "containers", "[name=other]", "image"}, ""},
		{[]string{"spec", "containers", "name"}, ""},
		{[]string{"spec", "containers"}, ""},
		{[]string{"metadata", "name", "deeper"}, ""},
		{[]string{"missing"}, ""},
	} {
		if got := object.Scalar(doc, c.path...); got != c.want {
			t.Errorf("Scalar(%q) = %q, want %q", c.path, got, c.want)
		}
	}
	// kyaml reads a list of odd length as a mapping and indexes past its
	// end; Scalar must not.
	for _, src := range []string{"[a]", "- apiVersion: v1\n", "metadata: [a]\n", "metadata: [a, b, c]\n"} {
		n := yaml.MustParse(src)
		if got := object.Scalar(n, "metadata", "name"); got != "" {
			t.Errorf("%q: name %q", src, got)
		}
		if id := object.IDOf(n); id != (object.ID{}) {
			t.Errorf("%q: id %+v", src, id)
		}
	}
}
