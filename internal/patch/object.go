package patch

import "github.com/istio-gitops/istio-gitops/internal/config"

// GitPatch is a user's git patch kept in <rev>/patches/ (local-config),
// applied on top of the revision's generated files. Parse reads and checks
// it; this type gives its shape (and its JSON Schema).
type GitPatch struct {
	// APIVersion is fn.istio-gitops.dev/v1alpha1.
	APIVersion string `json:"apiVersion"`
	// Kind is GitPatch.
	Kind string `json:"kind"`
	// Metadata names the patch; it must carry the annotation
	// config.kubernetes.io/local-config: "true", as it is never deployed.
	Metadata config.Metadata `json:"metadata"`
	Spec     GitPatchSpec    `json:"spec"`
}

// GitPatchSpec holds the diff.
type GitPatchSpec struct {
	// Diff is the text of a `git diff` or `git format-patch` that modifies
	// files of the revision's generated/ folder, with paths relative to the
	// revision folder or to the tree root, after git's a/ and b/ prefixes
	// (`istio-gitops patch import` writes it).
	Diff string `json:"diff"`
	// Revision is the revision the diff was made against. A GitPatch
	// shared by clusters (spec.patchesFrom of the IstioGitOps config) must
	// name it: the token is rewritten to each revision the patch applies
	// to. In <rev>/patches/ it may be left out, and if set must be <rev>.
	Revision string `json:"revision,omitempty"`
}
