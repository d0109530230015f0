package gateway

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// scalar returns the scalar at path under n, or "" when it is absent or not
// a scalar.
func scalar(n *yaml.RNode, path ...string) string {
	if n == nil {
		return ""
	}
	v, err := n.Pipe(yaml.Lookup(path...))
	if err != nil || v == nil || v.YNode().Kind != yaml.ScalarNode {
		return ""
	}
	return yaml.GetValue(v)
}

// stringMap reads the string map at path under n; nil when absent or null.
func stringMap(n *yaml.RNode, path ...string) (map[string]string, error) {
	m, err := n.Pipe(yaml.Lookup(path...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(path, "."), err)
	}
	if yaml.IsMissingOrNull(m) {
		return nil, nil
	}
	if m.YNode().Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: must be a map", strings.Join(path, "."))
	}
	out := map[string]string{}
	c := m.Content()
	for i := 0; i+1 < len(c); i += 2 {
		out[c[i].Value] = c[i+1].Value
	}
	return out, nil
}

// stringList reads the list of scalars at path under n; nil when absent.
func stringList(n *yaml.RNode, path ...string) ([]string, error) {
	l, err := n.Pipe(yaml.Lookup(path...))
	if err != nil {
		return nil, err
	}
	if yaml.IsMissingOrNull(l) {
		return nil, nil
	}
	if l.YNode().Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("must be a list")
	}
	out := make([]string, 0, len(l.Content()))
	for _, e := range l.Content() {
		out = append(out, e.Value)
	}
	return out, nil
}

// setString sets the string at path under n, creating the maps on the way.
// An existing scalar is edited in place, so its comments and style survive.
func setString(n *yaml.RNode, value string, path ...string) error {
	cur, err := n.Pipe(yaml.Lookup(path...))
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(path, "."), err)
	}
	if cur != nil && cur.YNode().Kind == yaml.ScalarNode && !cur.IsTaggedNull() {
		cur.YNode().Value = value
		cur.YNode().Tag = yaml.NodeTagString
		quoteIfAmbiguous(cur.YNode())
		return nil
	}
	parent, err := n.Pipe(yaml.LookupCreate(yaml.MappingNode, path[:len(path)-1]...))
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(path, "."), err)
	}
	v := yaml.NewStringRNode(value)
	quoteIfAmbiguous(v.YNode())
	if err := parent.PipeE(yaml.SetField(path[len(path)-1], v)); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(path, "."), err)
	}
	return nil
}

// quoteIfAmbiguous quotes a string that a YAML 1.1 reader (sigs.k8s.io/yaml,
// as kubectl and Flux use) would take for another type, such as a revision
// named "1e3".
func quoteIfAmbiguous(n *yaml.Node) {
	if n.Style == 0 && yaml.IsValueNonString(n.Value) {
		n.Style = yaml.DoubleQuotedStyle
	}
}

// setAnnotation sets an annotation, unquoted like the rest of the output
// unless the value needs quotes.
func setAnnotation(n *yaml.RNode, key, value string) error {
	// A null annotations field (istioctl renders `annotations: null` on
	// gateway Services) cannot take a key: drop it first.
	if err := yaml.ClearEmptyAnnotations(n); err != nil {
		return err
	}
	return setString(n, value, yaml.MetadataField, yaml.AnnotationsField, key)
}

// subset reports whether every entry of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
