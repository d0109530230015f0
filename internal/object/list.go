package object

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// IsList reports whether o is a list of objects as `kubectl get -o yaml`
// writes one: apiVersion v1, kind List (or a kind's own list, such as
// NamespaceList), and items.
func IsList(o *yaml.RNode) bool {
	n := o.YNode()
	return n.Kind == yaml.MappingNode && field(n, "items") != nil &&
		Scalar(o, "apiVersion") == "v1" && strings.HasSuffix(Scalar(o, "kind"), "List")
}

// ListItems returns the objects of a List, in order, each checked as
// CheckShape checks a document. They are the List's own nodes: an edit of
// an item is an edit of the List, and is written back inside it. An error
// names the item (items[1]).
func ListItems(list *yaml.RNode) ([]*yaml.RNode, error) {
	items := field(list.YNode(), "items")
	if items == nil || isNull(items) {
		return nil, nil
	}
	if items.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("items (line %d): must be a list of objects, not a %s", items.Line, KindName(items.Kind))
	}
	out := make([]*yaml.RNode, 0, len(items.Content))
	for i, it := range items.Content {
		n := yaml.NewRNode(it)
		if err := CheckShape(n); err != nil {
			return nil, fmt.Errorf("items[%d]: %w", i, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Unwrap returns the objects objs hold, in order: each object as it is,
// and in place of a List, its items (see Items). Every reader of
// Namespaces and workloads goes through it: `kubectl get ns -o yaml`
// writes a List. An error names the List by its document index, and the
// item.
func Unwrap(objs []*yaml.RNode) ([]*yaml.RNode, error) {
	if !slices.ContainsFunc(objs, IsList) {
		return objs, nil
	}
	var out []*yaml.RNode
	for _, o := range objs {
		err := Items(o, func(it *yaml.RNode, _ string) error {
			out = append(out, it)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", Index(o), Scalar(o, "kind"), err)
		}
	}
	return out, nil
}

// Items calls fn with o, or when o is a List with each of its items, a
// List in a List too, each with its place in o: "" for o itself,
// "items[2]", "items[0].items[1]".
func Items(o *yaml.RNode, fn func(obj *yaml.RNode, at string) error) error {
	return items(o, "", fn)
}

func items(o *yaml.RNode, at string, fn func(*yaml.RNode, string) error) error {
	if !IsList(o) {
		return fn(o, at)
	}
	list, err := ListItems(o)
	if err != nil {
		if at != "" {
			return fmt.Errorf("%s.%w", at, err)
		}
		return err
	}
	for i, it := range list {
		where := fmt.Sprintf("items[%d]", i)
		if at != "" {
			where = at + "." + where
		}
		if err := items(it, where, fn); err != nil {
			return err
		}
	}
	return nil
}
