package object

import (
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// CheckShape reports why an object's top level is not what every stage
// reads without checking: a mapping with scalar apiVersion and kind, a
// metadata mapping with scalar name and namespace, labels and annotations
// that map strings to strings, and no key written twice in any mapping (a
// bad merge: YAML parsers disagree on which one wins, and kustomize build
// refuses it). kyaml's accessors panic on some of these shapes; a stage
// may call them once an object passed this check.
func CheckShape(o *yaml.RNode) error {
	n := o.YNode()
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: must be a mapping (a Kubernetes object), not a %s", n.Line, KindName(n.Kind))
	}
	if err := duplicateKeys(n, ""); err != nil {
		return err
	}
	if err := checkExpansion(n); err != nil {
		return err
	}
	for _, f := range []string{"apiVersion", "kind"} {
		if err := scalarField(n, f, f); err != nil {
			return err
		}
	}
	meta := field(n, "metadata")
	if meta == nil || isNull(meta) {
		return nil
	}
	if meta.Kind != yaml.MappingNode {
		return fmt.Errorf("metadata (line %d): must be a mapping, not a %s", meta.Line, KindName(meta.Kind))
	}
	for _, f := range []string{"name", "namespace", "generateName"} {
		if err := scalarField(meta, f, "metadata."+f); err != nil {
			return err
		}
	}
	for _, f := range []string{"labels", "annotations"} {
		if err := CheckStringMap(field(meta, f), "metadata."+f); err != nil {
			return err
		}
	}
	return nil
}

// CheckStringMap reports why m, the field at (a path for messages), is
// not a map of strings, as labels and annotations must be; an absent or
// null field is fine. The error is a *ShapeError.
func CheckStringMap(m *yaml.Node, at string) error {
	if m == nil || isNull(m) {
		return nil
	}
	if m.Kind != yaml.MappingNode {
		return &ShapeError{At: at, Line: m.Line, Msg: "must be a map of strings, not a " + KindName(m.Kind)}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return &ShapeError{At: at, Line: k.Line, Msg: "keys must be strings, not a " + KindName(k.Kind)}
		}
		if v.Kind != yaml.ScalarNode {
			return &ShapeError{At: fmt.Sprintf("%s[%q]", at, k.Value), Key: k.Value, Line: v.Line, Msg: "must be a string, not a " + KindName(v.Kind)}
		}
	}
	return nil
}

// ShapeError is a value of the wrong shape: where, on which line, and what
// it must be.
type ShapeError struct {
	// At is the value's path, such as metadata.labels["app"]; Key the map
	// key it is under, when the value of a key is wrong.
	At, Key string
	Line    int
	Msg     string
}

func (e *ShapeError) Error() string { return fmt.Sprintf("%s (line %d): %s", e.At, e.Line, e.Msg) }

// CheckNoAliases reports the first YAML alias in an object: the files the
// function writes hold plain objects, and an alias (a *name pointing at an
// &name) could expand without bound wherever it is read.
func CheckNoAliases(o *yaml.RNode) error {
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		if n.Kind == yaml.AliasNode {
			return fmt.Errorf("line %d: the alias *%s must not be used: write the value out", n.Line, n.Value)
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(o.YNode())
}

// maxExpansion bounds how many nodes an object's aliases may expand to
// (the largest CRD of istioctl's output has about 50,000).
const maxExpansion = 1 << 20

// maxExpansionDepth is how deep checkExpansion counts: a node below it
// counts as one.
const maxExpansionDepth = 1000

// checkExpansion refuses an object whose aliases expand out of proportion
// (a "billion laughs"): every tool that reads it whole (kustomize build,
// the API server) would run out of time or memory. Counted once per node,
// without expanding. An object without aliases, nearly every one, is a
// tree: it is counted without the memo, which was a tenth of what a run
// allocates.
func checkExpansion(n *yaml.Node) error {
	s, aliased := treeSize(n, 0)
	if aliased {
		s = sharedSize(n)
	}
	if s > maxExpansion {
		return fmt.Errorf("its YAML aliases expand to more than %d nodes (a \"billion laughs\"): write the values out", maxExpansion)
	}
	return nil
}

// treeSize counts the nodes of a document without aliases, as sharedSize
// would; aliased is whether it met an alias, and then the count is not
// finished.
func treeSize(n *yaml.Node, depth int) (s int, aliased bool) {
	if n == nil || depth > maxExpansionDepth {
		return 1, false
	}
	if n.Kind == yaml.AliasNode {
		return 0, true
	}
	s = 1
	for _, c := range n.Content {
		cs, a := treeSize(c, depth+1)
		if a {
			return 0, true
		}
		if s += cs; s > maxExpansion {
			break
		}
	}
	return s, false
}

// sharedSize counts the nodes a document expands to, each node once
// whatever the aliases pointing at it.
func sharedSize(n *yaml.Node) int {
	memo := map[*yaml.Node]int{}
	var size func(n *yaml.Node, depth int) int
	size = func(n *yaml.Node, depth int) int {
		if n == nil || depth > maxExpansionDepth {
			return 1
		}
		if s, ok := memo[n]; ok {
			return s
		}
		memo[n] = 1 // a cycle counts once
		s := 1
		if n.Kind == yaml.AliasNode {
			s += size(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			s += size(c, depth+1)
			if s > maxExpansion {
				break
			}
		}
		memo[n] = s
		return s
	}
	return size(n, 0)
}

// duplicateKeys walks every mapping once (an alias is not followed) and
// reports the first key defined twice, by its path and lines. The path is
// put together only for the error, on the way back up: building it for
// every key was a tenth of what a run allocates.
func duplicateKeys(n *yaml.Node, at string) error {
	if err := dupKey(n); err != nil {
		for i := len(err.steps) - 1; i >= 0; i-- {
			at = err.steps[i].from(at)
		}
		err.Path, err.steps = at, nil
		return err
	}
	return nil
}

// smallMapping is how many keys a mapping may have for its keys to be
// compared pairwise rather than through a map.
const smallMapping = 16

func dupKey(n *yaml.Node) *DuplicateKeyError {
	switch n.Kind {
	case yaml.MappingNode:
		var seen map[string]int
		if len(n.Content) > 2*smallMapping {
			seen = make(map[string]int, len(n.Content)/2)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode {
				first, dup := 0, false
				if seen != nil {
					first, dup = seen[k.Value]
					seen[k.Value] = k.Line
				} else {
					for j := i - 2; j >= 0; j -= 2 {
						if p := n.Content[j]; p.Kind == yaml.ScalarNode && p.Value == k.Value {
							first, dup = p.Line, true
							break
						}
					}
				}
				if dup {
					return &DuplicateKeyError{Line: k.Line, First: first, steps: []pathStep{{key: k}}}
				}
			}
			if err := dupKey(n.Content[i+1]); err != nil {
				err.steps = append(err.steps, pathStep{key: k})
				return err
			}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for i, c := range n.Content {
			if err := dupKey(c); err != nil {
				err.steps = append(err.steps, pathStep{index: i})
				return err
			}
		}
	}
	return nil
}

// A pathStep is one step of a duplicate key's path: under a mapping's key,
// or at a sequence's index.
type pathStep struct {
	key   *yaml.Node
	index int
}

func (s pathStep) from(at string) string {
	if s.key == nil {
		return fmt.Sprintf("%s[%d]", at, s.index)
	}
	key := s.key.Value
	if s.key.Kind != yaml.ScalarNode {
		key = fmt.Sprintf("<%s at line %d>", KindName(s.key.Kind), s.key.Line)
	}
	return join(at, key)
}

// DuplicateKeyError is a key written twice in one mapping.
type DuplicateKeyError struct {
	// Path is the key's path in the object, such as spec.activeRevision.
	Path string
	// Line is the line of the second key, First of the first.
	Line, First int
	// steps is the path while it is found, innermost first.
	steps []pathStep
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("%s: must be set once, not on lines %d and %d (a merge kept both?)", e.Path, e.First, e.Line)
}

// IsDuplicateKey reports whether err is, or wraps, a DuplicateKeyError.
func IsDuplicateKey(err error) bool {
	var d *DuplicateKeyError
	return errors.As(err, &d)
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	if strings.ContainsAny(key, ".[]") {
		return fmt.Sprintf("%s[%q]", at, key)
	}
	return at + "." + key
}

func field(m *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == name {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalarField(m *yaml.Node, name, at string) error {
	v := field(m, name)
	if v == nil || v.Kind == yaml.ScalarNode {
		return nil
	}
	return fmt.Errorf("%s (line %d): must be a string, not a %s", at, v.Line, KindName(v.Kind))
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == yaml.NodeTagNull
}

// KindName names a YAML node kind for error text.
func KindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "map"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// PodMetadataPath is where a workload kind keeps the metadata of the pods
// it makes (a Pod, its own); ok is false for other kinds.
func PodMetadataPath(kind string) (p []string, ok bool) {
	switch kind {
	case "Pod":
		return []string{"metadata"}, true
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template", "metadata"}, true
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "Rollout":
		return []string{"spec", "template", "metadata"}, true
	}
	return nil, false
}

// CheckPodMetadata reports why a workload's pod metadata cannot be read as
// Istio's injector reads it: each field on the way to it must be a
// mapping, its labels and annotations maps of strings. A pod label
// written as a list would otherwise select nothing without a word, and a
// revision could be retired while the workload still names it. Other
// kinds, and a path that stops early, are fine.
func CheckPodMetadata(o *yaml.RNode) error {
	p, ok := PodMetadataPath(o.GetKind())
	if !ok {
		return nil
	}
	n, at := o.YNode(), ""
	for _, f := range p {
		if n.Kind != yaml.MappingNode {
			return &ShapeError{At: at, Line: n.Line, Msg: "must be a mapping, not a " + KindName(n.Kind)}
		}
		if n, at = field(n, f), join(at, f); n == nil || isNull(n) {
			return nil
		}
	}
	if n.Kind != yaml.MappingNode {
		return &ShapeError{At: at, Line: n.Line, Msg: "must be a mapping, not a " + KindName(n.Kind)}
	}
	for _, f := range []string{"labels", "annotations"} {
		if err := CheckStringMap(field(n, f), at+"."+f); err != nil {
			return err
		}
	}
	return nil
}
