// Package patch carries a platform team's git patches on top of istioctl's
// output: GitPatch objects (kind GitPatch, local-config) in <rev>/patches/
// hold the text of a `git diff` or `git format-patch` against the files of
// <rev>/generated/, and the pipeline applies them to the freshly split files
// of that revision.
//
// The rules a patch obeys:
//   - It may only modify existing generated files of its own revision: no
//     new, deleted, renamed, copied or binary files, no mode changes.
//   - A path in the diff is relative to the revision folder
//     ("generated/configmap/x.yaml", what `patch import` writes) or to the
//     tree root ("1-31/generated/configmap/x.yaml"), after git's a/ and b/
//     prefixes. It must resolve under <rev>/generated/.
//   - Hunks apply as `git apply` applies them: their context must match
//     exactly, but a hunk may have moved up or down the file (the nearest
//     match wins); a hunk without trailing context must end at the end of
//     the file and one starting at line 1 must start there.
//   - The patched file must still hold the same single object.
package patch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/kyaml/kio/filters"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

const (
	// Kind is the kind of a patch object.
	Kind = api.KindGitPatch
	// Dir is the folder of a revision holding its GitPatch objects.
	Dir = "patches"
	// GeneratedDir is the folder of a revision a patch may modify.
	GeneratedDir = "generated"
)

// Patch is a parsed GitPatch.
type Patch struct {
	// Name is metadata.name.
	Name string
	// Revision is the revision folder the object was read from, <rev> of a
	// <rev>/patches/<file> path; empty when its path is not of that form.
	Revision string
	// MadeFor is spec.revision: the revision the diff was made against.
	MadeFor string
	// Digest identifies the diff text (see Digest).
	Digest string
	// Diff is spec.diff as written.
	Diff string
	// Node is the object as read.
	Node *yaml.RNode
	// Files are the file changes of the diff, in diff order.
	Files []*gitdiff.File
}

// Change is the new content of one file, by its tree-relative slash path.
type Change struct {
	Path    string
	Content []byte
}

// validName reports whether n is a DNS-1123 subdomain, so it can name both
// the object and its file.
func validName(n string) bool {
	return len(validation.IsDNS1123Subdomain(n)) == 0
}

// Parse reads a GitPatch object: it checks the object strictly (kind,
// apiVersion, a DNS-1123 name, the local-config annotation, no unknown
// field or key written twice anywhere, each named by its path) and parses
// and checks its diff (see the package doc). Errors name the patch and,
// when known, its file.
func Parse(node *yaml.RNode) (*Patch, error) {
	p := &Patch{Node: node}
	if node == nil {
		return nil, fmt.Errorf("GitPatch: must not be empty")
	}
	p.Name = node.GetName()
	if err := p.parse(); err != nil {
		return nil, fmt.Errorf("%s: %w", p.describe(), err)
	}
	return p, nil
}

// describe names the patch and, when known, its file.
func (p *Patch) describe() string {
	s := fmt.Sprintf("%s %q", Kind, p.Name)
	if f, _, _ := kioutil.GetFileAnnotations(p.Node); f != "" {
		s += fmt.Sprintf(" (%s)", f)
	}
	return s
}

func (p *Patch) parse() error {
	node := p.Node
	if node.YNode().Kind != yaml.MappingNode {
		return fmt.Errorf("must be a mapping")
	}
	if k := node.GetKind(); k != Kind {
		return fmt.Errorf("kind: %q must be %q", k, Kind)
	}
	if v := node.GetApiVersion(); v != api.APIVersion {
		return fmt.Errorf("apiVersion: %q must be %q", v, api.APIVersion)
	}
	// spec.diff is read from the node, as written: the decoder would take
	// a number or null for text.
	spec := node.Field("spec")
	if spec == nil || spec.Value.YNode().Kind != yaml.MappingNode {
		return fmt.Errorf("spec: must be a mapping holding diff")
	}
	diff := spec.Value.Field("diff")
	if diff == nil || diff.Value.YNode().Kind != yaml.ScalarNode || diff.Value.YNode().Tag != yaml.NodeTagString {
		return fmt.Errorf("spec.diff: must be a string holding the text of a git diff")
	}
	if errs := config.Decode(node, &GitPatch{}); len(errs.List) > 0 {
		msgs := make([]string, 0, len(errs.List))
		for _, fe := range errs.List {
			msgs = append(msgs, config.Message(fe))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	if !validName(p.Name) {
		return fmt.Errorf("metadata.name: %q must be a DNS-1123 subdomain (lower-case letters, digits, dashes and dots)", p.Name)
	}
	// A GitPatch is read by the function and never deployed: without the
	// annotation, kpt live apply or a Kustomization listing it would send it
	// to a cluster that has no such kind.
	if v, ok := node.GetAnnotations()[localConfig]; !ok || v == "false" {
		return fmt.Errorf("metadata.annotations: must set %s: \"true\"", localConfig)
	}
	p.Diff = diff.Value.YNode().Value
	p.Digest = Digest(p.Diff)
	if f, _, _ := kioutil.GetFileAnnotations(node); f != "" {
		dir := path.Dir(path.Clean(strings.ReplaceAll(f, `\`, "/")))
		if rev := path.Base(path.Dir(dir)); path.Base(dir) == Dir && rev != "." && rev != "/" {
			p.Revision = rev
		}
	}
	if r := spec.Value.Field("revision"); r != nil {
		p.MadeFor = r.Value.YNode().Value
		if r.Value.YNode().Kind != yaml.ScalarNode || revision.ValidateLabel(p.MadeFor) != nil {
			return fmt.Errorf("spec.revision: %q must be the name of the revision the diff was made against (such as 1-30)", p.MadeFor)
		}
	}
	files, err := parseDiff(p.Diff)
	if err != nil {
		return fmt.Errorf("spec.diff: %w", err)
	}
	p.Files = files
	return nil
}

// normalize is the text a diff is parsed and hashed as: line breaks as \n
// and a final line break, so a patch file saved on Windows or a block scalar
// written with |- mean the same patch.
func normalize(diff string) string {
	diff = strings.ReplaceAll(diff, "\r\n", "\n")
	if diff != "" && !strings.HasSuffix(diff, "\n") {
		diff += "\n"
	}
	return diff
}

// Digest identifies a diff text for the record of applied patches:
// "sha256:<hex>" of the text with CRLF line breaks turned into LF and a
// final line break added when missing. Nothing else is normalised: any
// other edit of the diff is a changed patch.
func Digest(diff string) string {
	sum := sha256.Sum256([]byte(normalize(diff)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// parseDiff parses a git diff and checks that it only modifies files.
func parseDiff(diff string) ([]*gitdiff.File, error) {
	text := normalize(diff)
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("must hold the text of a git diff, it is empty")
	}
	files, _, err := gitdiff.Parse(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("must be a git diff: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("must change at least one file: no \"diff --git\" section found")
	}
	var headers []string
	for _, l := range scanLines(text) {
		if l.kind == gitHeader {
			headers = append(headers, l.text)
		}
	}
	if len(headers) != len(files) {
		return nil, fmt.Errorf("must be made by git diff or git format-patch: every file must start with a \"diff --git\" line")
	}
	seen := map[string]bool{}
	for i, f := range files {
		name := f.NewName
		if name == "" {
			name = f.OldName
		}
		if err := checkHeader(headers[i]); err != nil {
			return nil, err
		}
		if err := checkFile(f, name); err != nil {
			return nil, fmt.Errorf("file %q: %w", name, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("file %q: must be changed once, the diff changes it twice", name)
		}
		seen[name] = true
	}
	return files, nil
}

const onlyModify = "a patch may only modify existing generated files"

// checkHeader checks the paths of a "diff --git" line as written, before
// go-gitdiff drops their first segment.
func checkHeader(header string) error {
	a, b, ok := headerPaths(header)
	switch {
	case !ok:
		return fmt.Errorf("%q must name two plain paths (no quotes or spaces): generated file names never need quoting", header)
	case strings.HasPrefix(a, "/") || strings.HasPrefix(b, "/"):
		return fmt.Errorf("%q must name relative paths inside the tree", header)
	case !hasGitPrefix(a) || !hasGitPrefix(b):
		return fmt.Errorf("%q must carry git's a/ and b/ prefixes; a diff made with --no-prefix (or diff.noPrefix) must go through `istio-gitops patch import`, which adds them", header)
	}
	return nil
}

func checkFile(f *gitdiff.File, name string) error {
	switch {
	case f.IsBinary:
		return fmt.Errorf("must not be binary: %s", onlyModify)
	case f.IsNew:
		return fmt.Errorf("must not be created: %s", onlyModify)
	case f.IsDelete:
		return fmt.Errorf("must not be deleted: %s", onlyModify)
	case f.IsRename || f.OldName != f.NewName:
		return fmt.Errorf("must not be renamed (from %q): %s", f.OldName, onlyModify)
	case f.IsCopy:
		return fmt.Errorf("must not be copied: %s", onlyModify)
	case f.OldMode != 0 && f.NewMode != 0 && f.OldMode != f.NewMode:
		return fmt.Errorf("must not change mode (%o to %o): %s", f.OldMode, f.NewMode, onlyModify)
	case len(f.TextFragments) == 0:
		return fmt.Errorf("must change the file's content: the diff has no hunk for it")
	}
	if err := checkPath(name); err != nil {
		return err
	}
	for _, frag := range f.TextFragments {
		if frag.OldLines == 0 || (frag.LeadingContext == 0 && frag.OldPosition > 1) {
			return fmt.Errorf("hunk %q must have context lines: make the diff with git's default context (not -U0)", hunkHeaderOf(frag))
		}
	}
	return nil
}

// checkPath rejects a path that could land outside the tree, whatever the
// revision folder.
func checkPath(p string) error {
	switch {
	case p == "" || path.IsAbs(p) || strings.Contains(p, `\`) || strings.HasPrefix(p, "~"):
		return fmt.Errorf("must be a relative path inside the tree")
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Errorf("must not contain \"..\": a patch must not reach outside its revision's generated files")
	case path.Clean(p) != p:
		return fmt.Errorf("must be a clean path (no \".\" or empty segments)")
	}
	return nil
}

// Targets returns the tree-root-relative slash paths the patch modifies, in
// order. revDir is the revision folder relative to the tree root, such as
// "1-31". A diff path that starts with revDir+"/" is taken as relative to
// the tree root, any other as relative to the revision folder; either way
// it must resolve under revDir/generated/.
func (p *Patch) Targets(revDir string) ([]string, error) {
	if err := checkPath(revDir); err != nil {
		return nil, fmt.Errorf("%s: revision folder %q: %w", p.describe(), revDir, err)
	}
	under := revDir + "/" + GeneratedDir + "/"
	targets := make([]string, 0, len(p.Files))
	for _, f := range p.Files {
		t := targetOf(f.NewName, revDir)
		if hint := renderedHint(f.NewName, t, under); hint != "" {
			return nil, fmt.Errorf("%s: file %q %s", p.describe(), f.NewName, hint)
		}
		if !strings.HasPrefix(t, under) {
			return nil, fmt.Errorf("%s: file %q must target a file under %s", p.describe(), f.NewName, under)
		}
		targets = append(targets, t)
	}
	slices.Sort(targets)
	for i := 1; i < len(targets); i++ {
		if targets[i] == targets[i-1] {
			return nil, fmt.Errorf("%s: file %q must be changed once, the diff changes it twice (once relative to the tree root, once to %s)", p.describe(), targets[i], revDir)
		}
	}
	return targets, nil
}

// targetOf resolves a diff path to the tree root.
func targetOf(name, revDir string) string {
	if strings.HasPrefix(name, revDir+"/") {
		return path.Clean(name)
	}
	return path.Join(revDir, name)
}

// localConfig is the annotation every GitPatch carries: it is read by the
// function and never deployed.
const localConfig = filters.LocalConfigAnnotation

// renderedHint says, for a diff path that names a file the run renders
// from the config (or writes into common/), what to change instead; ""
// for any other path. name is the path as the diff has it, target the
// tree path it resolves to, under the revision's generated/ folder.
func renderedHint(name, target, under string) string {
	if rest, ok := strings.CutPrefix(target, under); ok && strings.HasPrefix(rest, "ingress/") {
		return "is rendered from the config (spec.gateways.ingress, or an entry of spec.gateways.ingresses), not generated from istioctl output, and every run renders it again: change that entry (its template, liveOnlyAnnotations, perRevision or hosts) instead"
	}
	if strings.HasPrefix(target, under) {
		return ""
	}
	parts := strings.Split(name, "/")
	for i, seg := range parts {
		switch {
		case seg == "common" && len(parts)-i >= 3:
			return "is in common/, which every run writes again: its objects are rendered from the config (the istiod Service, the default validator, the tags, the stable gateway Services, the node agents) or taken from the newest revision's istioctl output; patch the file of the revision's generated/ folder it comes from instead (a node agent's is under <rev>/generated/node-agents/, and spec.nodeAgents picks the revision)"
		case seg == layout.Flux && len(parts)-i == 2:
			return "is rendered from the config (spec.flux), and every run renders it again: change spec.flux instead"
		case seg == layout.ArgoCD && len(parts)-i == 2:
			return "is rendered from the config (spec.argocd), and every run renders it again: change spec.argocd instead"
		}
	}
	return ""
}

// RenderedFrom is the config field a file's object was rendered from (its
// fn.istio-gitops.dev/rendered-from annotation), or "": read from the
// bytes, without parsing them.
func RenderedFrom(b []byte) string {
	key := []byte(api.RenderedFromAnnotation + ":")
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), key); ok {
			return strings.Trim(string(bytes.TrimSpace(v)), `"'`)
		}
	}
	return ""
}
