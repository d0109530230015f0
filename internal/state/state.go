// Package state records what a revision's generated files carry: the Istio
// version, a digest of each file as written, and the patches applied. The
// record lets a run tell hand edits from its own output and apply each patch
// once.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/layout"
)

// Kind is the kind of the record, kept in <rev>/generated/state.yaml.
const Kind = api.KindRevisionState

// State is a revision's record.
type State struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata names the revision; the record is local-config, never deployed.
type Metadata struct {
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations"`
}

// Spec is what the generated files carry.
type Spec struct {
	Version string `json:"version,omitempty"`
	// Files maps each generated file, relative to the revision folder, to
	// the digest of its bytes as written.
	Files map[string]string `json:"files"`
	// Patches are the GitPatches applied, in the order applied.
	Patches []Patch `json:"patches,omitempty"`
}

// Patch is an applied GitPatch.
type Patch struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// New returns an empty record for revision rev.
func New(rev string) *State {
	return &State{
		APIVersion: api.APIVersion,
		Kind:       Kind,
		Metadata: Metadata{Name: rev, Annotations: map[string]string{
			api.LocalConfigAnnotation: "true",
		}},
		Spec: Spec{Files: map[string]string{}},
	}
}

// Is reports whether node is a revision record.
func Is(node *yaml.RNode) bool {
	return node.GetApiVersion() == api.APIVersion && node.GetKind() == Kind
}

// Read decodes a record. The record is the function's own bookkeeping, so
// it is read into a struct rather than edited in place.
func Read(node *yaml.RNode) (*State, error) {
	s, err := node.String()
	if err != nil {
		return nil, err
	}
	st := &State{}
	if err := k8syaml.Unmarshal([]byte(s), st); err != nil {
		return nil, fmt.Errorf("%s %q: %w", Kind, node.GetName(), err)
	}
	if st.Spec.Files == nil {
		st.Spec.Files = map[string]string{}
	}
	// The reader's and orchestrators' annotations belong to the item, not
	// to the record: a record written again must not carry them.
	for k := range st.Metadata.Annotations {
		if layout.IsReaderAnnotation(k) {
			delete(st.Metadata.Annotations, k)
		}
	}
	return st, nil
}

// Node encodes the record; map keys come out sorted.
func (s *State) Node() (*yaml.RNode, error) {
	b, err := k8syaml.Marshal(s)
	if err != nil {
		return nil, err
	}
	return yaml.Parse(string(b))
}

// Digest is the digest the record keeps of a file's bytes.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Clone returns a copy that can be changed without changing s.
func (s *State) Clone() *State {
	c := *s
	c.Metadata.Annotations = maps.Clone(s.Metadata.Annotations)
	c.Spec.Files = maps.Clone(s.Spec.Files)
	c.Spec.Patches = slices.Clone(s.Spec.Patches)
	return &c
}

// Equal reports whether two records say the same.
func (s *State) Equal(o *State) bool {
	if s.Spec.Version != o.Spec.Version || len(s.Spec.Files) != len(o.Spec.Files) || len(s.Spec.Patches) != len(o.Spec.Patches) {
		return false
	}
	for k, v := range s.Spec.Files {
		if o.Spec.Files[k] != v {
			return false
		}
	}
	for i, p := range s.Spec.Patches {
		if o.Spec.Patches[i] != p {
			return false
		}
	}
	return true
}
