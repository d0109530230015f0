package gateway

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

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

// subset reports whether every entry of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
