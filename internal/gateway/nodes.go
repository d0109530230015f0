package gateway

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"
)

// labelSelector reads the metav1.LabelSelector at path under n; a missing
// one selects everything, as in Kubernetes. An unknown operator is named by
// its field.
func labelSelector(n *yaml.RNode, path ...string) (labels.Selector, error) {
	at := strings.Join(path, ".")
	node, err := n.Pipe(yaml.Lookup(path...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	if yaml.IsMissingOrNull(node) {
		return labels.Everything(), nil
	}
	s, err := node.String()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	ls := &metav1.LabelSelector{}
	if err := k8syaml.Unmarshal([]byte(s), ls); err != nil {
		return nil, fmt.Errorf("%s: must be a label selector: %w", at, err)
	}
	for i, r := range ls.MatchExpressions {
		switch r.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
		default:
			return nil, fmt.Errorf("%s.matchExpressions[%d].operator: %q must be In, NotIn, Exists or DoesNotExist", at, i, r.Operator)
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, fmt.Errorf("%s: must be a label selector: %w", at, err)
	}
	return sel, nil
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

// subset reports whether every entry of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
