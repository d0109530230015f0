package pipeline

import (
	"fmt"

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
// unwrapped into its items. Objects of a streamed kind are handed to
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
		if object.IsList(o) {
			items, err := object.ListItems(o)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", src.Path, where, err)
			}
			for i, item := range items {
				if err := take(item, fmt.Sprintf("%s items[%d]", where, i)); err != nil {
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
