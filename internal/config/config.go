// Package config holds the IstioGitOps function config: its typed API,
// defaults and validation.
package config

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/revision"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/version"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

const (
	// Kind is the kind of the tree's function config.
	Kind = api.KindIstioGitOps

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
	// NodeAgents says which revision's ambient node agents are deployed.
	NodeAgents NodeAgents `json:"nodeAgents,omitempty"`
	// Flux, when set, writes Flux Kustomization objects into flux/.
	Flux *Flux `json:"flux,omitempty"`
	// ArgoCD, when set, writes Argo CD Applications into argocd/.
	ArgoCD *ArgoCD `json:"argocd,omitempty"`
	// Namespaces names where the Namespace manifests of the cluster's
	// teams are kept outside the tree.
	Namespaces Namespaces `json:"namespaces,omitempty"`
	// Promotion puts the cluster in a fleet's order: it moves to an Istio
	// version only after the clusters it follows ran it for a while.
	Promotion *Promotion `json:"promotion,omitempty"`
	// PatchesFrom are folders or files of GitPatches shared by clusters
	// (a fleet-level patches/ folder), relative to this config, read and
	// never written. Each applies to every listed revision, as the
	// revision's own patches do, its revision token rewritten from the
	// GitPatch's spec.revision to the revision's (istiod-1-30 becomes
	// istiod-1-31); a revision's own patch of the same name is used
	// instead (a port).
	PatchesFrom []string `json:"patchesFrom,omitempty"`
}

// Namespaces says where the cluster's Namespace manifests are kept.
type Namespaces struct {
	// From are folders or files of Namespace manifests (and workloads)
	// kept outside the tree, such as the teams' repositories checked out
	// beside it, relative to this config; read and never written. They
	// count for the retire guard and the status, as --namespaces does.
	From []string `json:"from,omitempty"`
}

// Promotion is the cluster's place in a fleet's order.
type Promotion struct {
	// After are the trees of the clusters this one follows (the folders
	// of their configs), relative to this config's folder, such as
	// ../../staging/istio. A run refuses to list an Istio version none of
	// them lists, or to point a pointer (activeRevision, a tag, the live
	// gateways, the node agents) at a version that is not the active
	// version of every one of them for at least soak; pointing back to a
	// version this cluster ran before, and retiring, are never refused.
	After []string `json:"after,omitempty"`
	// Soak is how long every cluster of after must have shown a version
	// active (in the committed Git history) before this one moves to it:
	// a Go duration such as 24h. Default 0s.
	Soak string `json:"soak,omitempty"`
	// Override lets the steps the order refuses through, for an
	// emergency (a CVE fix): it is printed on every run, and is an error
	// once expired.
	Override *Override `json:"override,omitempty"`
}

// Override is an emergency bypass of the order.
type Override struct {
	// Reason says why, for the pull request and every run's output.
	Reason string `json:"reason"`
	// Expires is when the bypass ends, an RFC 3339 time such as
	// 2026-06-01T00:00:00Z; after it a run fails until it is removed.
	Expires string `json:"expires"`
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
	// PatchesFrom names an older revision whose patches are carried forward
	// when this one is generated. Once they are, the older revision may be
	// retired: the copies are in this revision's patches/.
	PatchesFrom string `json:"patchesFrom,omitempty"`
	// AllowRemovals lets the next regeneration of this revision remove more
	// than a few of its objects, or of common/'s (a profile change that
	// drops the egress gateway): without it such an output is taken for a
	// truncated one and refused. Remove it once the revision is regenerated.
	AllowRemovals bool `json:"allowRemovals,omitempty"`
}

// Gateways configures gateway components.
type Gateways struct {
	// PerRevision renames gateways <gateway>-<rev> (blue/green). Default true.
	PerRevision *bool `json:"perRevision,omitempty"`
	// Live is the revision whose gateways take public traffic: the stable
	// Services select its pods, and its Ingress keeps the live-only
	// annotations. Defaults to the active revision while one revision is
	// listed (or while there are neither stable Services nor an Ingress);
	// must be set once two are, so that promoting a revision never moves
	// traffic unasked.
	Live string `json:"live,omitempty"`
	// StableServices writes one Service per gateway into common/, keeping the
	// gateway's original name and selecting the live revision's pods.
	StableServices bool `json:"stableServices,omitempty"`
	// Ingress renders one Ingress per revision in front of its gateway.
	Ingress *Ingress `json:"ingress,omitempty"`
	// Ingresses are more Ingresses per revision, each from its own template
	// with its own values and hosts (a public and an internal load
	// balancer, say), rendered as Ingress is.
	Ingresses []Ingress `json:"ingresses,omitempty"`
}

// Ingress is rendered once per revision from Template.
type Ingress struct {
	// Template is an Ingress object; its backend Service is rewritten to each
	// revision's gateway Service.
	Template map[string]any `json:"template,omitempty"`
	// LiveOnlyAnnotations are annotation keys, optionally ending in "*",
	// kept only on the live revision's Ingress.
	LiveOnlyAnnotations []string `json:"liveOnlyAnnotations,omitempty"`
	// PerRevision are annotations and labels merged over the template's on
	// one revision's Ingress (a key given here replaces the template's,
	// live-only or not), so that each revision's load balancer has its own
	// static address: revision -> values.
	PerRevision map[string]IngressValues `json:"perRevision,omitempty"`
	// Hosts moves DNS host by host: for a host of the template's rules (or
	// one name under a wildcard rule), the revision whose Ingress publishes
	// it through external-dns. Hosts not listed follow gateways.live. Once
	// set, even empty, every revision's Ingress carries
	// external-dns.alpha.kubernetes.io/ingress-hostname-source:
	// annotation-only and, when it publishes any,
	// external-dns.alpha.kubernetes.io/hostname with its hosts.
	Hosts map[string]string `json:"hosts,omitzero"`
}

// IngressValues are values for one revision's Ingress.
type IngressValues struct {
	// Annotations are set on the revision's Ingress.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels are set on the revision's Ingress.
	Labels map[string]string `json:"labels,omitempty"`
}

// NodeAgents says which revision's ambient node agents (istio-cni,
// ztunnel) run on the nodes. Istio's order is the control plane first,
// then istio-cni, then ztunnel: each is a step (and a commit) of its own.
type NodeAgents struct {
	// Revision is the revision whose node agents are deployed from common/,
	// for each agent that cni or ztunnel does not name. Defaults to the
	// active revision while one revision is listed; once two are and the
	// output has node agents, it (or both cni and ztunnel) must be set, so
	// that adding a canary never touches the nodes.
	Revision string `json:"revision,omitempty"`
	// CNI is the revision whose istio-cni node agent is deployed. Defaults
	// to revision.
	CNI string `json:"cni,omitempty"`
	// Ztunnel is the revision whose ztunnel is deployed. Defaults to
	// revision.
	Ztunnel string `json:"ztunnel,omitempty"`
}

// Config fields that point at a revision, as messages, the rendered-from
// annotation and the fleet's order name them; a tag's field is
// FieldTags + "." + its name.
const (
	FieldActiveRevision    = "spec.activeRevision"
	FieldTags              = "spec.tags"
	FieldLive              = "spec.gateways.live"
	FieldNodeAgents        = "spec.nodeAgents.revision"
	FieldNodeAgentsCNI     = "spec.nodeAgents.cni"
	FieldNodeAgentsZtunnel = "spec.nodeAgents.ztunnel"
)

// NodeAgent is the revision whose agent ("cni" or "ztunnel") is deployed,
// and the field that says so: the agent's own, else spec.nodeAgents.revision.
// The revision is empty when neither is set.
func (c *IstioGitOps) NodeAgent(agent string) (rev, field string) {
	na := c.Spec.NodeAgents
	own, f := na.Ztunnel, FieldNodeAgentsZtunnel
	if agent == "cni" {
		own, f = na.CNI, FieldNodeAgentsCNI
	}
	if own != "" {
		return own, f
	}
	return na.Revision, FieldNodeAgents
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
	// SourceRef is the Flux source that holds the tree.
	SourceRef SourceRef `json:"sourceRef"`
	// Interval is how often Flux reconciles. Default 10m.
	Interval string `json:"interval,omitempty"`
	// Timeout bounds each apply and health check.
	Timeout string `json:"timeout,omitempty"`
	// Wait makes Flux wait for every object it applies to be ready.
	Wait *bool `json:"wait,omitempty"`
	// ServiceAccountName is the account Flux impersonates to apply.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// ArgoCD configures the Argo CD Applications written into argocd/: an
// app-of-apps for the tree's root and, under it, one Application for
// common/ and one per revision.
type ArgoCD struct {
	// RepoURL is the Git repository (or Helm/OCI repository) holding the
	// tree.
	RepoURL string `json:"repoURL"`
	// TargetRevision is the branch, tag or commit to deploy. Default HEAD.
	TargetRevision string `json:"targetRevision,omitempty"`
	// Path is the tree's path in the repository, such as
	// clusters/prod/istio.
	Path string `json:"path"`
	// Project is the Argo CD project of the Applications. Default default.
	Project string `json:"project,omitempty"`
	// Namespace is where the Applications live: Argo CD's namespace.
	// Default argocd.
	Namespace string `json:"namespace,omitempty"`
	// Name is the app-of-apps' name, and the prefix of the others':
	// <name>-common, <name>-<rev>. Default istio.
	Name string `json:"name,omitempty"`
	// Destination is the cluster the Applications deploy to.
	Destination ArgoCDDestination `json:"destination,omitempty"`
}

// ArgoCDDestination names the cluster the Applications deploy to, by its
// API server URL or by its name in Argo CD.
type ArgoCDDestination struct {
	// Server is the cluster's API server URL. Default
	// https://kubernetes.default.svc (Argo CD's own cluster) when Name is
	// not set.
	Server string `json:"server,omitempty"`
	// Name is the cluster's name in Argo CD, instead of Server.
	Name string `json:"name,omitempty"`
}

// Defaults of spec.argocd.
const (
	DefaultArgoCDTargetRevision = "HEAD"
	DefaultArgoCDProject        = "default"
	DefaultArgoCDNamespace      = "argocd"
	DefaultArgoCDName           = "istio"
	DefaultArgoCDServer         = "https://kubernetes.default.svc"
)

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

// Load reads, defaults and validates an IstioGitOps from node. Every
// mistake is reported, not only the first: a field written twice, an
// unknown field (by its path, spec.revisions[1].versoin), an invalid
// value; the error is an *Error.
func Load(node *yaml.RNode) (*IstioGitOps, error) {
	cfg := &IstioGitOps{}
	errs := Decode(node, cfg)
	if errs.HasFatal() {
		// JSON's type errors lose map keys (a revision's Ingress values
		// written as a list): say where the value is.
		if len(errs.List) == 1 && errs.List[0].Type == field.ErrorTypeTypeInvalid {
			if shape := ingressShapes(node); len(shape) > 0 {
				errs.List = shape
			}
		}
		return nil, &Error{Kind: Kind, Name: object.Scalar(node, "metadata", "name"), Errs: errs.List}
	}
	cfg.Node = node
	cfg.Default()
	list := append(errs.List, cfg.Validate()...)
	if len(list) > 0 {
		return nil, &Error{Kind: Kind, Name: cfg.Metadata.Name, Errs: list}
	}
	return cfg, nil
}

// LoadResults is Load for a function: the config's mistakes also as
// results, one a field, naming the config's file.
func LoadResults(node *yaml.RNode) (*IstioGitOps, framework.Results, error) {
	cfg, err := Load(node)
	if err != nil {
		var cerr *Error
		// The error names the file too: a run prints it, not the
		// results it repeats.
		file := object.Path(node)
		if errors.As(err, &cerr) {
			return nil, cerr.Results(file), atFile(file, err)
		}
		return nil, nil, atFile(file, err)
	}
	return cfg, nil, nil
}

// atFile names file in err, unless there is none to name (a config given
// on stdin) or err names it already.
func atFile(file string, err error) error {
	if file == "" || strings.HasPrefix(err.Error(), file+":") {
		return err
	}
	return fmt.Errorf("%s: %w", file, err)
}

// Default fills the fields a user may leave out.
func (c *IstioGitOps) Default() {
	s := &c.Spec
	if s.Namespace == "" {
		s.Namespace = DefaultNamespace
	}
	for i := range s.Revisions {
		r := &s.Revisions[i]
		if r.Source == "" && r.Name != "" {
			r.Source = path.Join(r.Name, SourceFile)
		}
	}
	if s.ActiveRevision == "" && len(s.Revisions) > 0 {
		s.ActiveRevision = s.Revisions[0].Name
	}
	if s.Gateways.PerRevision == nil {
		t := true
		s.Gateways.PerRevision = &t
	}
	// With one revision there is nothing else to point at; with two, a
	// default would move traffic or node agents when the active revision
	// changes.
	if s.Gateways.Live == "" && (len(s.Revisions) == 1 || !c.MovesTraffic()) {
		s.Gateways.Live = s.ActiveRevision
	}
	if s.NodeAgents.Revision == "" && len(s.Revisions) == 1 {
		s.NodeAgents.Revision = s.ActiveRevision
	}
	if s.Webhooks.DriftGuards == nil {
		t := true
		s.Webhooks.DriftGuards = &t
	}
	if s.Flux != nil && s.Flux.Interval == "" {
		s.Flux.Interval = "10m"
	}
	if a := s.ArgoCD; a != nil {
		for _, d := range []struct {
			field *string
			v     string
		}{
			{&a.TargetRevision, DefaultArgoCDTargetRevision},
			{&a.Project, DefaultArgoCDProject},
			{&a.Namespace, DefaultArgoCDNamespace},
			{&a.Name, DefaultArgoCDName},
		} {
			if *d.field == "" {
				*d.field = d.v
			}
		}
		if a.Destination.Server == "" && a.Destination.Name == "" {
			a.Destination.Server = DefaultArgoCDServer
		}
	}
}

// MovesTraffic reports whether gateways.live decides anything: stable
// Services or an Ingress follow it.
func (c *IstioGitOps) MovesTraffic() bool {
	return c.Spec.Gateways.StableServices || len(c.Ingresses()) > 0
}

// Validate reports every invalid field, by its path in the config.
func (c *IstioGitOps) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.APIVersion != api.APIVersion {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), c.APIVersion, fmt.Sprintf("must be %q", api.APIVersion)))
	}
	if c.Kind != Kind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), c.Kind, fmt.Sprintf("must be %q", Kind)))
	}
	spec := field.NewPath("spec")
	s := &c.Spec
	if msgs := validation.IsDNS1123Label(s.Namespace); len(msgs) > 0 {
		errs = append(errs, field.Invalid(spec.Child("namespace"), s.Namespace, "must be a namespace name (a DNS label)"))
	}
	errs = append(errs, c.validateRevisions(spec.Child("revisions"))...)
	if len(s.Revisions) > 0 {
		errs = append(errs, c.listed(spec.Child("activeRevision"), s.ActiveRevision, "promote another one")...)
	}
	for _, tag := range SortedKeys(s.Tags) {
		p := spec.Child("tags").Key(tag)
		switch {
		case revision.ValidateLabel(tag) != nil:
			errs = append(errs, field.Invalid(p, tag, "a tag name must be a DNS label"))
		case slices.Contains(layout.Owned, tag):
			errs = append(errs, field.Invalid(p, tag, "a tag must not be named like a folder of the tree"))
		case slices.Contains(c.RevisionNames(), tag):
			errs = append(errs, field.Invalid(p, tag, "a tag must not be named like a revision"))
		default:
			errs = append(errs, c.listed(p, s.Tags[tag], "move its tags")...)
		}
	}
	if len(s.Revisions) > 0 {
		errs = append(errs, c.validateGateways(spec.Child("gateways"))...)
	}
	// A default taken from an unlisted activeRevision is that field's
	// mistake, reported once.
	if na := s.NodeAgents.Revision; na != "" && na != s.ActiveRevision {
		errs = append(errs, c.listed(spec.Child("nodeAgents", "revision"), na, "move the node agents to another revision")...)
	}
	for _, a := range []struct{ field, agent, rev string }{{"cni", "istio-cni", s.NodeAgents.CNI}, {"ztunnel", "ztunnel", s.NodeAgents.Ztunnel}} {
		if a.rev != "" {
			errs = append(errs, c.listed(spec.Child("nodeAgents", a.field), a.rev, "move "+a.agent+" to another revision")...)
		}
	}
	if s.Flux != nil {
		errs = append(errs, validateFlux(spec.Child("flux"), s.Flux)...)
	}
	errs = append(errs, validatePaths(spec.Child("namespaces", "from"), s.Namespaces.From, "a folder or file of Namespace manifests")...)
	errs = append(errs, validatePaths(spec.Child("patchesFrom"), s.PatchesFrom, "a folder or file of GitPatches")...)
	if s.Promotion != nil {
		errs = append(errs, validatePromotion(spec.Child("promotion"), s.Promotion)...)
	}
	if s.ArgoCD != nil {
		errs = append(errs, validateArgoCD(spec.Child("argocd"), s.ArgoCD)...)
	}
	return errs
}

// listed is the mistake of field p pointing at rev when rev is not a
// listed revision; retire says what to do before retiring one.
func (c *IstioGitOps) listed(p *field.Path, rev, retire string) field.ErrorList {
	if slices.Contains(c.RevisionNames(), rev) {
		return nil
	}
	return field.ErrorList{field.Invalid(p, rev, fmt.Sprintf("must be one of the listed revisions %q (to retire a revision, %s first)", c.RevisionNames(), retire))}
}

// validatePaths checks paths to things kept beside the tree: relative to
// the config, clean, each once.
func validatePaths(p *field.Path, paths []string, what string) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]int{}
	for i, v := range paths {
		at := p.Index(i)
		switch {
		case v == "" || path.IsAbs(v) || strings.Contains(v, `\`):
			errs = append(errs, field.Invalid(at, v, fmt.Sprintf("must be a relative path to %s, from this config's folder", what)))
		case path.Clean(v) != v:
			errs = append(errs, field.Invalid(at, v, fmt.Sprintf("must be a clean relative path (%q)", path.Clean(v))))
		default:
			if j, dup := seen[v]; dup {
				errs = append(errs, field.Invalid(at, v, fmt.Sprintf("must be listed once, [%d] has it too", j)))
			}
			seen[v] = i
		}
	}
	return errs
}

func validatePromotion(p *field.Path, pr *Promotion) field.ErrorList {
	errs := validatePaths(p.Child("after"), pr.After, "another cluster's tree")
	for i, a := range pr.After {
		if a == "." {
			errs = append(errs, field.Invalid(p.Child("after").Index(i), a, "must name another cluster's tree, not this one"))
		}
	}
	if pr.Soak != "" {
		if d, err := time.ParseDuration(pr.Soak); err != nil || d < 0 {
			errs = append(errs, field.Invalid(p.Child("soak"), pr.Soak, `must be a Go duration such as "24h" or "90m"`))
		}
	}
	if o := pr.Override; o != nil {
		if strings.TrimSpace(o.Reason) == "" {
			errs = append(errs, field.Required(p.Child("override", "reason"), "must say why the order is bypassed (it is printed on every run and shows in the pull request)"))
		}
		if o.Expires == "" {
			errs = append(errs, field.Required(p.Child("override", "expires"), `must say when the bypass ends, an RFC 3339 time such as "2026-06-01T00:00:00Z"`))
		} else if _, err := time.Parse(time.RFC3339, o.Expires); err != nil {
			errs = append(errs, field.Invalid(p.Child("override", "expires"), o.Expires, `must be an RFC 3339 time such as "2026-06-01T00:00:00Z"`))
		}
	}
	return errs
}

// Soak is spec.promotion.soak as a duration (0 when unset).
func (c *IstioGitOps) Soak() time.Duration {
	if c.Spec.Promotion == nil || c.Spec.Promotion.Soak == "" {
		return 0
	}
	d, _ := time.ParseDuration(c.Spec.Promotion.Soak)
	return d
}

// Upstreams are spec.promotion.after.
func (c *IstioGitOps) Upstreams() []string {
	if c.Spec.Promotion == nil {
		return nil
	}
	return c.Spec.Promotion.After
}

func (c *IstioGitOps) validateRevisions(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	revs := c.Spec.Revisions
	if len(revs) == 0 {
		return field.ErrorList{field.Required(p, "must list at least one revision")}
	}
	seen := map[string]int{}
	sources := map[string]int{}
	for i, r := range revs {
		at := p.Index(i)
		if err := revision.ValidateName(r.Name); err != nil {
			errs = append(errs, field.Invalid(at.Child("name"), r.Name, strings.TrimPrefix(err.Error(), fmt.Sprintf("%q ", r.Name))))
		} else if j, dup := seen[r.Name]; dup {
			errs = append(errs, field.Invalid(at.Child("name"), r.Name, fmt.Sprintf("must be unique, spec.revisions[%d] has it too", j)))
		}
		if _, dup := seen[r.Name]; !dup {
			seen[r.Name] = i
		}
		if r.Version != "" {
			if _, err := version.ParseGeneric(r.Version); err != nil {
				errs = append(errs, field.Invalid(at.Child("version"), r.Version, "must be an Istio version such as \"1.31.0\""))
			}
		}
		if err := c.validateSource(r.Source); err != nil {
			errs = append(errs, field.Invalid(at.Child("source"), r.Source, err.Error()))
		} else if j, dup := sources[r.Source]; dup {
			errs = append(errs, field.Invalid(at.Child("source"), r.Source, fmt.Sprintf("must be unique, spec.revisions[%d] reads it too", j)))
		}
		sources[r.Source] = i
		if r.PatchesFrom != "" {
			// A revision no longer listed is the pipeline's to judge: it
			// matters only when this revision is generated again.
			listedLater := slices.ContainsFunc(revs[i:], func(o Revision) bool { return o.Name == r.PatchesFrom })
			if listedLater || revision.ValidateLabel(r.PatchesFrom) != nil {
				errs = append(errs, field.Invalid(at.Child("patchesFrom"), r.PatchesFrom, fmt.Sprintf("must name an older revision listed before %q", r.Name)))
			}
		}
	}
	return errs
}

// validateSource checks a source path: inside the tree, a YAML or JSON file,
// and nothing the function owns or reads for another purpose, since the run
// consumes (deletes) it.
func (c *IstioGitOps) validateSource(p string) error {
	if p == "" || path.IsAbs(p) || strings.Contains(p, `\`) {
		return fmt.Errorf("must be a relative path")
	}
	if cl := path.Clean(p); cl != p || cl == ".." || strings.HasPrefix(cl, "../") {
		return fmt.Errorf("must be a clean path inside the tree")
	}
	switch ext := path.Ext(p); ext {
	case ".yaml", ".yml", ".json":
	default:
		return fmt.Errorf("must be a .yaml, .yml or .json file: istioctl's output")
	}
	switch base := path.Base(p); base {
	case "kustomization.yaml", "kustomization.yml", "Kustomization", "Kptfile":
		return fmt.Errorf("must not be %s: the run deletes its source once read", base)
	}
	top, rest, _ := strings.Cut(p, "/")
	if slices.Contains(layout.Owned, top) {
		return fmt.Errorf("must not be in %s/: the function owns that folder", top)
	}
	if slices.Contains(c.RevisionNames(), top) {
		if sub, _, _ := strings.Cut(rest, "/"); sub == "generated" || sub == "patches" {
			return fmt.Errorf("must not be in %s/%s/: the run reads that folder for another purpose", top, sub)
		}
	}
	return nil
}

func (c *IstioGitOps) validateGateways(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	g := c.Spec.Gateways
	switch {
	case g.Live == "":
		errs = append(errs, field.Required(p.Child("live"), fmt.Sprintf(
			"must be set once two revisions are listed: it names the revision whose gateways take public traffic (the stable Services select its pods, its Ingress keeps the live-only annotations); add `live: <the revision live today>` under spec.gateways, and change it when traffic is to move")))
	case g.Live == c.Spec.ActiveRevision:
		// Checked with activeRevision (and its default).
	case !slices.Contains(c.RevisionNames(), g.Live):
		errs = append(errs, field.Invalid(p.Child("live"), g.Live, fmt.Sprintf("must be one of the listed revisions %q (to retire a revision, switch the live gateways first)", c.RevisionNames())))
	}
	if g.StableServices && !*g.PerRevision {
		errs = append(errs, field.Forbidden(p.Child("stableServices"), "must not be true when spec.gateways.perRevision is false: the gateways' own Services already keep their names"))
	}
	errs = append(errs, c.validateIngresses(p)...)
	return errs
}

func validateFlux(p *field.Path, fl *Flux) field.ErrorList {
	var errs field.ErrorList
	if fl.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), `must be the tree's path in the source, such as "./clusters/prod/istio"`))
	}
	switch fl.SourceRef.Kind {
	case "GitRepository", "OCIRepository", "Bucket":
	default:
		errs = append(errs, field.Invalid(p.Child("sourceRef", "kind"), fl.SourceRef.Kind, "must be GitRepository, OCIRepository or Bucket"))
	}
	if fl.SourceRef.Name == "" {
		errs = append(errs, field.Required(p.Child("sourceRef", "name"), "must name the source"))
	}
	for _, d := range []struct{ name, v string }{{"interval", fl.Interval}, {"timeout", fl.Timeout}} {
		if d.v == "" && d.name == "timeout" {
			continue
		}
		if _, err := time.ParseDuration(d.v); err != nil {
			errs = append(errs, field.Invalid(p.Child(d.name), d.v, `must be a duration such as "10m"`))
		}
	}
	if sa := fl.ServiceAccountName; sa != "" {
		if msgs := validation.IsDNS1123Subdomain(sa); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("serviceAccountName"), sa, "must be a ServiceAccount name"))
		}
	}
	return errs
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
	return slices.Sorted(maps.Keys(m))
}

func validateArgoCD(p *field.Path, a *ArgoCD) field.ErrorList {
	var errs field.ErrorList
	if a.RepoURL == "" {
		errs = append(errs, field.Required(p.Child("repoURL"), "must be the URL of the repository holding the tree"))
	}
	if a.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), `must be the tree's path in the repository, such as "clusters/prod/istio"`))
	}
	for _, f := range []struct{ name, v string }{{"namespace", a.Namespace}, {"name", a.Name}, {"project", a.Project}} {
		if msgs := validation.IsDNS1123Label(f.v); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child(f.name), f.v, "must be a DNS label"))
		}
	}
	if a.Destination.Server != "" && a.Destination.Name != "" {
		errs = append(errs, field.Invalid(p.Child("destination"), a.Destination.Name, "must set server or name, not both"))
	}
	return errs
}
