// Package config holds the IstioGitOps function config: its typed API,
// defaults and validation.
package config

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	k8syaml "sigs.k8s.io/yaml"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

const (
	// Group is the API group of every object of ours.
	Group = "fn.istio-gitops.dev"
	// APIVersion is the apiVersion of every object of ours.
	APIVersion = Group + "/v1alpha1"
	// Kind is the kind of the tree's function config.
	Kind = "IstioGitOps"

	// DefaultNamespace is the control-plane namespace istioctl installs into.
	DefaultNamespace = "istio-system"
	// SourceFile is a revision's istioctl output, relative to its folder.
	SourceFile = "istioctl-output.yaml"
)

// IstioGitOps is the function config of a mesh tree.
type IstioGitOps struct {
	// APIVersion is fn.istio-gitops.dev/v1alpha1.
	APIVersion string `json:"apiVersion"`
	// Kind is IstioGitOps.
	Kind string `json:"kind"`
	// Metadata names the config; annotate it
	// config.kubernetes.io/local-config: "true", as it is never deployed.
	Metadata Metadata `json:"metadata"`
	Spec     Spec     `json:"spec"`

	// Node is the config as read, for the fields whose order and comments
	// matter (the Ingress template).
	Node *yaml.RNode `json:"-"`
}

// Metadata is the part of ObjectMeta a function config uses.
type Metadata struct {
	// Name is the object's name.
	Name string `json:"name"`
	// Namespace is not used by the function.
	Namespace string `json:"namespace,omitempty"`
	// Labels are the object's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are the object's annotations, such as
	// config.kubernetes.io/local-config and config.kubernetes.io/function.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Spec is the tree's desired state.
type Spec struct {
	// Namespace is the control-plane namespace.
	Namespace string `json:"namespace,omitempty"`
	// Revisions are the canary control planes, oldest first. The newest
	// owns common/.
	Revisions []Revision `json:"revisions"`
	// ActiveRevision is the default revision. Defaults to the oldest listed.
	ActiveRevision string `json:"activeRevision,omitempty"`
	// Tags maps a revision tag to the revision it points at.
	Tags map[string]string `json:"tags,omitempty"`
	// Gateways says how gateway components are laid out.
	Gateways Gateways `json:"gateways,omitempty"`
	// Webhooks tunes the written webhook configurations.
	Webhooks Webhooks `json:"webhooks,omitempty"`
	// Flux, when set, writes Flux Kustomization objects into flux/.
	Flux *Flux `json:"flux,omitempty"`
}

// Revision is one canary control plane.
type Revision struct {
	// Name is the revision: a DNS label without dots (1-31 for Istio 1.31),
	// not default, common or flux.
	Name string `json:"name"`
	// Version is the Istio version; read from the istiod image tag when empty.
	Version string `json:"version,omitempty"`
	// Source is the istioctl output, relative to the tree root.
	// Defaults to <name>/istioctl-output.yaml.
	Source string `json:"source,omitempty"`
	// PatchesFrom names an older revision whose patches are carried forward.
	PatchesFrom string `json:"patchesFrom,omitempty"`
}

// Gateways configures gateway components.
type Gateways struct {
	// PerRevision renames gateways <gateway>-<rev> (blue/green). Default true.
	PerRevision *bool `json:"perRevision,omitempty"`
	// Live is the revision whose gateways take public traffic. Defaults to
	// the active revision.
	Live string `json:"live,omitempty"`
	// StableServices writes one Service per gateway into common/, keeping the
	// gateway's original name and selecting the live revision's pods.
	StableServices bool `json:"stableServices,omitempty"`
	// Ingress renders one Ingress per revision in front of its gateway.
	Ingress *Ingress `json:"ingress,omitempty"`
}

// Ingress is rendered once per revision from Template.
type Ingress struct {
	// Template is an Ingress object; its backend service is rewritten to
	// each revision's gateway.
	Template map[string]any `json:"template,omitempty"`
	// LiveOnlyAnnotations are annotation keys, optionally ending in "*",
	// kept only on the live revision's Ingress (cert-manager.io/*).
	LiveOnlyAnnotations []string `json:"liveOnlyAnnotations,omitempty"`
}

// Webhooks configures webhook configurations.
type Webhooks struct {
	// DriftGuards drops caBundle and writes failurePolicy Fail on the
	// validators, so Git agrees with what istiod writes. Default true.
	DriftGuards *bool `json:"driftGuards,omitempty"`
}

// Flux configures the Flux Kustomization objects written into flux/.
type Flux struct {
	// Path is the tree's path in the source, such as ./clusters/prod/istio.
	Path string `json:"path"`
	// SourceRef is the Flux source holding the tree.
	SourceRef SourceRef `json:"sourceRef"`
	Interval  string    `json:"interval,omitempty"`
}

// SourceRef points at the Flux source holding the tree.
type SourceRef struct {
	// Kind is GitRepository, OCIRepository or Bucket.
	Kind string `json:"kind"`
	// Name is the source's name.
	Name string `json:"name"`
	// Namespace is the source's namespace; the Kustomizations go there
	// too. Default flux-system.
	Namespace string `json:"namespace,omitempty"`
}

// Load reads, defaults and validates an IstioGitOps from node.
func Load(node *yaml.RNode) (*IstioGitOps, error) {
	s, err := node.String()
	if err != nil {
		return nil, fmt.Errorf("IstioGitOps: %w", err)
	}
	cfg := &IstioGitOps{}
	if err := CheckFields(node, cfg); err != nil {
		return nil, fmt.Errorf("IstioGitOps %q: %w", node.GetName(), err)
	}
	if err := k8syaml.Unmarshal([]byte(s), cfg); err != nil {
		return nil, fmt.Errorf("IstioGitOps %q: %w", node.GetName(), err)
	}
	cfg.Node = node
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Default fills the fields a user may leave out.
func (c *IstioGitOps) Default() {
	if c.Spec.Namespace == "" {
		c.Spec.Namespace = DefaultNamespace
	}
	for i := range c.Spec.Revisions {
		r := &c.Spec.Revisions[i]
		if r.Source == "" && r.Name != "" {
			r.Source = path.Join(r.Name, SourceFile)
		}
	}
	if c.Spec.ActiveRevision == "" && len(c.Spec.Revisions) > 0 {
		c.Spec.ActiveRevision = c.Spec.Revisions[0].Name
	}
	if c.Spec.Gateways.PerRevision == nil {
		t := true
		c.Spec.Gateways.PerRevision = &t
	}
	if c.Spec.Gateways.Live == "" {
		c.Spec.Gateways.Live = c.Spec.ActiveRevision
	}
	if c.Spec.Webhooks.DriftGuards == nil {
		t := true
		c.Spec.Webhooks.DriftGuards = &t
	}
	if c.Spec.Flux != nil && c.Spec.Flux.Interval == "" {
		c.Spec.Flux.Interval = "10m"
	}
}

var (
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	versionExpr = regexp.MustCompile(`^v?[0-9]+\.[0-9]+(\.[0-9]+)?([-+][0-9A-Za-z.-]+)?$`)
)

// Validate reports the first invalid field, by its path in the config.
func (c *IstioGitOps) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("IstioGitOps %q: %w", c.Metadata.Name, err)
	}
	return nil
}

func (c *IstioGitOps) validate() error {
	if c.APIVersion != APIVersion {
		return fmt.Errorf("apiVersion: %q must be %q", c.APIVersion, APIVersion)
	}
	if c.Kind != Kind {
		return fmt.Errorf("kind: %q must be %q", c.Kind, Kind)
	}
	s := &c.Spec
	if !dnsLabel.MatchString(s.Namespace) {
		return fmt.Errorf("spec.namespace: %q must be a DNS label", s.Namespace)
	}
	if len(s.Revisions) == 0 {
		return fmt.Errorf("spec.revisions: must list at least one revision")
	}
	seen := map[string]int{}
	sources := map[string]int{}
	for i, r := range s.Revisions {
		f := fmt.Sprintf("spec.revisions[%d]", i)
		if err := validateRevisionName(r.Name); err != nil {
			return fmt.Errorf("%s.name: %w", f, err)
		}
		if j, dup := seen[r.Name]; dup {
			return fmt.Errorf("%s.name: %q must be unique, spec.revisions[%d] has it too", f, r.Name, j)
		}
		seen[r.Name] = i
		if r.Version != "" && !versionExpr.MatchString(r.Version) {
			return fmt.Errorf("%s.version: %q must be an Istio version such as \"1.31.0\"", f, r.Version)
		}
		if err := validateRelPath(r.Source); err != nil {
			return fmt.Errorf("%s.source: %w", f, err)
		}
		if j, dup := sources[r.Source]; dup {
			return fmt.Errorf("%s.source: %q must be unique, spec.revisions[%d] reads it too", f, r.Source, j)
		}
		sources[r.Source] = i
		if r.PatchesFrom != "" {
			j, ok := seen[r.PatchesFrom]
			if !ok || j == i {
				return fmt.Errorf("%s.patchesFrom: %q must name an older revision listed before %q", f, r.PatchesFrom, r.Name)
			}
		}
	}
	if _, ok := seen[s.ActiveRevision]; !ok {
		return fmt.Errorf("spec.activeRevision: %q must be one of the listed revisions %q (to retire a revision, promote another one first)", s.ActiveRevision, c.RevisionNames())
	}
	for _, tag := range SortedKeys(s.Tags) {
		f := fmt.Sprintf("spec.tags[%q]", tag)
		if !dnsLabel.MatchString(tag) {
			return fmt.Errorf("%s: tag name must be a DNS label", f)
		}
		if _, ok := seen[tag]; ok {
			return fmt.Errorf("%s: a tag must not be named like a revision", f)
		}
		if _, ok := seen[s.Tags[tag]]; !ok {
			return fmt.Errorf("%s: %q must be one of the listed revisions %q (to retire a revision, move its tags first)", f, s.Tags[tag], c.RevisionNames())
		}
	}
	if _, ok := seen[s.Gateways.Live]; !ok {
		return fmt.Errorf("spec.gateways.live: %q must be one of the listed revisions %q (to retire a revision, switch the live gateways first)", s.Gateways.Live, c.RevisionNames())
	}
	if s.Gateways.StableServices && !*s.Gateways.PerRevision {
		return fmt.Errorf("spec.gateways.stableServices: must not be true when spec.gateways.perRevision is false: the gateways' own Services already keep their names")
	}
	if in := s.Gateways.Ingress; in != nil {
		if !*s.Gateways.PerRevision {
			return fmt.Errorf("spec.gateways.ingress: must not be set when spec.gateways.perRevision is false: each revision's Ingress fronts that revision's gateways")
		}
		if len(in.Template) == 0 {
			return fmt.Errorf("spec.gateways.ingress.template: must be an Ingress object")
		}
		if k, _ := in.Template["kind"].(string); k != "" && k != "Ingress" {
			return fmt.Errorf("spec.gateways.ingress.template.kind: %q must be \"Ingress\"", k)
		}
		for i, a := range in.LiveOnlyAnnotations {
			if a == "" || strings.Contains(strings.TrimSuffix(a, "*"), "*") {
				return fmt.Errorf("spec.gateways.ingress.liveOnlyAnnotations[%d]: %q must be an annotation key, optionally ending in \"*\"", i, a)
			}
		}
	}
	if fl := s.Flux; fl != nil {
		if fl.Path == "" {
			return fmt.Errorf("spec.flux.path: must be the tree's path in the source, such as \"./clusters/prod/istio\"")
		}
		switch fl.SourceRef.Kind {
		case "GitRepository", "OCIRepository", "Bucket":
		default:
			return fmt.Errorf("spec.flux.sourceRef.kind: %q must be GitRepository, OCIRepository or Bucket", fl.SourceRef.Kind)
		}
		if fl.SourceRef.Name == "" {
			return fmt.Errorf("spec.flux.sourceRef.name: must not be empty")
		}
		if _, err := time.ParseDuration(fl.Interval); err != nil {
			return fmt.Errorf("spec.flux.interval: %q must be a duration such as \"10m\"", fl.Interval)
		}
	}
	return nil
}

func validateRevisionName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("must not be empty")
	case n == "default":
		return fmt.Errorf("%q must not be used: istioctl reserves it for the default revision", n)
	case strings.Contains(n, "."):
		return fmt.Errorf("%q must not contain a dot: Istio revisions are DNS labels, write 1-31 for 1.31", n)
	case n == "common" || n == "flux":
		return fmt.Errorf("%q must not be used: the tree has a folder of that name", n)
	case !dnsLabel.MatchString(n) || len(n) > 63:
		return fmt.Errorf("%q must be a DNS label (lower-case letters, digits and dashes)", n)
	}
	return nil
}

func validateRelPath(p string) error {
	if p == "" || path.IsAbs(p) || strings.Contains(p, `\`) {
		return fmt.Errorf("%q must be a relative path", p)
	}
	if c := path.Clean(p); c != p || c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%q must be a clean path inside the tree", p)
	}
	return nil
}

// RevisionNames lists the revisions, oldest first.
func (c *IstioGitOps) RevisionNames() []string {
	names := make([]string, 0, len(c.Spec.Revisions))
	for _, r := range c.Spec.Revisions {
		names = append(names, r.Name)
	}
	return names
}

// Revision returns the listed revision named name.
func (c *IstioGitOps) Revision(name string) (Revision, bool) {
	i := slices.IndexFunc(c.Spec.Revisions, func(r Revision) bool { return r.Name == name })
	if i < 0 {
		return Revision{}, false
	}
	return c.Spec.Revisions[i], true
}

// Newest is the revision that owns common/.
func (c *IstioGitOps) Newest() string {
	return c.Spec.Revisions[len(c.Spec.Revisions)-1].Name
}

// PerRevisionGateways reports whether gateways are blue/green.
func (c *IstioGitOps) PerRevisionGateways() bool { return *c.Spec.Gateways.PerRevision }

// DriftGuards reports whether webhook drift guards are on.
func (c *IstioGitOps) DriftGuards() bool { return *c.Spec.Webhooks.DriftGuards }

// SortedKeys returns m's keys in order, so nothing is built by ranging over
// a map.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
