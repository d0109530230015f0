// Package pointer renders the objects that exist once per cluster and point
// at one revision: the `istiod` Service and the `istiod-default-validator` of
// the active revision, and the revision tags (`istio-revision-tag-<tag>` and
// `istiod-revision-tag-<tag>`). They are rendered offline from the target
// revision's own istioctl output, the way istioctl renders them, so Git holds
// what `istioctl tag generate` or `--set values.defaultRevision` would have
// applied. (Their webhooks get the drift guards of package webhook.)
package pointer

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

const (
	// DefaultTag is the revision tag whose webhooks also serve the legacy
	// `istio-injection=enabled` and `sidecar.istio.io/inject` selectors.
	DefaultTag = "default"
	// DefaultValidatorName is the ValidatingWebhookConfiguration that
	// validates Istio config for the default revision.
	DefaultValidatorName = "istiod-default-validator"
	// IstiodServiceName is the unrevisioned Service clients reach istiod by.
	IstiodServiceName = "istiod"
	// TagWebhookPrefix starts the name of a tag's MutatingWebhookConfiguration.
	TagWebhookPrefix = "istio-revision-tag-"
	// TagServicePrefix starts the name of a tag's Service.
	TagServicePrefix = "istiod-revision-tag-"

	// defaultNamespace is the one control-plane namespace Istio's charts do
	// not append to cluster-scoped webhook names.
	defaultNamespace = "istio-system"

	kindService   = "Service"
	kindConfigMap = "ConfigMap"
	admissionV1   = "admissionregistration.k8s.io/v1"
	admissionGrp  = "admissionregistration.k8s.io/"
)

// IsPointer reports whether obj is one of the objects that rule 4 says the
// function renders itself: istiod-default-validator, istio-revision-tag-*,
// istiod-revision-tag-* and the unrevisioned istiod Service. istioctl emits
// them when the IstioOperator sets values.defaultRevision or
// values.revisionTags, or has no revision; the pipeline drops them from a
// revision's output (with a warning) so that spec.activeRevision and
// spec.tags alone decide where they point.
func IsPointer(obj *yaml.RNode) bool {
	if obj == nil {
		return false
	}
	name := obj.GetName()
	switch obj.GetKind() {
	case webhook.KindValidating:
		return webhook.IsAdmission(obj) && name == DefaultValidatorName
	case webhook.KindMutating:
		return webhook.IsAdmission(obj) && strings.HasPrefix(name, TagWebhookPrefix)
	case kindService:
		return obj.GetApiVersion() == "v1" && (name == IstiodServiceName || strings.HasPrefix(name, TagServicePrefix))
	}
	return false
}

// Field is the config field that renders a pointer object (see IsPointer):
// spec.tags for the tag objects, spec.activeRevision for the others.
func Field(obj *yaml.RNode) string {
	if n := obj.GetName(); strings.HasPrefix(n, TagWebhookPrefix) || strings.HasPrefix(n, TagServicePrefix) {
		return config.FieldTags
	}
	return config.FieldActiveRevision
}

// TagOf is the revision tag a tag object (see IsPointer) renders: its
// istio.io/tag label, as istioctl and the charts set it, else the name
// without its prefix (and without the -<namespace> suffix of a webhook
// outside istio-system); "" for the other pointers.
func TagOf(obj *yaml.RNode, namespace string) string {
	name := obj.GetName()
	if !strings.HasPrefix(name, TagWebhookPrefix) && !strings.HasPrefix(name, TagServicePrefix) {
		return ""
	}
	if tag := obj.GetLabels()[api.TagLabel]; tag != "" {
		return tag
	}
	if strings.HasPrefix(name, TagServicePrefix) {
		return strings.TrimPrefix(name, TagServicePrefix)
	}
	return strings.TrimSuffix(strings.TrimPrefix(name, TagWebhookPrefix), namespaceSuffix(namespace))
}

// TargetOf is the revision a pointer object points at: its istio.io/rev
// label, or "" when the object names none (Istio's base chart labels its
// istiod-default-validator istio.io/rev: default and points it at the
// unrevisioned istiod Service, whichever revision that selects).
func TargetOf(obj *yaml.RNode) string {
	if rev := obj.GetLabels()[api.RevisionLabel]; rev != DefaultTag {
		return rev
	}
	return ""
}

// checkLabel rejects a name that cannot become part of an object name.
func checkLabel(what, v string) error {
	if len(validation.IsDNS1123Label(v)) > 0 {
		return fmt.Errorf("%s %q must be a DNS label (lower-case letters, digits and dashes)", what, v)
	}
	return nil
}

// namespaceSuffix is what Istio's charts append to cluster-scoped webhook
// names outside istio-system, so two control planes do not collide.
func namespaceSuffix(namespace string) string {
	if namespace == defaultNamespace {
		return ""
	}
	return "-" + namespace
}

// find returns the one object of kind, namespace (empty for
// cluster-scoped) and name among objs, or nil.
func find(objs []*yaml.RNode, kind, namespace, name string) (*yaml.RNode, error) {
	var found *yaml.RNode
	for _, o := range objs {
		if o.GetKind() != kind || o.GetName() != name || o.GetNamespace() != namespace {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%s must be unique in the revision's output, found it twice", object.Describe(o))
		}
		found = o
	}
	return found, nil
}

// describe names an object that may be missing: Kind namespace/name.
func describe(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// mustFind is find, with an error naming the missing object.
func mustFind(objs []*yaml.RNode, kind, namespace, name, rev, why string) (*yaml.RNode, error) {
	o, err := find(objs, kind, namespace, name)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("%s must be in revision %q: %s", describe(kind, namespace, name), rev, why)
	}
	if got := o.GetLabels()[api.RevisionLabel]; got != rev {
		return nil, fmt.Errorf("%s: label %s must be %q, not %q", object.Describe(o), api.RevisionLabel, rev, got)
	}
	return o, nil
}

// newObject starts an object of ours: apiVersion, kind and name, with
// labels and annotations copied from src less the annotations kyaml's
// readers and writers keep (file paths, indexes).
func newObject(apiVersion, kind, namespace, name string, src *yaml.RNode, labels map[string]string) (*yaml.RNode, error) {
	obj := yaml.NewMapRNode(nil)
	obj.SetApiVersion(apiVersion)
	obj.SetKind(kind)
	if err := obj.SetName(name); err != nil {
		return nil, err
	}
	if namespace != "" {
		if err := obj.SetNamespace(namespace); err != nil {
			return nil, err
		}
	}
	if err := obj.SetLabels(labels); err != nil {
		return nil, err
	}
	annotations := map[string]string{}
	for k, v := range src.GetAnnotations() {
		if !layout.IsReaderAnnotation(k) {
			annotations[k] = v
		}
	}
	if len(annotations) > 0 {
		if err := obj.SetAnnotations(annotations); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

// sortFields orders every mapping under n by key, recursively: istioctl
// prints objects that way (Kubernetes' serializer sorts keys), so the
// objects rendered here read, and diff, like istioctl's own.
func sortFields(n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		type pair struct{ k, v *yaml.Node }
		pairs := make([]pair, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			pairs = append(pairs, pair{n.Content[i], n.Content[i+1]})
		}
		slices.SortStableFunc(pairs, func(a, b pair) int { return strings.Compare(a.k.Value, b.k.Value) })
		n.Content = n.Content[:0]
		for _, p := range pairs {
			sortFields(p.v)
			n.Content = append(n.Content, p.k, p.v)
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			sortFields(c)
		}
	}
}

// withLabel returns a copy of m with k set to v.
func withLabel(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

// stringList is a YAML sequence of strings, quoted where YAML would read
// them as something else ("false", "true").
func stringList(values ...string) *yaml.RNode {
	seq := yaml.NewListRNode()
	for _, v := range values {
		seq.YNode().Content = append(seq.YNode().Content, yaml.NewStringRNode(v).YNode())
	}
	return seq
}
