package schema

import (
	"github.com/invopop/jsonschema"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/migrate"
	"github.com/istio-gitops/istio-gitops/internal/patch"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

// A rule adds to the schema of one field what the loader checks of it.
type rule struct {
	path  string
	apply func(*jsonschema.Schema)
}

// Patterns the loaders check, as ECMA-262 and Go regexps alike.
const (
	dnsLabel     = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	dnsSubdomain = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// version is an Istio version such as 1.31.0.
	version = `^v?[0-9]+\.[0-9]+(\.[0-9]+)?([-+][0-9A-Za-z.-]+)?$`
	// relPath is a clean relative path inside the tree: no empty, "." or
	// ".." segment, no backslash.
	relPath = `^(([^./\\][^/\\]*|\.[^./\\][^/\\]*|\.\.[^/\\]+)/)*([^./\\][^/\\]*|\.[^./\\][^/\\]*|\.\.[^/\\]+)$`
	// besidePath is a clean relative path to something beside the tree:
	// "." or "../" segments first, then no empty, "." or ".." segment.
	besidePath = `^(\.|(\.\./)*(\.\.|([^./\\][^/\\]*|\.[^./\\][^/\\]*|\.\.[^/\\]+)(/([^./\\][^/\\]*|\.[^./\\][^/\\]*|\.\.[^/\\]+))*))$`
	// rfc3339 is a time such as 2026-06-01T00:00:00Z.
	rfc3339 = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`
	// duration is a Go duration such as 10m or 1h30m.
	duration = `^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`
	// host is a DNS name, or a wildcard one label deep.
	host = `^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// annotationGlob is an annotation key, optionally ending in "*".
	annotationGlob = `^[^*]+\*?$`
	// labelKey is a label or annotation key: [DNS subdomain/]name, the name
	// at most 63 characters.
	labelKey   = `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	labelValue = `^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`
	// gitDiff is the text of a git diff: a "diff --git" line somewhere.
	gitDiff = `(^|\n)diff --git `
	// notBlank has a character other than white space.
	notBlank = `\S`
)

func size(n uint64) *uint64 { return &n }

func pattern(p string, maxLength uint64) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) {
		s.Pattern = p
		if maxLength > 0 {
			s.MaxLength = size(maxLength)
		}
	}
}

func oneOf(values ...any) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) { s.Enum = values }
}

func noneOf(values ...any) *jsonschema.Schema {
	return &jsonschema.Schema{Enum: values}
}

func all(fs ...func(*jsonschema.Schema)) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) {
		for _, f := range fs {
			f(s)
		}
	}
}

func defaults(v any) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) { s.Default = v }
}

// describe sets a description where the Go type has no comment.
func describe(d string) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) {
		if s.Description == "" {
			s.Description = d
		}
	}
}

func unique(s *jsonschema.Schema) { s.UniqueItems = true }

// required lists the fields the loader refuses to go without.
func required(fields ...string) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) { s.Required = append(s.Required, fields...) }
}

func object(props map[string]*jsonschema.Schema, required ...string) *jsonschema.Schema {
	s := &jsonschema.Schema{Required: required}
	s.Properties = jsonschema.NewProperties()
	for _, k := range config.SortedKeys(props) {
		s.Properties.Set(k, props[k])
	}
	return s
}

// header: apiVersion and kind name the one type; metadata.name is
// required, as of every object.
func header(kind string) []rule {
	return []rule{
		{"", required("apiVersion", "kind", "metadata", "spec")},
		{"apiVersion", oneOf(api.APIVersion)},
		{"kind", oneOf(kind)},
		{"metadata", required("name")},
	}
}

// revisionName is a revision's name, or a reference to one: not
// istioctl's default, nor a folder of the tree.
var revisionName = all(pattern(dnsLabel, 63), func(s *jsonschema.Schema) {
	names := []any{revision.DefaultTag}
	for _, f := range layout.Owned {
		names = append(names, f)
	}
	s.Not = noneOf(names...)
})

var istioGitOpsBase = append(header(config.Kind),
	rule{"spec", required("revisions")},
	rule{"spec.namespace", all(pattern(dnsLabel, 63), defaults(config.DefaultNamespace))},
	rule{"spec.revisions", func(s *jsonschema.Schema) { s.MinItems = size(1) }},
	rule{"spec.revisions[]", required("name")},
	rule{"spec.revisions[].name", revisionName},
	rule{"spec.revisions[].version", pattern(version, 0)},
	rule{"spec.revisions[].source", pattern(relPath, 0)},
	rule{"spec.revisions[].patchesFrom", revisionName},
	rule{"spec.activeRevision", revisionName},
	rule{"spec.tags", func(s *jsonschema.Schema) {
		s.PropertyNames = &jsonschema.Schema{Pattern: dnsLabel, MaxLength: size(63)}
	}},
	rule{"spec.tags{}", revisionName},
	rule{"spec.gateways", func(s *jsonschema.Schema) {
		// stableServices and ingress(es) need per-revision gateways.
		perRevisionOff := &jsonschema.Schema{Enum: []any{false}}
		s.AllOf = append(s.AllOf,
			&jsonschema.Schema{Not: object(map[string]*jsonschema.Schema{
				"perRevision": perRevisionOff, "stableServices": {Enum: []any{true}},
			}, "perRevision", "stableServices")},
			&jsonschema.Schema{Not: object(map[string]*jsonschema.Schema{
				"perRevision": perRevisionOff,
			}, "perRevision", "ingress")},
			&jsonschema.Schema{Not: object(map[string]*jsonschema.Schema{
				"perRevision": perRevisionOff,
			}, "perRevision", "ingresses")},
		)
	}},
	rule{"spec.gateways.perRevision", defaults(true)},
	rule{"spec.gateways.live", revisionName},
	rule{"spec.gateways.stableServices", defaults(false)},
	rule{"spec.nodeAgents.revision", revisionName},
	rule{"spec.nodeAgents.cni", revisionName},
	rule{"spec.nodeAgents.ztunnel", revisionName},
)

// ingressRules are the rules of one Ingress template's entry, at p
// (spec.gateways.ingress, spec.gateways.ingresses[]).
func ingressRules(p string) []rule {
	return []rule{
		{p + ".template", func(s *jsonschema.Schema) {
			s.MinProperties = size(1)
			s.Properties = jsonschema.NewProperties()
			s.Properties.Set("kind", &jsonschema.Schema{Enum: []any{"Ingress"}})
			// The shape every stage reads without checking.
			strings := &jsonschema.Schema{Type: "object", AdditionalProperties: &jsonschema.Schema{Type: "string"}}
			s.Properties.Set("metadata", object(map[string]*jsonschema.Schema{
				"name": {Type: "string"}, "namespace": {Type: "string"}, "labels": strings, "annotations": strings,
			}))
		}},
		{p + ".liveOnlyAnnotations[]", pattern(annotationGlob, 0)},
		{p + ".perRevision", func(s *jsonschema.Schema) {
			s.PropertyNames = &jsonschema.Schema{Pattern: dnsLabel, MaxLength: size(63)}
		}},
		{p + ".perRevision{}.annotations", func(s *jsonschema.Schema) {
			s.PropertyNames = &jsonschema.Schema{Pattern: labelKey, MaxLength: size(317)}
		}},
		{p + ".perRevision{}.labels", func(s *jsonschema.Schema) {
			s.PropertyNames = &jsonschema.Schema{Pattern: labelKey, MaxLength: size(317)}
		}},
		{p + ".perRevision{}.labels{}", pattern(labelValue, 63)},
		{p + ".hosts", func(s *jsonschema.Schema) {
			s.PropertyNames = &jsonschema.Schema{Pattern: host, MaxLength: size(253)}
		}},
		{p + ".hosts{}", revisionName},
	}
}

var istioGitOpsRules = append(append(append(istioGitOpsBase,
	ingressRules("spec.gateways.ingress")...),
	ingressRules("spec.gateways.ingresses[]")...),
	rule{"spec.webhooks.driftGuards", defaults(true)},
	rule{"spec.flux", required("path", "sourceRef")},
	rule{"spec.flux.sourceRef", required("kind", "name")},
	rule{"spec.flux.path", func(s *jsonschema.Schema) { s.MinLength = size(1) }},
	rule{"spec.flux.sourceRef.kind", oneOf("GitRepository", "OCIRepository", "Bucket")},
	rule{"spec.flux.sourceRef.name", func(s *jsonschema.Schema) { s.MinLength = size(1) }},
	rule{"spec.flux.interval", all(pattern(duration, 0), defaults("10m"),
		describe("Interval is how often Flux reconciles the Kustomizations."))},
	rule{"spec.namespaces.from", unique},
	rule{"spec.namespaces.from[]", pattern(besidePath, 0)},
	rule{"spec.patchesFrom", unique},
	rule{"spec.patchesFrom[]", pattern(besidePath, 0)},
	rule{"spec.promotion.after", unique},
	rule{"spec.promotion.after[]", all(pattern(besidePath, 0), func(s *jsonschema.Schema) { s.Not = noneOf(".") })},
	rule{"spec.promotion.soak", all(pattern(duration, 0), defaults("0s"))},
	rule{"spec.promotion.override", required("reason", "expires")},
	rule{"spec.promotion.override.reason", pattern(notBlank, 0)},
	rule{"spec.promotion.override.expires", pattern(rfc3339, 0)},
	rule{"spec.argocd", required("repoURL", "path")},
	rule{"spec.argocd.repoURL", func(s *jsonschema.Schema) { s.MinLength = size(1) }},
	rule{"spec.argocd.path", func(s *jsonschema.Schema) { s.MinLength = size(1) }},
	rule{"spec.argocd.targetRevision", defaults(config.DefaultArgoCDTargetRevision)},
	rule{"spec.argocd.project", all(pattern(dnsLabel, 63), defaults(config.DefaultArgoCDProject))},
	rule{"spec.argocd.namespace", all(pattern(dnsLabel, 63), defaults(config.DefaultArgoCDNamespace))},
	rule{"spec.argocd.name", all(pattern(dnsLabel, 63), defaults(config.DefaultArgoCDName))},
	rule{"spec.argocd.destination", func(s *jsonschema.Schema) {
		s.Not = &jsonschema.Schema{Required: []string{"server", "name"}}
	}},
)

var gitPatchRules = append(header(patch.Kind),
	// The loader reads a GitPatch's metadata loosely: only the name and
	// the local-config annotation matter.
	rule{"metadata", func(s *jsonschema.Schema) {
		s.AdditionalProperties = nil
		s.Required = append(s.Required, "annotations")
	}},
	rule{"spec", required("diff")},
	rule{"metadata.name", pattern(dnsSubdomain, 253)},
	rule{"metadata.annotations", func(s *jsonschema.Schema) {
		const localConfig = api.LocalConfigAnnotation
		s.Required = []string{localConfig}
		s.Properties = jsonschema.NewProperties()
		s.Properties.Set(localConfig, &jsonschema.Schema{Type: "string", Not: noneOf("false")})
	}},
	rule{"spec.diff", pattern(gitDiff, 0)},
	rule{"spec.revision", pattern(dnsLabel, 63)},
)

var revisionMigrationRules = append(header(migrate.Kind),
	rule{"spec", required("from", "to", "ownerKey")},
	rule{"spec.from", pattern(dnsLabel, 63)},
	rule{"spec.to", pattern(dnsLabel, 63)},
	rule{"spec.ownerKey", all(pattern(labelKey, 317), func(s *jsonschema.Schema) {
		s.Not = noneOf(api.RevisionLabel, api.InjectionLabel)
	})},
	rule{"spec.owners", unique},
	rule{"spec.owners[]", pattern(notBlank, 0)},
	rule{"spec.exclude", unique},
	rule{"spec.exclude[]", pattern(dnsLabel, 63)},
	// spec.selector is Kubernetes' metav1.LabelSelector, whose doc
	// comments the schema does not carry.
	rule{"spec.selector.matchLabels", func(s *jsonschema.Schema) {
		s.PropertyNames = &jsonschema.Schema{Pattern: labelKey, MaxLength: size(317)}
	}},
	rule{"spec.selector.matchLabels", describe("MatchLabels selects the objects carrying every one of these labels.")},
	rule{"spec.selector.matchExpressions", describe("MatchExpressions must all hold too.")},
	rule{"spec.selector.matchExpressions[]", describe("Requirement is one matchExpressions entry.")},
	rule{"spec.selector.matchExpressions[].key", describe("Key is the label's key.")},
	rule{"spec.selector.matchExpressions[].operator", describe("Operator is In, NotIn, Exists or DoesNotExist.")},
	rule{"spec.selector.matchExpressions[].values", describe("Values are the label values of In and NotIn; Exists and DoesNotExist take none.")},
	rule{"spec.selector.matchLabels{}", pattern(labelValue, 63)},
	rule{"spec.selector.matchExpressions[]", required("key", "operator")},
	rule{"spec.selector.matchExpressions[]", func(s *jsonschema.Schema) {
		// In and NotIn need values; Exists and DoesNotExist take none.
		s.AnyOf = []*jsonschema.Schema{
			object(map[string]*jsonschema.Schema{
				"operator": {Enum: []any{"In", "NotIn"}},
				"values":   {MinItems: size(1)},
			}, "values"),
			object(map[string]*jsonschema.Schema{
				"operator": {Enum: []any{"Exists", "DoesNotExist"}},
				"values":   {MaxItems: size(0)},
			}),
		}
	}},
	rule{"spec.selector.matchExpressions[].key", pattern(labelKey, 317)},
	rule{"spec.selector.matchExpressions[].operator", oneOf(string(metav1.LabelSelectorOpIn), string(metav1.LabelSelectorOpNotIn),
		string(metav1.LabelSelectorOpExists), string(metav1.LabelSelectorOpDoesNotExist))},
	rule{"spec.selector.matchExpressions[].values[]", pattern(labelValue, 63)},
)
