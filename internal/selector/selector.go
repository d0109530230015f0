// Package selector holds Kubernetes' label selector (metav1.LabelSelector)
// and its matching, for configs that select namespaces and for objects
// whose selectors pick pods.
package selector

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"
)

// LabelSelector is metav1.LabelSelector.
type LabelSelector struct {
	// MatchLabels selects the objects carrying every one of these labels.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
	// MatchExpressions must all hold too.
	MatchExpressions []Requirement `json:"matchExpressions,omitempty"`
}

// Requirement is one matchExpressions entry.
type Requirement struct {
	// Key is the label's key.
	Key string `json:"key"`
	// Operator is In, NotIn, Exists or DoesNotExist.
	Operator string `json:"operator"`
	// Values are the label values of In and NotIn; Exists and DoesNotExist
	// take none.
	Values []string `json:"values,omitempty"`
}

// Operators are the operators a Requirement may use.
var Operators = []string{"In", "NotIn", "Exists", "DoesNotExist"}

// Read decodes the selector at path in n; a missing one is empty.
func Read(n *yaml.RNode, path ...string) (*LabelSelector, error) {
	at := strings.Join(path, ".")
	node, err := n.Pipe(yaml.Lookup(path...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	sel := &LabelSelector{}
	if yaml.IsMissingOrNull(node) {
		return sel, nil
	}
	s, err := node.String()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	if err := k8syaml.Unmarshal([]byte(s), sel); err != nil {
		return nil, fmt.Errorf("%s: must be a label selector: %w", at, err)
	}
	for i, r := range sel.MatchExpressions {
		if !slices.Contains(Operators, r.Operator) {
			return nil, fmt.Errorf("%s.matchExpressions[%d].operator: %q must be In, NotIn, Exists or DoesNotExist", at, i, r.Operator)
		}
	}
	return sel, nil
}

// Empty reports whether the selector selects everything.
func (s *LabelSelector) Empty() bool {
	return s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0)
}

// Matches reports whether labels are selected. An empty selector matches
// everything, as in Kubernetes.
func (s *LabelSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return true
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, ok := labels[e.Key]
		switch e.Operator {
		case "In":
			if !ok || !slices.Contains(e.Values, v) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(e.Values, v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		}
	}
	return true
}
