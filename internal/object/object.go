// Package object holds what every stage needs to know of one Kubernetes
// object: its identity, its file, the shape a stage may rely on before
// reading it, and how to set a string in it the way istioctl writes one.
package object

import (
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
)

// ID is what makes an object unique in a cluster: group, kind, namespace
// and name (the version does not count).
type ID struct {
	Group, Kind, Namespace, Name string
}

// IDOf is the identity of o.
func IDOf(o *yaml.RNode) ID {
	return ID{Group: GroupOf(Scalar(o, "apiVersion")), Kind: Scalar(o, "kind"),
		Namespace: Scalar(o, "metadata", "namespace"), Name: Scalar(o, "metadata", "name")}
}

// String names the object for messages: Kind namespace/name.
func (id ID) String() string {
	if id.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", id.Kind, id.Namespace, id.Name)
	}
	return fmt.Sprintf("%s %s", id.Kind, id.Name)
}

// GroupOf is the group of an apiVersion ("" for the core group).
func GroupOf(apiVersion string) string {
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		return g
	}
	return ""
}

// Describe names an object for messages: Kind namespace/name.
func Describe(o *yaml.RNode) string { return IDOf(o).String() }

// Path is the file an object was read from or is written to, relative to
// the run's root ("" when it carries no path annotation).
func Path(o *yaml.RNode) string {
	p, _, _ := kioutil.GetFileAnnotations(o)
	return p
}

// Index is an object's document index in its file.
func Index(o *yaml.RNode) int {
	_, i, _ := kioutil.GetFileAnnotations(o)
	v, _ := strconv.Atoi(i)
	return v
}

// SetPath places an object in file p at document index i. Both the current
// and the legacy annotations are set, as kustomize and kpt read either.
func SetPath(o *yaml.RNode, p string, i int) error {
	idx := strconv.Itoa(i)
	for _, kv := range [][2]string{
		{kioutil.PathAnnotation, p},
		{kioutil.LegacyPathAnnotation, p},
		{kioutil.IndexAnnotation, idx},
		{kioutil.LegacyIndexAnnotation, idx},
	} {
		if err := o.PipeE(yaml.SetAnnotation(kv[0], kv[1])); err != nil {
			return fmt.Errorf("%s: set %s: %w", Describe(o), kv[0], err)
		}
	}
	return nil
}

// IsLocalConfig reports whether an object is marked never to be deployed.
func IsLocalConfig(o *yaml.RNode) bool {
	v, ok := o.GetAnnotations()[api.LocalConfigAnnotation]
	return ok && v != "false"
}

// IsOurs reports whether an object is of our API group.
func IsOurs(o *yaml.RNode) bool { return GroupOf(o.GetApiVersion()) == api.Group }

// SetString sets the string at path in n, creating the mappings on the
// way. An existing scalar keeps its style and comments; a new one is plain,
// as istioctl writes it, unless YAML would read it back as something other
// than a string ("123", "true", or "yes" under the YAML 1.1 the API server
// reads), then it is double-quoted.
func SetString(n *yaml.RNode, value string, path ...string) error {
	at := strings.Join(path, ".")
	cur, err := n.Pipe(yaml.Lookup(path...))
	if err != nil {
		return fmt.Errorf("%s: %s: %w", Describe(n), at, err)
	}
	if cur != nil && cur.YNode().Kind == yaml.ScalarNode && !cur.IsTaggedNull() {
		cur.YNode().Value = value
		cur.YNode().Tag = yaml.NodeTagString
		quoteIfAmbiguous(cur.YNode())
		return nil
	}
	parent, err := n.Pipe(yaml.LookupCreate(yaml.MappingNode, path[:len(path)-1]...))
	if err != nil {
		return fmt.Errorf("%s: %s: %w", Describe(n), at, err)
	}
	if err := parent.PipeE(yaml.SetField(path[len(path)-1], yaml.NewRNode(StringNode(value)))); err != nil {
		return fmt.Errorf("%s: %s: %w", Describe(n), at, err)
	}
	return nil
}

// StringNode is a new string scalar, laid out as SetString lays it out.
func StringNode(value string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: value}
	quoteIfAmbiguous(n)
	return n
}

func quoteIfAmbiguous(n *yaml.Node) {
	if n.Style != 0 {
		return
	}
	var back any
	if yaml.IsValueNonString(n.Value) || yaml.Unmarshal([]byte(n.Value), &back) != nil || back != n.Value {
		n.Style = yaml.DoubleQuotedStyle
	}
}

// SetLabel sets a label (see SetString).
func SetLabel(n *yaml.RNode, key, value string) error {
	return SetString(n, value, yaml.MetadataField, yaml.LabelsField, key)
}

// SetAnnotation sets an annotation (see SetString). A null annotations
// field (istioctl renders `annotations: null` on gateway Services) is
// dropped first: it cannot take a key.
func SetAnnotation(n *yaml.RNode, key, value string) error {
	if err := yaml.ClearEmptyAnnotations(n); err != nil {
		return fmt.Errorf("%s: %w", Describe(n), err)
	}
	return SetString(n, value, yaml.MetadataField, yaml.AnnotationsField, key)
}

// Scalar is the string at path under n (kyaml's path syntax, list
// selectors such as [name=x] included): "" when a step is missing or of
// another kind, or the value is not a scalar. Stages read optional fields
// with it, whatever shape a hand edit left.
func Scalar(n *yaml.RNode, path ...string) string {
	if n == nil {
		return ""
	}
	// Walked by hand: kyaml's accessors take a list of odd length for a
	// mapping and index past its end.
	cur := n.YNode()
	for cur != nil && cur.Kind == yaml.DocumentNode && len(cur.Content) == 1 {
		cur = cur.Content[0]
	}
	for _, p := range path {
		switch {
		case cur == nil:
			return ""
		case cur.Kind == yaml.MappingNode:
			cur = field(cur, p)
		case cur.Kind == yaml.SequenceNode && yaml.IsListIndex(p):
			cur = element(cur, p)
		default:
			return ""
		}
	}
	if cur == nil || cur.Kind != yaml.ScalarNode {
		return ""
	}
	return cur.Value
}

// element is the element of a list that a kyaml list selector "[key=value]"
// names: the first mapping whose key holds that string.
func element(list *yaml.Node, selector string) *yaml.Node {
	key, value, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(selector, "["), "]"), "=")
	if !ok || key == "" {
		return nil
	}
	for _, e := range list.Content {
		if e.Kind != yaml.MappingNode {
			continue
		}
		if v := field(e, key); v != nil && v.Kind == yaml.ScalarNode && v.Value == value {
			return e
		}
	}
	return nil
}
