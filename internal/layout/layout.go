// Package layout holds the shape of the tree: which folder and file each
// object is written to, and the bytes a one-object file holds.
package layout

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Folder and file names of the tree.
const (
	Common        = "common"
	Generated     = "generated"
	Patches       = "patches"
	Flux          = "flux"
	Kustomization = "kustomization.yaml"
	// StateFile records what a revision's generated files carry.
	StateFile = "state.yaml"
)

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
		if err := checkSegment(ns); err != nil {
			return fmt.Errorf("%s %q namespace %q %w", kind, name, ns, err)
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
// the control-plane namespace, so two objects never share a path.
func ObjectFile(folder string, obj *yaml.RNode, controlPlane string) string {
	kind := strings.ToLower(obj.GetKind())
	if ns := obj.GetNamespace(); ns != "" && ns != controlPlane {
		return path.Join(folder, kind, ns, obj.GetName()+".yaml")
	}
	return path.Join(folder, kind, obj.GetName()+".yaml")
}

// IsReaderAnnotation reports whether an annotation is one that readers and
// orchestrators (kustomize, kpt) add and writers strip: a file on disk
// never holds it.
func IsReaderAnnotation(key string) bool {
	switch key {
	case kioutil.LegacyPathAnnotation, kioutil.LegacyIndexAnnotation, kioutil.LegacyIdAnnotation:
		return true
	}
	return strings.HasPrefix(key, "internal.config.kubernetes.io/")
}

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
// kustomize, kpt or `istio-gitops run`: kyaml's writer, less the reader
// annotations. Patches are made against, and digests taken of, these bytes.
func FileBytes(obj *yaml.RNode) ([]byte, error) {
	var clear []string
	for k := range obj.GetAnnotations() {
		if IsReaderAnnotation(k) {
			clear = append(clear, k)
		}
	}
	var b bytes.Buffer
	// ByteWriter clears them on its own copy of obj.
	if err := (kio.ByteWriter{Writer: &b, ClearAnnotations: clear}).Write([]*yaml.RNode{obj}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
