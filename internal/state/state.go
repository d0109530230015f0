// Package state holds the tree's own records: for each revision, the Istio
// version, a digest of each generated file as written and the patches
// applied; for common/, the revision whose output it holds and its
// generated files' digests; one record per patch applied to a revision
// that was not regenerated; and, on each object rendered from the config,
// its own digest (Seal) beside the pointer it was rendered for. With them a
// run tells its own output from hand edits and lost files, applies each
// patch once, and says what moved. No record lists what two independent
// steps (a promotion, a tag move, a patch...) both change, so that `git
// revert` of any one of them applies cleanly in any order.
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/layout"
)

// Kind is the kind of a revision's record, kept in <rev>/generated/state.yaml.
const Kind = api.KindRevisionState

// State is a revision's record (kind RevisionState) or common/'s (kind
// CommonState).
type State struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata names the record; it is local-config, never deployed.
type Metadata struct {
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations"`
}

// Spec is what the files carry.
type Spec struct {
	// Revision is, in common/'s record, the revision whose istioctl output
	// common/ holds.
	Revision string `json:"revision,omitempty"`
	Version  string `json:"version,omitempty"`
	// Files maps each generated file, relative to the record's folder (the
	// revision's, or common/), to the digest of its bytes as written.
	Files map[string]string `json:"files"`
	// Patches are the GitPatches applied when the revision was generated,
	// in the order applied.
	Patches []Patch `json:"patches,omitempty"`
	// Pointers are, in common/'s record of a tree written by an older
	// istio-gitops, where the config pointed when it was last written. A
	// run reads them to say what moved, then writes the record without
	// them: each rendered object records its own pointer now.
	Pointers *Pointers `json:"pointers,omitempty"`
	// DriftGuards and PerRevisionGateways are, in a revision's record, the
	// config's settings its files were generated with: a change of either
	// takes effect when the revision is generated again.
	DriftGuards         *bool `json:"driftGuards,omitempty"`
	PerRevisionGateways *bool `json:"perRevisionGateways,omitempty"`
}

// Patch is an applied GitPatch.
type Patch struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Pointers are the config fields that point at one revision.
type Pointers struct {
	ActiveRevision string            `json:"activeRevision,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	GatewaysLive   string            `json:"gatewaysLive,omitempty"`
	NodeAgents     string            `json:"nodeAgents,omitempty"`
}

// New returns an empty record of kind for name.
func New(kind, name string) *State {
	return &State{
		APIVersion: api.APIVersion,
		Kind:       kind,
		Metadata: Metadata{Name: name, Annotations: map[string]string{
			api.LocalConfigAnnotation: "true",
		}},
		Spec: Spec{Files: map[string]string{}},
	}
}

// Is reports whether node is a record of kind.
func Is(node *yaml.RNode, kind string) bool {
	return node.GetApiVersion() == api.APIVersion && node.GetKind() == kind
}

// Read decodes a record strictly: a record a merge or a hand left with a
// field twice or a field it never has is an error. The record is the
// function's own bookkeeping, so it is read into a struct rather than
// edited in place.
func Read(node *yaml.RNode) (*State, error) {
	st := &State{}
	if err := read(node, st, &st.Metadata, &st.Spec.Files); err != nil {
		return nil, err
	}
	return st, nil
}

// read decodes a record strictly into v, then tidies its metadata and
// files, which point into v.
func read(node *yaml.RNode, v any, meta *Metadata, files *map[string]string) error {
	if errs := config.Decode(node, v); len(errs.List) > 0 {
		return &config.Error{Kind: node.GetKind(), Name: node.GetName(), Errs: errs.List}
	}
	if *files == nil {
		*files = map[string]string{}
	}
	// The reader's and orchestrators' annotations belong to the item, not
	// to the record: a record written again must not carry them.
	for k := range meta.Annotations {
		if layout.IsReaderAnnotation(k) {
			delete(meta.Annotations, k)
		}
	}
	return nil
}

// Node encodes the record; map keys come out sorted.
func (s *State) Node() (*yaml.RNode, error) {
	b, err := k8syaml.Marshal(s)
	if err != nil {
		return nil, err
	}
	return yaml.Parse(string(b))
}

// Digest is the digest a record keeps of a file's bytes.
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
	for _, b := range []**bool{&c.Spec.DriftGuards, &c.Spec.PerRevisionGateways} {
		if *b != nil {
			v := **b
			*b = &v
		}
	}
	if s.Spec.Pointers != nil {
		p := *s.Spec.Pointers
		p.Tags = maps.Clone(p.Tags)
		c.Spec.Pointers = &p
	}
	return &c
}

// Equal reports whether two records say the same. The files are compared
// as maps first: encoding thousands of them to compare was most of what a
// run with nothing to do allocated.
func (s *State) Equal(o *State) bool {
	if s.Kind != o.Kind || s.Metadata.Name != o.Metadata.Name || !maps.Equal(s.Spec.Files, o.Spec.Files) {
		return false
	}
	sa, sb := s.Spec, o.Spec
	sa.Files, sb.Files = nil, nil
	a, err1 := k8syaml.Marshal(sa)
	b, err2 := k8syaml.Marshal(sb)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// Applied records one GitPatch applied to a revision that was not
// regenerated (kind AppliedPatch, <rev>/generated/applied-patches/<name>.yaml):
// one file a patch, so that two pull requests adding patches to the same
// revision touch different records and merge cleanly, conflicting only
// where the patched files themselves do.
type Applied struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   Metadata    `json:"metadata"`
	Spec       AppliedSpec `json:"spec"`
}

// AppliedSpec is the patch's digest and the files it changed.
type AppliedSpec struct {
	Digest string `json:"digest"`
	// Files maps each file the patch changed, relative to the revision
	// folder, to the digest of its bytes after the patch.
	Files map[string]string `json:"files"`
}

// NewApplied returns the record of patch name with digest.
func NewApplied(name, digest string) *Applied {
	return &Applied{
		APIVersion: api.APIVersion,
		Kind:       api.KindAppliedPatch,
		Metadata: Metadata{Name: name, Annotations: map[string]string{
			api.LocalConfigAnnotation: "true",
		}},
		Spec: AppliedSpec{Digest: digest, Files: map[string]string{}},
	}
}

// ReadApplied decodes a patch record strictly.
func ReadApplied(node *yaml.RNode) (*Applied, error) {
	a := &Applied{}
	if err := read(node, a, &a.Metadata, &a.Spec.Files); err != nil {
		return nil, err
	}
	return a, nil
}

// Node encodes the patch record.
func (a *Applied) Node() (*yaml.RNode, error) {
	b, err := k8syaml.Marshal(a)
	if err != nil {
		return nil, err
	}
	return yaml.Parse(string(b))
}

// digestLine is how a rendered file's digest annotation starts, after its
// indentation.
var digestLine = []byte(api.RenderedDigestAnnotation + ": ")

// digestPlaceholder stands for the digest while the file is laid out: it
// has the digest's length, so the line is the same either way.
var digestPlaceholder = "sha256:" + strings.Repeat("0", sha256.Size*2)

// Seal records, on a rendered object, the digest of its file (annotation
// fn.istio-gitops.dev/rendered-digest) and returns the file's bytes, as
// encode lays it out. The digest is of the file's bytes without the
// annotation's line: a later run reads the record from the file itself,
// so no list shared by every rendered file (which two unrelated steps
// would both change) is kept anywhere.
func Seal(o *yaml.RNode, encode func(*yaml.RNode) ([]byte, error)) ([]byte, error) {
	if err := o.PipeE(yaml.SetAnnotation(api.RenderedDigestAnnotation, digestPlaceholder)); err != nil {
		return nil, err
	}
	b, err := encode(o)
	if err != nil {
		return nil, err
	}
	at, end, ok := findDigestLine(b)
	if !ok {
		return nil, fmt.Errorf("%s: the rendered object's digest annotation is not on a line of its own", api.RenderedDigestAnnotation)
	}
	d := Digest(slices.Concat(b[:at], b[end:]))
	b = bytes.Replace(b, []byte(digestPlaceholder), []byte(d), 1)
	if err := o.PipeE(yaml.SetAnnotation(api.RenderedDigestAnnotation, d)); err != nil {
		return nil, err
	}
	return b, nil
}

// Sealed reads a rendered file's digest record: the digest it records and
// the digest of its bytes now. ok is false when the file has none (a file
// written by an older istio-gitops).
func Sealed(b []byte) (recorded, now string, ok bool) {
	at, end, found := findDigestLine(b)
	if !found {
		return "", "", false
	}
	line := bytes.TrimSpace(b[at:end])
	recorded = strings.Trim(string(bytes.TrimSpace(line[len(digestLine):])), `'"`)
	rest := slices.Concat(b[:at], b[end:])
	if _, _, twice := findDigestLine(rest); twice {
		// A second record (a bad merge): the file is not the one written.
		return recorded, "", true
	}
	return recorded, Digest(rest), true
}

// findDigestLine finds the line of the digest annotation: from its start
// to after its line break.
func findDigestLine(b []byte) (start, end int, ok bool) {
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], digestLine)
		if i < 0 {
			return 0, 0, false
		}
		i += off
		ls := bytes.LastIndexByte(b[:i], '\n') + 1
		if len(bytes.TrimLeft(b[ls:i], " ")) == 0 {
			le := bytes.IndexByte(b[i:], '\n')
			if le < 0 {
				return ls, len(b), true
			}
			return ls, i + le + 1, true
		}
		off = i + len(digestLine)
	}
	return 0, 0, false
}

// WithoutDigest is a rendered file's bytes without its digest line: what
// two renderings that differ only by content elsewhere share.
func WithoutDigest(b []byte) []byte {
	at, end, ok := findDigestLine(b)
	if !ok {
		return b
	}
	return slices.Concat(b[:at], b[end:])
}
