// Package nodeagent finds ambient's node agents in a revision's output:
// the ztunnel and istio-cni DaemonSets and everything that belongs to them.
// They run once per node, so they cannot run side by side for two
// revisions: the tree keeps each revision's copy and deploys the one
// spec.nodeAgents.revision names.
package nodeagent

import (
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Set is the identities of the node agents' objects.
type Set map[object.ID]bool

// Find returns the node agents' objects among objs.
func Find(objs []*yaml.RNode) (Set, error) {
	return Set{}, nil
}

// Has reports whether o belongs to a node agent.
func Has(s Set, o *yaml.RNode) bool { return s[object.IDOf(o)] }
