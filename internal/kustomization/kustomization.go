// Package kustomization writes the kustomization.yaml files of the tree, so
// that `kustomize build` and Flux deploy each folder as it is.
package kustomization

import (
	"fmt"
	"slices"

	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"
)

// New renders a Kustomization listing resources in the order given:
// callers pass folders in the tree's order and files sorted.
func New(resources []string) (*yaml.RNode, error) {
	k := kustypes.Kustomization{
		TypeMeta: kustypes.TypeMeta{
			APIVersion: kustypes.KustomizationVersion,
			Kind:       kustypes.KustomizationKind,
		},
		Resources: slices.Clone(resources),
	}
	b, err := k8syaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("marshal Kustomization: %w", err)
	}
	return yaml.Parse(string(b))
}

// Is reports whether node is a kustomization file's content.
func Is(node *yaml.RNode) bool {
	return node.GetKind() == kustypes.KustomizationKind &&
		(node.GetApiVersion() == kustypes.KustomizationVersion || node.GetApiVersion() == "")
}
