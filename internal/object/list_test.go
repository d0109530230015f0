package object_test

import (
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Lists, as kubectl writes them, are unwrapped in place; an edit of an
// item is an edit of the List.
func ExampleUnwrap() {
	list := yaml.MustParse(`apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: payments
    labels:
      istio.io/rev: 1-30 # moving
- apiVersion: v1
  kind: NamespaceList
  items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: search}}
`)
	cm := yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n")
	objs, err := object.Unwrap([]*yaml.RNode{cm, list})
	if err != nil {
		panic(err)
	}
	for _, o := range objs {
		fmt.Println(object.Describe(o))
	}
	_ = object.SetLabel(objs[1], "istio.io/rev", "1-31")
	fmt.Print(list.MustString())
	// Output:
	// ConfigMap settings
	// Namespace payments
	// Namespace search
	// apiVersion: v1
	// kind: List
	// items:
	// - apiVersion: v1
	//   kind: Namespace
	//   metadata:
	//     name: payments
	//     labels:
	//       istio.io/rev: 1-31 # moving
	// - apiVersion: v1
	//   kind: NamespaceList
	//   items:
	//   - {apiVersion: v1, kind: Namespace, metadata: {name: search}}
}

// TestListItems: every item must be an object of the shape CheckShape
// asks; the error names the item.
func TestListItems(t *testing.T) {
	for doc, want := range map[string]string{
		"apiVersion: v1\nkind: List\nitems: {a: b}\n":                                             "items (line 3): must be a list of objects, not a map",
		"apiVersion: v1\nkind: List\nitems:\n- {kind: Namespace}\n- [a]\n":                        "items[1]: line 5: must be a mapping",
		"apiVersion: v1\nkind: List\nitems:\n- {kind: Namespace, metadata: {labels: [a]}}\n":      "items[0]: metadata.labels (line 4): must be a map of strings",
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List, items: [[x]]}\n":      "items[0].items[0]: line 4: must be a mapping",
		"apiVersion: v1\nkind: List\nitems:\n- &a {kind: Namespace, metadata: {name: x}}\n- *a\n": "items[1]: line 5: must be a mapping (a Kubernetes object), not a alias",
	} {
		_, err := object.Unwrap([]*yaml.RNode{yaml.MustParse(doc)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
	for _, doc := range []string{
		"apiVersion: v1\nkind: List\nitems: []\n",
		"apiVersion: v1\nkind: List\nitems: null\n",
		"apiVersion: v2\nkind: List\nitems: [[x]]\n", // not a v1 List: an object like any other
	} {
		if _, err := object.Unwrap([]*yaml.RNode{yaml.MustParse(doc)}); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
}

// TestCheckPodMetadata: a workload's pod metadata must be readable as the
// injector reads it; other kinds, and absent fields, pass.
func TestCheckPodMetadata(t *testing.T) {
	for doc, want := range map[string]string{
		"kind: Deployment\nspec: [a]\n":                                                "spec (line 2): must be a mapping, not a list",
		"kind: Deployment\nspec: {template: x}\n":                                      "spec.template (line 2): must be a mapping, not a scalar",
		"kind: StatefulSet\nspec: {template: {metadata: [a]}}\n":                       "spec.template.metadata (line 2): must be a mapping, not a list",
		"kind: Deployment\nspec: {template: {metadata: {labels: [a]}}}\n":              "spec.template.metadata.labels (line 2): must be a map of strings, not a list",
		"kind: Job\nspec: {template: {metadata: {labels: {istio.io/rev: [1-30]}}}}\n":  `spec.template.metadata.labels["istio.io/rev"] (line 2): must be a string, not a list`,
		"kind: CronJob\nspec: {jobTemplate: {spec: {template: []}}}\n":                 "spec.jobTemplate.spec.template (line 2): must be a mapping, not a list",
		"kind: Deployment\nspec: {template: {metadata: {annotations: {a: {b: c}}}}}\n": `spec.template.metadata.annotations["a"] (line 2): must be a string, not a map`,
	} {
		err := object.CheckPodMetadata(yaml.MustParse(doc))
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
	for _, doc := range []string{
		"kind: Deployment\n",
		"kind: Deployment\nspec: {template: null}\n",
		"kind: Deployment\nspec: {template: {metadata: {labels: {istio.io/rev: 1-30}}}}\n",
		"kind: Pod\nmetadata: {labels: {a: b}}\n",
		"kind: Widget\nspec: {template: [a]}\n", // not a workload Istio injects
	} {
		if err := object.CheckPodMetadata(yaml.MustParse(doc)); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
}
