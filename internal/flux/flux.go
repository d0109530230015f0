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
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

const (
	// APIVersion is the Flux Kustomization API written.
	APIVersion = "kustomize.toolkit.fluxcd.io/v1"
	// Kind is the kind of the objects written.
	Kind = "Kustomization"
	// Folder is the tree's folder holding them.
	Folder = layout.Flux
	// CommonFolder is the tree's folder of shared objects.
	CommonFolder = layout.Common
	// DefaultNamespace is where the Kustomizations live when spec.flux.sourceRef
	// names no namespace: Flux's own.
	DefaultNamespace = "flux-system"
	// NamePrefix starts the name of every Kustomization written.
	NamePrefix = "istio-"

	// PruneDisabled is api.FluxPruneAnnotation's value that disables pruning.
	PruneDisabled = "disabled"
)

// fluxDuration is the pattern of the Kustomization CRD's spec.interval and
// spec.timeout.
var fluxDuration = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`)

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
// spec.flux's timeout, wait and serviceAccountName go into every one when
// set (wait: false is Flux's default, which the object leaves out).
func Kustomizations(f config.Flux, namespace string, revisions []string) ([]*yaml.RNode, error) {
	base, err := layout.RepoPath("spec.flux.path", "source", `such as "./clusters/prod/istio"`, f.Path)
	if err != nil {
		return nil, err
	}
	build, err := shared(f, base)
	if err != nil {
		return nil, err
	}
	if namespace == "" {
		return nil, fmt.Errorf("spec.namespace: must be the control-plane namespace")
	}
	// kustomize-controller labels every object it applies with its
	// Kustomization's name.
	if err := revision.CheckList(revisions, Name, Kind, "Flux"); err != nil {
		return nil, err
	}

	common, err := node(build(CommonFolder), f)
	if err != nil {
		return nil, err
	}
	out := []*yaml.RNode{common}
	for _, r := range revisions {
		k := build(r)
		k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: Name(CommonFolder)}}
		// Ready only once istiod-<rev> is: whatever depends on this revision
		// (the workloads and gateways of other Kustomizations) waits for a running
		// control plane.
		k.Spec.HealthChecks = []meta.NamespacedObjectKindReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: "istiod-" + r, Namespace: namespace},
		}
		n, err := node(k, f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// shared checks what every Kustomization takes from spec.flux, and returns
// the Kustomization deploying a folder, without what only revisions have.
func shared(f config.Flux, base string) (func(folder string) *kustomizev1.Kustomization, error) {
	interval, err := duration("interval", f.Interval)
	if err != nil {
		return nil, err
	}
	if f.SourceRef.Kind == "" || f.SourceRef.Name == "" {
		return nil, fmt.Errorf("spec.flux.sourceRef: kind and name must be set")
	}
	var timeout *metav1.Duration
	if f.Timeout != "" {
		d, err := duration("timeout", f.Timeout)
		if err != nil {
			return nil, err
		}
		timeout = &metav1.Duration{Duration: d}
	}
	if sa := f.ServiceAccountName; sa != "" && len(validation.IsDNS1123Subdomain(sa)) > 0 {
		return nil, fmt.Errorf("spec.flux.serviceAccountName: %q must be a ServiceAccount name (a DNS subdomain)", sa)
	}
	ns := f.SourceRef.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	return func(folder string) *kustomizev1.Kustomization {
		return &kustomizev1.Kustomization{
			TypeMeta:   metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind},
			ObjectMeta: metav1.ObjectMeta{Name: Name(folder), Namespace: ns},
			Spec: kustomizev1.KustomizationSpec{
				Interval: metav1.Duration{Duration: interval},
				Path:     folderPath(base, folder),
				// A revision's objects leave the cluster with its folder.
				Prune: true,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{
					Kind: f.SourceRef.Kind, Name: f.SourceRef.Name, Namespace: f.SourceRef.Namespace,
				},
				ServiceAccountName: f.ServiceAccountName,
				Timeout:            timeout,
				Wait:               f.Wait != nil && *f.Wait,
			},
		}
	}, nil
}

// duration checks a duration of spec.flux against the Kustomization CRD's
// pattern.
func duration(field, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || !fluxDuration.MatchString(v) {
		return 0, fmt.Errorf("spec.flux.%s: %q must be a duration such as \"10m\" (Flux accepts ms, s, m and h)", field, v)
	}
	return d, nil
}

// node is k as `flux export` prints it: sigs.k8s.io/yaml sorts the keys,
// the status is left out, and the durations are written as spec.flux
// writes them ("10m", where metav1.Duration would print "10m0s").
func node(k *kustomizev1.Kustomization, f config.Flux) (*yaml.RNode, error) {
	what := fmt.Sprintf("%s %s", Kind, k.Name)
	b, err := k8syaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	n, err := yaml.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := n.Pipe(yaml.Clear("status")); err != nil {
		return nil, fmt.Errorf("%s: status: %w", what, err)
	}
	for _, d := range []struct{ field, v string }{{"interval", f.Interval}, {"timeout", f.Timeout}} {
		if d.v == "" {
			continue
		}
		if err := n.PipeE(yaml.Lookup("spec"), yaml.SetField(d.field, yaml.NewStringRNode(d.v))); err != nil {
			return nil, fmt.Errorf("%s: spec.%s: %w", what, d.field, err)
		}
	}
	return n, nil
}

// folderPath is folder's path in the source, in Flux's "./" form.
func folderPath(base, folder string) string {
	return "./" + path.Join(base, folder)
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
