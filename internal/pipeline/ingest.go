package pipeline

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// streamed are the kinds no stage looks across objects for: the ingest
// stage lays each out as soon as it is read and keeps only its bytes, so
// an output of any size (CustomResourceDefinitions are nine tenths of
// istioctl's) is never held whole as YAML nodes. Every kind a stage that
// reads several objects at once needs (gateways, node agents, pointers,
// pinned EnvoyFilters, the istiod version) stays out of this set.
var streamed = map[string]bool{"CustomResourceDefinition": true}

// ingest reads a revision's fresh output one object at a time and checks
// each: a plain Kubernetes object (not local-config, not a config of ours
// or kustomize's: the source must be istioctl's output, the run deletes
// it), with a kind, a name and a namespace that can become a path, no YAML
// alias, and an identity no other object of the output shares. A List is
// unwrapped into its items. Its comments are dropped. Objects of a streamed kind are handed to
// finish at once; the others are returned for the stages that look across
// them.
func ingest(src *fileset.File, finish func(*yaml.RNode) error) ([]*yaml.RNode, error) {
	var (
		batch []*yaml.RNode
		n     int
	)
	seen := map[object.ID]int{}
	var take func(o *yaml.RNode, where string) error
	take = func(o *yaml.RNode, where string) error {
		n++
		if isList(o) {
			items, err := o.Pipe(yaml.Lookup("items"))
			if err != nil || items == nil || items.YNode().Kind != yaml.SequenceNode {
				return fmt.Errorf("%s: %s: items must be a list of objects", src.Path, where)
			}
			for i, it := range items.Content() {
				item := yaml.NewRNode(it)
				at := fmt.Sprintf("%s items[%d]", where, i)
				if err := object.CheckShape(item); err != nil {
					return fmt.Errorf("%s: %s: %w", src.Path, at, err)
				}
				if err := take(item, at); err != nil {
					return err
				}
			}
			return nil
		}
		if err := checkSourceObject(o); err != nil {
			return fmt.Errorf("%s: %s: %w", src.Path, where, err)
		}
		id := object.IDOf(o)
		if first, dup := seen[id]; dup {
			return fmt.Errorf("%s: objects %d and %d must not share the identity %s", src.Path, first, n, id)
		}
		seen[id] = n
		// Comments would not reach every mode alike (see
		// object.ClearComments): the files are the same bytes in all.
		object.ClearComments(o)
		if streamed[o.GetKind()] {
			return finish(o)
		}
		batch = append(batch, o)
		return nil
	}
	err := src.Stream(func(o *yaml.RNode) error {
		return take(o, fmt.Sprintf("object %d (%s)", n+1, describeLoose(o)))
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: holds no objects: an empty or truncated istioctl output must not replace a revision; generate it again (istioctl manifest generate ... > %s)", src.Path, src.Path)
	}
	return batch, nil
}

// checkSourceObject is what every object of istioctl's output must be.
func checkSourceObject(o *yaml.RNode) error {
	if err := object.CheckNoAliases(o); err != nil {
		return err
	}
	if err := layout.CheckIdentity(o); err != nil {
		return err
	}
	switch {
	case object.IsLocalConfig(o):
		return fmt.Errorf("%s is local-config: istioctl output holds objects to deploy; is this file something else?", object.Describe(o))
	case object.IsOurs(o), o.GetKind() == "Kustomization", o.GetKind() == "Kptfile", o.GetApiVersion() == "kpt.dev/v1":
		return fmt.Errorf("%s is not istioctl output: the run reads and deletes its source, so it must hold only istioctl's objects", object.Describe(o))
	}
	return nil
}

func isList(o *yaml.RNode) bool {
	k := o.GetKind()
	return (k == "List" || strings.HasSuffix(k, "List")) && o.GetApiVersion() == "v1" && o.Field("items") != nil
}

// describeLoose names an object that may lack a kind or a name.
func describeLoose(o *yaml.RNode) string {
	kind, name := o.GetKind(), o.GetName()
	if kind == "" {
		kind = "object without kind"
	}
	if name == "" {
		return kind
	}
	return object.Describe(o)
}

// isIstiod reports whether o is the revision's istiod Deployment: what
// every profile of istioctl's output, and Istio's istiod chart, holds.
func isIstiod(o *yaml.RNode, rev, namespace string) bool {
	return o.GetKind() == "Deployment" && object.GroupOf(o.GetApiVersion()) == "apps" &&
		o.GetName() == "istiod-"+rev && o.GetNamespace() == namespace
}
