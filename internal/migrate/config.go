package migrate

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Kind is the kind of the migration's function config.
const Kind = api.KindRevisionMigration

// DefaultTag is the revision tag istio-injection=enabled resolves to.
const DefaultTag = "default"

// RevisionMigration is the function config that moves namespaces from one
// revision (or tag) to another.
type RevisionMigration struct {
	// APIVersion is fn.istio-gitops.dev/v1alpha1.
	APIVersion string `json:"apiVersion"`
	// Kind is RevisionMigration.
	Kind string `json:"kind"`
	// Metadata names the migration; annotate it
	// config.kubernetes.io/local-config: "true", as it is never deployed.
	Metadata config.Metadata `json:"metadata"`
	Spec     Spec            `json:"spec"`

	// selector is Spec.Selector as Load checked it.
	selector labels.Selector
}

// Spec says which namespaces move, and where to.
type Spec struct {
	// From is the revision or tag the namespaces are on.
	From string `json:"from"`
	// To is the revision or tag they move to.
	To string `json:"to"`
	// OwnerKey is the label, or else annotation, of a Namespace that names
	// the team owning it.
	OwnerKey string `json:"ownerKey"`
	// Owners, when set, limits the run to these teams.
	Owners []string `json:"owners,omitempty"`
	// Selector, when set, limits the run to the namespaces it matches.
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Exclude names namespaces that never move.
	Exclude []string `json:"exclude,omitempty"`
	// Workloads also rewrites pod-template istio.io/rev labels on From.
	Workloads bool `json:"workloads,omitempty"`
}

// Load reads, defaults and validates a RevisionMigration from node.
func Load(node *yaml.RNode) (*RevisionMigration, error) {
	if node == nil {
		return nil, fmt.Errorf("%s: no function config: one of kind %q with apiVersion %q must be given", Kind, Kind, api.APIVersion)
	}
	m := &RevisionMigration{}
	if errs := config.Decode(node, m); len(errs.List) > 0 {
		return nil, &config.Error{Kind: Kind, Name: object.Scalar(node, "metadata", "name"), Errs: errs.List}
	}
	m.Default()
	if err := m.Validate(); err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(m.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("%s %q: spec.selector: %w", Kind, m.Metadata.Name, err)
	}
	m.selector = sel
	return m, nil
}

// Selects reports whether spec.selector selects a namespace's labels; no
// selector, or an empty one, selects every namespace, as in Kubernetes.
func (m *RevisionMigration) Selects(lbls map[string]string) (bool, error) {
	if m.selector == nil {
		if m.Spec.Selector == nil {
			return true, nil
		}
		sel, err := metav1.LabelSelectorAsSelector(m.Spec.Selector)
		if err != nil {
			return false, fmt.Errorf("spec.selector: %w", err)
		}
		m.selector = sel
	}
	return m.selector.Matches(labels.Set(lbls)), nil
}

// Default fills the fields a user may leave out: an absent selector matches
// every namespace.
func (m *RevisionMigration) Default() {
	if m.Spec.Selector == nil {
		m.Spec.Selector = &metav1.LabelSelector{}
	}
}

// Validate reports the first invalid field, by its path in the config.
func (m *RevisionMigration) Validate() error {
	if err := m.validate(); err != nil {
		return fmt.Errorf("%s %q: %w", Kind, m.Metadata.Name, err)
	}
	return nil
}

func (m *RevisionMigration) validate() error {
	if m.APIVersion != api.APIVersion {
		return fmt.Errorf("apiVersion: %q must be %q", m.APIVersion, api.APIVersion)
	}
	if m.Kind != Kind {
		return fmt.Errorf("kind: %q must be %q", m.Kind, Kind)
	}
	s := &m.Spec
	for _, f := range []struct{ name, v string }{{"spec.from", s.From}, {"spec.to", s.To}} {
		if f.v == "" {
			return fmt.Errorf("%s: must name a revision or a revision tag", f.name)
		}
		if len(validation.IsDNS1123Label(f.v)) > 0 {
			return fmt.Errorf("%s: %q must be a revision or tag name: a DNS label such as \"1-31\" (write 1-31 for 1.31)", f.name, f.v)
		}
	}
	if s.From == s.To {
		return fmt.Errorf("spec.to: %q must differ from spec.from", s.To)
	}
	if err := validateKey(s.OwnerKey); err != nil {
		return fmt.Errorf("spec.ownerKey: %w", err)
	}
	if s.OwnerKey == api.RevisionLabel || s.OwnerKey == api.InjectionLabel {
		return fmt.Errorf("spec.ownerKey: %q must not be a label this migration changes", s.OwnerKey)
	}
	for i, o := range s.Owners {
		if strings.TrimSpace(o) == "" {
			return fmt.Errorf("spec.owners[%d]: must not be empty", i)
		}
		if j := slices.Index(s.Owners, o); j < i {
			return fmt.Errorf("spec.owners[%d]: %q must be unique, spec.owners[%d] has it too", i, o, j)
		}
	}
	for i, ns := range s.Exclude {
		if len(validation.IsDNS1123Label(ns)) > 0 {
			return fmt.Errorf("spec.exclude[%d]: %q must be a namespace name (a DNS label)", i, ns)
		}
		if j := slices.Index(s.Exclude, ns); j < i {
			return fmt.Errorf("spec.exclude[%d]: %q must be unique, spec.exclude[%d] has it too", i, ns, j)
		}
	}
	if sel := s.Selector; sel != nil {
		for _, k := range config.SortedKeys(sel.MatchLabels) {
			f := fmt.Sprintf("spec.selector.matchLabels[%q]", k)
			if err := validateKey(k); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if v := sel.MatchLabels[k]; !validLabelValue(v) {
				return fmt.Errorf("%s: %q must be a label value", f, v)
			}
		}
		for i, e := range sel.MatchExpressions {
			f := fmt.Sprintf("spec.selector.matchExpressions[%d]", i)
			if err := validateKey(e.Key); err != nil {
				return fmt.Errorf("%s.key: %w", f, err)
			}
			switch e.Operator {
			case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
				if len(e.Values) == 0 {
					return fmt.Errorf("%s.values: must not be empty for operator %s", f, e.Operator)
				}
			case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
				if len(e.Values) != 0 {
					return fmt.Errorf("%s.values: must be empty for operator %s", f, e.Operator)
				}
			default:
				return fmt.Errorf("%s.operator: %q must be In, NotIn, Exists or DoesNotExist", f, e.Operator)
			}
			for j, v := range e.Values {
				if !validLabelValue(v) {
					return fmt.Errorf("%s.values[%d]: %q must be a label value", f, j, v)
				}
			}
		}
	}
	return nil
}

// validateKey checks a label or annotation key: [prefix/]name.
func validateKey(k string) error {
	if k == "" {
		return fmt.Errorf("must be a label or annotation key such as \"team\"")
	}
	if prefix, _, ok := strings.Cut(k, "/"); ok && len(validation.IsDNS1123Subdomain(prefix)) > 0 {
		return fmt.Errorf("%q must have a DNS subdomain as prefix", k)
	}
	if len(validation.IsQualifiedName(k)) > 0 {
		return fmt.Errorf("%q must be a label or annotation key: [prefix/]name, the name at most 63 letters, digits, '-', '_' or '.'", k)
	}
	return nil
}

func validLabelValue(v string) bool {
	return len(validation.IsValidLabelValue(v)) == 0
}
