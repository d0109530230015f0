package object_test

import (
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// TestCheckShapeDuplicateKeys: a key written twice is named by its path
// and both lines, at any depth, in small mappings (keys compared pairwise)
// and large ones (through a map).
func TestCheckShapeDuplicateKeys(t *testing.T) {
	var wide strings.Builder
	for i := range 40 {
		fmt.Fprintf(&wide, "    k%d: v\n", i)
	}
	for _, c := range []struct{ doc, want string }{
		{"apiVersion: v1\nkind: A\nkind: B\n", "kind: must be set once, not on lines 2 and 3"},
		{"apiVersion: v1\nkind: A\nmetadata:\n  labels:\n    a: x\n    b: y\n    a: z\n",
			"metadata.labels.a: must be set once, not on lines 5 and 7"},
		{"apiVersion: v1\nkind: A\nspec:\n  items:\n  - x: 1\n  - y: 1\n    z: 2\n    y: 3\n",
			"spec.items[1].y: must be set once, not on lines 6 and 8"},
		{"apiVersion: v1\nkind: A\ndata:\n  a.b:\n    c: 1\n    c: 2\n",
			`data["a.b"].c: must be set once, not on lines 5 and 6`},
		{"apiVersion: v1\nkind: A\nspec:\n  ? [x]\n  : {a: 1, a: 2}\n",
			"spec.<list at line 4>.a: must be set once, not on lines 5 and 5"},
		{"apiVersion: v1\nkind: A\nspec:\n" + wide.String() + "    k7: again\n",
			"spec.k7: must be set once, not on lines 11 and 44"},
	} {
		err := object.CheckShape(yaml.MustParse(c.doc))
		if err == nil || err.Error() != c.want+" (a merge kept both?)" || !object.IsDuplicateKey(err) {
			t.Errorf("CheckShape(%q) = %v, want %s", c.doc, err, c.want)
		}
	}
	// Non-scalar keys are not compared, and distinct keys are distinct
	// however many.
	for _, doc := range []string{
		"apiVersion: v1\nkind: A\nspec:\n  ? [x]\n  : 1\n  ? [x]\n  : 2\n",
		"apiVersion: v1\nkind: A\nspec:\n" + wide.String(),
	} {
		if err := object.CheckShape(yaml.MustParse(doc)); err != nil {
			t.Errorf("CheckShape(%.40q...) = %v, want nil", doc, err)
		}
	}
}

// TestCheckShapeExpansion: a document is measured by the nodes it
// expands to, whether it is a plain tree or has aliases: an alias bomb is
// refused, and so is a tree of as many nodes; anchors used a few times
// are fine.
func TestCheckShapeExpansion(t *testing.T) {
	bomb := "apiVersion: v1\nkind: A\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := range 7 {
		name := fmt.Sprintf("l%d", i)
		bomb += fmt.Sprintf("%s: &%s [%s]\n", name, name, strings.Repeat("*"+prev+", ", 9)+"*"+prev)
		prev = name
	}
	for doc, refused := range map[string]bool{
		bomb: true, // ten million nodes once expanded
		"apiVersion: v1\nkind: A\nbase: &b {a: 1}\none: *b\ntwo: *b\n": false,
	} {
		err := object.CheckShape(yaml.MustParse(doc))
		if got := err != nil && strings.Contains(err.Error(), "expand to more than"); got != refused {
			t.Errorf("CheckShape(%.60q...) = %v, want refused %v", doc, err, refused)
		}
	}
	// A tree past the bound, made of one scalar many times over (what the
	// parser never makes, but a node can be): counted each time, as an
	// alias would be.
	x := &yaml.Node{Kind: yaml.ScalarNode, Value: "x"}
	items := &yaml.Node{Kind: yaml.SequenceNode, Content: make([]*yaml.Node, 1<<20)}
	for i := range items.Content {
		items.Content[i] = x
	}
	doc := yaml.MustParse("apiVersion: v1\nkind: A\n")
	doc.YNode().Content = append(doc.YNode().Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "items"}, items)
	if err := object.CheckShape(doc); err == nil || !strings.Contains(err.Error(), "expand to more than") {
		t.Errorf("a tree of more than 2^20 nodes: %v", err)
	}
	items.Content = items.Content[:1<<19]
	if err := object.CheckShape(doc); err != nil {
		t.Errorf("a tree of 2^19 nodes: %v", err)
	}
}
