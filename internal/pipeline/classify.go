package pipeline

import (
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/envoyfilter"
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
//     tags) is dropped: spec.activeRevision and spec.tags decide them.
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
		return Decision{Destination: Dropped, Reason: "dropped: gives way to the object rendered from " + pointer.Field(o), Warn: true}, nil
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
