// Package api names what istio-gitops shares with its users and with the
// tools around it, besides its configs' fields: its API group and kinds,
// and every annotation and label it sets or reads, ours and others'.
package api

// Our API.
const (
	// Group is the API group of every object of ours.
	Group = "fn.istio-gitops.dev"
	// APIVersion is the apiVersion of every object of ours.
	APIVersion = Group + "/v1alpha1"

	// KindIstioGitOps is the function config of a mesh tree.
	KindIstioGitOps = "IstioGitOps"
	// KindGitPatch is a team's git patch, in <rev>/patches/.
	KindGitPatch = "GitPatch"
	// KindRevisionMigration is the function config that moves namespaces.
	KindRevisionMigration = "RevisionMigration"
	// KindRevisionState is a revision's record, <rev>/generated/state.yaml.
	KindRevisionState = "RevisionState"
	// KindCommonState is common/'s record, common/state.yaml.
	KindCommonState = "CommonState"
	// KindAppliedPatch records one patch applied to a revision that was not
	// regenerated, <rev>/generated/applied-patches/<name>.yaml.
	KindAppliedPatch = "AppliedPatch"
)

// Annotations of ours.
const (
	// RenderedFromAnnotation marks the objects a run renders from the
	// config alone (pointers, tags, stable Services, Ingresses, node agents,
	// Flux Kustomizations); every run renders them again. Its value names
	// the config field.
	RenderedFromAnnotation = Group + "/rendered-from"
	// PointsAtAnnotation records, on an object rendered from a pointer
	// (activeRevision, a tag, gateways.live, nodeAgents.cni or ztunnel),
	// the revision the pointer named when it was rendered: each object
	// carries its own pointer, so that reverting one step's commit reverts
	// its record with it, and no two steps touch the same lines.
	PointsAtAnnotation = Group + "/points-at"
	// RenderedDigestAnnotation is, on each rendered object, the sha256 of
	// its file's bytes without this line: a hand edit of a rendered file
	// is told from a change of the config.
	RenderedDigestAnnotation = Group + "/rendered-digest"
	// LiveRevisionAnnotation names, on a stable gateway Service, the
	// revision whose gateway pods it selects, and on the live revision's
	// Ingress, that revision (the other revisions' Ingresses have none).
	LiveRevisionAnnotation = Group + "/live-revision"
	// CarriedFromAnnotation names, on a carried-forward GitPatch, the
	// patch file it was copied from.
	CarriedFromAnnotation = Group + "/carried-from"
)

// WritesTag tags a run's results that say what it writes (a folder's
// files changed): they hold only once the files are written, so a command
// that fails to write drops them.
const WritesTag = "writes"

// Others' annotations and labels.
const (
	// LocalConfigAnnotation marks an object never to be deployed
	// (kustomize, kpt).
	LocalConfigAnnotation = "config.kubernetes.io/local-config"
	// FluxPruneAnnotation set to "disabled" keeps Flux from deleting an
	// object.
	FluxPruneAnnotation = "kustomize.toolkit.fluxcd.io/prune"
	// RevisionLabel selects a control-plane revision (or a tag): on a
	// namespace, a pod, a webhook, istiod's own objects.
	RevisionLabel = "istio.io/rev"
	// TagLabel names the tag of a tag webhook or Service; istiod's tag
	// watcher reads it.
	TagLabel = "istio.io/tag"
	// InjectionLabel is the legacy namespace label; it takes precedence
	// over istio.io/rev.
	InjectionLabel = "istio-injection"
	// InjectLabel opts a single pod in or out of injection.
	InjectLabel = "sidecar.istio.io/inject"
	// InjectTemplatesAnnotation asks the injector for templates, such as
	// "gateway".
	InjectTemplatesAnnotation = "inject.istio.io/templates"
)
