package pipeline

import (
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/istioctl"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/nodeagent"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// held reports whether a regeneration holds an object of its output as
// YAML nodes until the whole output is read: a stage that looks across
// objects reads more of it than its identity. Those are the gateways'
// objects (gateway.Find finds them by selectors and references, and
// gateway.PerRevision renames them), the node agents' DaemonSets and
// bindings (nodeagent.Read), and EnvoyFilters (pinned by the version of
// istiod's image). Every other object is laid out as soon as it is read
// and only its bytes are kept, so that no output is held whole as YAML
// nodes, whatever its size or number of objects: CustomResourceDefinitions
// are nine tenths of istioctl's output, and an output may hold thousands
// of small ConfigMaps. (Of those, the ones a node agent may claim by
// reference wait for their folder: see byReference.)
func held(o *yaml.RNode) bool { return heldKinds[o.GetKind()] }

var heldKinds = func() map[string]bool {
	m := map[string]bool{"EnvoyFilter": true}
	for _, k := range append(slices.Clone(gateway.Kinds), nodeagent.Read...) {
		m[k] = true
	}
	return m
}()

// byReference reports whether an object that is not held may still belong
// to a node agent, which claims it by its identity (nodeagent.Set): a
// ConfigMap or ClusterRole. Its folder is known once the whole output is
// read; its bytes do not depend on it.
func byReference(o *yaml.RNode) bool {
	return !held(o) && slices.Contains(nodeagent.Kinds, o.GetKind())
}

// ingest reads a revision's fresh output one object at a time and checks
// each: a plain Kubernetes object (not local-config, not a config of ours
// or kustomize's: the source must be istioctl's output, the run deletes
// it), with a kind, a name and a namespace that can become a path, no YAML
// alias, not labelled for another revision than rev, and an identity no
// other object of the output shares. A List is unwrapped into its items.
// Its comments are dropped. Objects that are not held are handed to stream
// at once; the others are returned for the stages that look across them.
func ingest(src *fileset.File, rev string, stream func(*yaml.RNode) error) ([]*yaml.RNode, error) {
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
		if err := checkSourceObject(o, rev); err != nil {
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
		if !held(o) {
			return stream(o)
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

// checkSourceObject is what every object of revision rev's istioctl
// output must be.
func checkSourceObject(o *yaml.RNode, rev string) error {
	if err := object.CheckNoAliases(o); err != nil {
		return err
	}
	if err := layout.CheckIdentity(o); err != nil {
		return err
	}
	if other := istioctl.OtherRevision(o, rev); other != "" {
		return fmt.Errorf("%s is labelled %s=%s: revision %q's output must hold only its own objects: is it revision %q's output, or two outputs in one file? Generate revision %q's with --set revision=%s",
			object.Describe(o), api.RevisionLabel, other, rev, other, rev, rev)
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
