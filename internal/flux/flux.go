// Package flux renders the Flux Kustomization objects that deploy a mesh
// tree: one for common/, one per revision folder that waits for common/ and
// reports ready once the revision's istiod is, so retiring a revision
// (deleting its folder and its Kustomization) prunes exactly its objects.
//
// It also marks CustomResourceDefinitions never to be pruned: deleting a
// CRD deletes every custom resource of its kind in the cluster.
package flux

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

const (
	// APIVersion is the Flux Kustomization API written.
	APIVersion = "kustomize.toolkit.fluxcd.io/v1"
	// Kind is the kind of the objects written.
	Kind = "Kustomization"
	// Folder is the tree's folder holding them.
	Folder = "flux"
	// CommonFolder is the tree's folder of shared objects.
	CommonFolder = "common"
	// DefaultNamespace is where the Kustomizations live when spec.flux.sourceRef
	// names no namespace: Flux's own.
	DefaultNamespace = "flux-system"
	// NamePrefix starts the name of every Kustomization written.
	NamePrefix = "istio-"

	// PruneDisabled is api.FluxPruneAnnotation's value that disables pruning.
	PruneDisabled = "disabled"
)

// interval is the pattern of the Kustomization CRD's spec.interval.
var interval = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`)

// Name is the Kustomization deploying folder (common or a revision).
func Name(folder string) string { return NamePrefix + folder }

// File is where the Kustomization deploying folder is written, relative to
// the tree's root: flux/common.yaml, flux/<rev>.yaml.
func File(folder string) string { return path.Join(Folder, folder+".yaml") }

// Kustomizations renders the Flux Kustomizations of a tree whose
// control-plane namespace is namespace: istio-common for common/, then
// istio-<rev> for each revision in the order given, each depending on
// istio-common and health-checking Deployment <namespace>/istiod-<rev>.
// Every one prunes, and lives in spec.flux.sourceRef's namespace (else
// flux-system), so no cross-namespace source reference is needed.
func Kustomizations(f config.Flux, namespace string, revisions []string) ([]*yaml.RNode, error) {
	base, err := basePath(f.Path)
	if err != nil {
		return nil, err
	}
	if !interval.MatchString(f.Interval) {
		return nil, fmt.Errorf("spec.flux.interval: %q must be a duration such as \"10m\" (Flux accepts ms, s, m and h)", f.Interval)
	}
	if f.SourceRef.Kind == "" || f.SourceRef.Name == "" {
		return nil, fmt.Errorf("spec.flux.sourceRef: kind and name must be set")
	}
	if namespace == "" {
		return nil, fmt.Errorf("spec.namespace: must be the control-plane namespace")
	}
	if len(revisions) == 0 {
		return nil, fmt.Errorf("spec.revisions: must list at least one revision")
	}
	for i, r := range revisions {
		switch {
		case revision.ValidateLabel(r) != nil:
			return nil, fmt.Errorf("spec.revisions[%d].name: %q must be a DNS label", i, r)
		case r == CommonFolder || r == Folder:
			return nil, fmt.Errorf("spec.revisions[%d].name: %q must not be used: the tree has a folder of that name", i, r)
		case slices.Contains(revisions[:i], r):
			return nil, fmt.Errorf("spec.revisions[%d].name: %q must be unique", i, r)
		case len(Name(r)) > 63:
			// kustomize-controller labels every object it applies with its
			// Kustomization's name, and a label value has at most 63 characters.
			return nil, fmt.Errorf("spec.revisions[%d].name: %q must be at most %d characters with Flux: Kustomization %q is too long for a label value", i, r, 63-len(NamePrefix), Name(r))
		}
	}

	common, err := kustomization(f, base, CommonFolder)
	if err != nil {
		return nil, err
	}
	out := []*yaml.RNode{common}
	for _, r := range revisions {
		k, err := kustomization(f, base, r)
		if err != nil {
			return nil, err
		}
		if err := k.PipeE(
			yaml.LookupCreate(yaml.MappingNode, "spec"),
			yaml.SetField("dependsOn", list(mapping("name", Name(CommonFolder)))),
		); err != nil {
			return nil, fmt.Errorf("%s %s: spec.dependsOn: %w", Kind, Name(r), err)
		}
		// Ready only once istiod-<rev> is: whatever depends on this revision
		// (the workloads and gateways of other Kustomizations) waits for a running
		// control plane.
		check := mapping("apiVersion", "apps/v1", "kind", "Deployment", "name", "istiod-"+r, "namespace", namespace)
		if err := k.PipeE(
			yaml.LookupCreate(yaml.MappingNode, "spec"),
			yaml.SetField("healthChecks", list(check)),
		); err != nil {
			return nil, fmt.Errorf("%s %s: spec.healthChecks: %w", Kind, Name(r), err)
		}
		sortSpec(k)
		out = append(out, k)
	}
	return out, nil
}

// basePath checks spec.flux.path, a path inside the source, and cleans it
// without its leading "./" or "/".
func basePath(p string) (string, error) {
	const hint = `such as "./clusters/prod/istio"`
	if p == "" {
		return "", fmt.Errorf("spec.flux.path: must be the tree's path in the source, %s", hint)
	}
	if strings.Contains(p, `\`) {
		return "", fmt.Errorf("spec.flux.path: %q must use forward slashes, %s", p, hint)
	}
	c := path.Clean(strings.TrimLeft(p, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("spec.flux.path: %q must stay inside the source, %s", p, hint)
	}
	return c, nil
}

// folderPath is folder's path in the source, in Flux's "./" form.
func folderPath(base, folder string) string {
	return "./" + path.Join(base, folder)
}

// kustomization is the Kustomization deploying folder, without what only
// revisions have.
func kustomization(f config.Flux, base, folder string) (*yaml.RNode, error) {
	ns := f.SourceRef.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	k := yaml.NewMapRNode(nil)
	k.SetApiVersion(APIVersion)
	k.SetKind(Kind)
	if err := k.SetName(Name(folder)); err != nil {
		return nil, err
	}
	if err := k.SetNamespace(ns); err != nil {
		return nil, err
	}
	src := mapping("kind", f.SourceRef.Kind, "name", f.SourceRef.Name)
	if f.SourceRef.Namespace != "" {
		if err := src.PipeE(yaml.SetField("namespace", yaml.NewStringRNode(f.SourceRef.Namespace))); err != nil {
			return nil, err
		}
	}
	prune := yaml.NewScalarRNode("true")
	prune.YNode().Tag = yaml.NodeTagBool
	spec := yaml.NewMapRNode(nil)
	for _, fld := range []struct {
		name  string
		value *yaml.RNode
	}{
		{"interval", yaml.NewStringRNode(f.Interval)},
		{"path", yaml.NewStringRNode(folderPath(base, folder))},
		// A revision's objects leave the cluster with its folder.
		{"prune", prune},
		{"sourceRef", src},
	} {
		if err := spec.PipeE(yaml.SetField(fld.name, fld.value)); err != nil {
			return nil, fmt.Errorf("%s %s: spec.%s: %w", Kind, Name(folder), fld.name, err)
		}
	}
	if err := k.PipeE(yaml.SetField("spec", spec)); err != nil {
		return nil, err
	}
	return k, nil
}

// sortSpec orders spec's fields by name, as `flux export` prints them.
func sortSpec(k *yaml.RNode) {
	spec := k.Field("spec").Value.YNode()
	type pair struct{ k, v *yaml.Node }
	var pairs []pair
	for i := 0; i+1 < len(spec.Content); i += 2 {
		pairs = append(pairs, pair{spec.Content[i], spec.Content[i+1]})
	}
	slices.SortStableFunc(pairs, func(a, b pair) int { return strings.Compare(a.k.Value, b.k.Value) })
	spec.Content = spec.Content[:0]
	for _, p := range pairs {
		spec.Content = append(spec.Content, p.k, p.v)
	}
}

// mapping builds a mapping of string fields from key, value pairs, in order.
// Setting a field of a new mapping cannot fail.
func mapping(kv ...string) *yaml.RNode {
	m := yaml.NewMapRNode(nil)
	for i := 0; i+1 < len(kv); i += 2 {
		_ = m.PipeE(yaml.SetField(kv[i], yaml.NewStringRNode(kv[i+1])))
	}
	return m
}

func list(items ...*yaml.RNode) *yaml.RNode {
	l := yaml.NewListRNode()
	for _, it := range items {
		l.YNode().Content = append(l.YNode().Content, it.YNode())
	}
	return l
}

// DisablePrune annotates a CustomResourceDefinition
// kustomize.toolkit.fluxcd.io/prune: disabled, so neither removing it from
// Git nor deleting istio-common ever deletes the CRD, and with it every
// Istio resource of its kind. Other kinds are left alone.
func DisablePrune(obj *yaml.RNode) error {
	if obj.GetKind() != "CustomResourceDefinition" || !strings.HasPrefix(obj.GetApiVersion(), "apiextensions.k8s.io/") {
		return nil
	}
	// Plain style, as Flux's documentation writes it (kyaml's SetAnnotation
	// would single-quote it).
	if err := obj.PipeE(
		yaml.LookupCreate(yaml.MappingNode, "metadata", "annotations"),
		yaml.SetField(api.FluxPruneAnnotation, yaml.NewStringRNode(PruneDisabled)),
	); err != nil {
		return fmt.Errorf("CustomResourceDefinition %s: metadata.annotations[%q]: %w", obj.GetName(), api.FluxPruneAnnotation, err)
	}
	return nil
}
