package pipeline

import (
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/envoyfilter"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/pointer"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

// Destination is where an object of a revision's fresh output goes.
type Destination int

const (
	// ToRevision is <rev>/generated/: the revision's own objects.
	ToRevision Destination = iota
	// ToCommon is common/: objects that exist once per cluster, taken
	// from the newest revision listed.
	ToCommon
	// ToNodeAgents is <rev>/generated/node-agents/: ambient's node agents,
	// kept per revision and rendered into common/ from
	// spec.nodeAgents.revision.
	ToNodeAgents
	// Dropped objects are not written; every drop is reported.
	Dropped
)

// Facts are what the rules need to know beyond the object itself.
type Facts struct {
	// Revision is the revision whose output holds the object, Version its
	// Istio version.
	Revision, Version string
	// Newest is the newest revision listed: it owns common/.
	Newest string
	// PerRevisionGateways is spec.gateways.perRevision.
	PerRevisionGateways bool
	// Namespace is spec.namespace, Active spec.activeRevision and Tags
	// spec.tags: what the pointers the output holds must agree with.
	Namespace, Active string
	Tags              map[string]string
	// Gateway reports whether the object belongs to a gateway component,
	// NodeAgent whether it belongs to an ambient node agent.
	Gateway, NodeAgent bool
}

// Decision is where Classify sends an object, and why when it is dropped.
type Decision struct {
	Destination Destination
	// Reason says why a dropped object is dropped.
	Reason string
	// Warn reports whether the drop deserves a warning: the output held
	// something the config decides otherwise.
	Warn bool
}

// Classify applies the contract's rules of where each object goes,
// decided from the object alone and never from how many revisions exist
// today, so adding or removing a revision never moves an object between
// folders. The rules, in the order they apply:
//
//  5. An EnvoyFilter pinned to another Istio version is dropped.
//  4. An object the run renders itself from the config (the default
//     revision's istiod Service and istiod-default-validator, revision
//     tags, which istioctl renders for values.defaultRevision and
//     values.revisionTags) is dropped when the config renders it too,
//     pointing at the same revision; otherwise the run is refused, saying
//     which line of the config to write: spec.activeRevision and spec.tags
//     alone decide where they point.
//  1. A name that carries the revision as a dash-separated token
//     (istiod-1-31, istio-validator-1-31-istio-system): the revision.
//  2. A gateway object: the revision when gateways are per revision (it is
//     renamed <name>-<rev>), else common/ (upgraded in place).
//  3. An ambient node agent (ztunnel, istio-cni and what belongs to them):
//     kept with the revision, deployed from spec.nodeAgents.revision.
//  3. Anything else: common/, from the newest revision; the older
//     revisions' copies are dropped.
//
// The reason is set for drops. TestClassify, next to this file, is their
// spec: one row per rule.
func Classify(o *yaml.RNode, f Facts) (Decision, error) {
	pinned, why, err := envoyfilter.Pinned(o, f.Version)
	switch {
	case err != nil:
		return Decision{}, err
	case pinned:
		return Decision{Destination: Dropped, Reason: "dropped: " + why}, nil
	case pointer.IsPointer(o):
		return pointerDecision(o, f)
	case revision.InName(o.GetName(), f.Revision):
		return Decision{Destination: ToRevision}, nil
	case f.Gateway && f.PerRevisionGateways:
		return Decision{Destination: ToRevision}, nil
	case f.NodeAgent:
		return Decision{Destination: ToNodeAgents}, nil
	case f.Revision == f.Newest:
		return Decision{Destination: ToCommon}, nil
	}
	return Decision{Destination: Dropped, Reason: fmt.Sprintf("not written: common/ is taken from the newest revision %q", f.Newest)}, nil
}

// pointerDecision drops a pointer object of the output that the config
// renders itself, pointing at the same revision (or at none in particular:
// Istio's base chart renders istiod-default-validator for whichever
// revision is the default). A pointer the config does not render, or
// points elsewhere, is refused: dropping it would silently undo what the
// IstioOperator asked for, and rendering it from a revision's output would
// make a tag move with a regeneration instead of a config edit, and
// disappear when the revision is retired.
func pointerDecision(o *yaml.RNode, f Facts) (Decision, error) {
	target := pointer.TargetOf(o)
	tag := pointer.TagOf(o, f.Namespace)
	if tag == "" {
		if target != "" && target != f.Active {
			return Decision{}, fmt.Errorf("%s makes revision %q the default revision (values.defaultRevision in its IstioOperator), but spec.activeRevision is %q: the default revision is decided by spec.activeRevision alone; remove values.defaultRevision from revision %q's IstioOperator and generate it again, or set spec.activeRevision: %s to make it the default",
				object.Describe(o), target, f.Active, f.Revision, target)
		}
		return Decision{Destination: Dropped, Reason: fmt.Sprintf("dropped: gives way to the object rendered from spec.activeRevision (%q)", f.Active), Warn: true}, nil
	}
	if target == "" {
		target = f.Revision
	}
	rev, inTags := f.Tags[tag]
	switch {
	case inTags && rev == target:
		return Decision{Destination: Dropped, Reason: fmt.Sprintf("dropped: gives way to the object rendered from spec.tags.%s (%q); remove %q from values.revisionTags in the IstioOperator", tag, rev, tag), Warn: true}, nil
	case !inTags && tag == pointer.DefaultTag && target == f.Active:
		return Decision{Destination: Dropped, Reason: fmt.Sprintf("dropped: gives way to the object rendered from spec.activeRevision (%q), which the default tag follows while spec.tags has none; remove %q from values.revisionTags in the IstioOperator", f.Active, tag), Warn: true}, nil
	case inTags:
		return Decision{}, fmt.Errorf("%s points tag %q at revision %q (values.revisionTags in its IstioOperator), but spec.tags[%q] is %q: revision tags are rendered from spec.tags alone; remove %q from values.revisionTags in revision %q's IstioOperator and generate it again, or set %s: %s under spec.tags to move the tag",
			object.Describe(o), tag, target, tag, rev, tag, f.Revision, tag, target)
	case tag == pointer.DefaultTag:
		return Decision{}, fmt.Errorf("%s points the default tag at revision %q (values.revisionTags in its IstioOperator), but the default tag follows spec.activeRevision %q: revision tags are rendered from spec.tags alone; move it there: add `default: %s` under spec.tags, and remove %q from values.revisionTags in revision %q's IstioOperator",
			object.Describe(o), target, f.Active, target, tag, f.Revision)
	}
	return Decision{}, fmt.Errorf("%s renders tag %q for revision %q (values.revisionTags in its IstioOperator), but spec.tags has no such tag: revision tags are rendered from spec.tags alone; move it there: add `%s: %s` under spec.tags, and remove %q from values.revisionTags in revision %q's IstioOperator",
		object.Describe(o), tag, target, tag, target, tag, f.Revision)
}
