// Package layout holds the shape of the tree: which folder and file each
// object is written to, and the bytes a one-object file holds.
package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Folder and file names of the tree.
const (
	Common        = "common"
	Generated     = "generated"
	Patches       = "patches"
	Flux          = "flux"
	ArgoCD        = "argocd"
	Kustomization = "kustomization.yaml"
	// StateFile records what a revision's generated files carry.
	StateFile = "state.yaml"
)

// Owned are the tree's top folders the function writes whole: no
// revision or tag may be named like one, no istioctl output kept in one.
var Owned = []string{Common, Flux, ArgoCD}

var (
	kindExpr = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
	// Kubernetes names are DNS subdomains; RBAC names may also hold ':'.
	nameExpr = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.:@]*[A-Za-z0-9])?$`)
)

// CheckIdentity reports why an object's kind, namespace or name cannot
// become a path: each must be present and must not leave its folder.
func CheckIdentity(obj *yaml.RNode) error {
	kind, name, ns := obj.GetKind(), obj.GetName(), obj.GetNamespace()
	switch {
	case kind == "":
		return fmt.Errorf("object %q must have a kind", name)
	case obj.GetApiVersion() == "":
		return fmt.Errorf("%s %q must have an apiVersion", kind, name)
	case !kindExpr.MatchString(kind):
		return fmt.Errorf("kind %q must be a Kubernetes kind (letters and digits)", kind)
	case name == "":
		return fmt.Errorf("%s must have metadata.name", kind)
	}
	if err := checkSegment(name); err != nil {
		return fmt.Errorf("%s name %q %w", kind, name, err)
	}
	if ns != "" {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return fmt.Errorf("%s %q namespace %q must be a namespace name: %s", kind, name, ns, strings.Join(msgs, "; "))
		}
	}
	return nil
}

func checkSegment(s string) error {
	switch {
	case strings.ContainsAny(s, `/\`):
		return fmt.Errorf("must not contain a path separator")
	case strings.Contains(s, ".."):
		return fmt.Errorf("must not contain \"..\"")
	case len(s) > 253 || !nameExpr.MatchString(s):
		return fmt.Errorf("must be a DNS subdomain name")
	}
	return nil
}

// ObjectFile is the file an object is written to inside folder:
// <kind>/<name>.yaml, or <kind>/<namespace>/<name>.yaml for objects outside
// the control-plane namespace, so two objects never share a path. A
// segment too long for a file system (a 253-character name and ".yaml")
// keeps its start and ends in a digest of the whole (see Segment).
func ObjectFile(folder string, obj *yaml.RNode, controlPlane string) string {
	kind := Segment(strings.ToLower(obj.GetKind()), "")
	name := Segment(obj.GetName(), ".yaml")
	if ns := obj.GetNamespace(); ns != "" && ns != controlPlane {
		return path.Join(folder, kind, Segment(ns, ""), name)
	}
	return path.Join(folder, kind, name)
}

// MaxSegment is the longest file or folder name, in bytes, that common file
// systems (ext4, xfs, btrfs, APFS, NTFS) take.
const MaxSegment = 255

// Segment is s+suffix as a file or folder name. When that is MaxSegment
// bytes or longer, s is cut and a dash and the first 16 hex digits of its
// sha256 are added before suffix: stable, readable, and two long names
// that share a start still get two files. A cut segment is always
// MaxSegment bytes long and a whole one shorter, so a name spelled like
// another's cut form never shares its file.
func Segment(s, suffix string) string {
	if len(s)+len(suffix) < MaxSegment {
		return s + suffix
	}
	sum := sha256.Sum256([]byte(s))
	digest := hex.EncodeToString(sum[:8])
	return s[:MaxSegment-len(suffix)-1-len(digest)] + "-" + digest + suffix
}

// Parse splits a path that ObjectFile made, relative to its folder, into
// the kind's folder, the namespace (empty for the control-plane namespace
// and cluster-scoped objects) and the file name; ok is false for a path
// ObjectFile does not make. A name cut by Segment cannot be read back from
// the path: the object in the file has it.
func Parse(rel string) (kindFolder, namespace, file string, ok bool) {
	parts := strings.Split(rel, "/")
	switch {
	case len(parts) == 2 && strings.HasSuffix(parts[1], ".yaml"):
		return parts[0], "", parts[1], true
	case len(parts) == 3 && strings.HasSuffix(parts[2], ".yaml"):
		return parts[0], parts[1], parts[2], true
	}
	return "", "", "", false
}

// IsReaderAnnotation reports whether an annotation is one that readers and
// orchestrators (kustomize, kpt) add and writers strip: a file on disk
// never holds it.
func IsReaderAnnotation(key string) bool { return disk.IsReaderAnnotation(key) }

// ClearReaderAnnotations removes from obj the annotations that place it in
// a file or stream, so an object made from a copy does not inherit its
// source's file.
func ClearReaderAnnotations(obj *yaml.RNode) error {
	for k := range obj.GetAnnotations() {
		if IsReaderAnnotation(k) {
			if _, err := obj.Pipe(yaml.ClearAnnotation(k)); err != nil {
				return fmt.Errorf("clear %s: %w", k, err)
			}
		}
	}
	return yaml.ClearEmptyAnnotations(obj)
}

// FileBytes is what a file holding obj alone contains once written by
// kustomize, kpt or `istio-gitops run` (see disk.FileBytes). Patches are
// made against, and digests taken of, these bytes.
func FileBytes(obj *yaml.RNode) ([]byte, error) {
	return disk.FileBytes([]*yaml.RNode{obj})
}

// RepoPath checks the tree's path in the repository or source that holds
// it (field is spec.flux.path or spec.argocd.path, where names what holds
// it, hint gives an example) and cleans it, without a leading "./" or "/".
func RepoPath(field, where, hint, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%s: must be the tree's path in the %s, %s", field, where, hint)
	}
	if strings.Contains(p, `\`) {
		return "", fmt.Errorf("%s: %q must use forward slashes, %s", field, p, hint)
	}
	c := path.Clean(strings.TrimLeft(p, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%s: %q must stay inside the %s, %s", field, p, where, hint)
	}
	return c, nil
}
