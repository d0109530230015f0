package flux_test

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/flux"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

var cases = []struct {
	name      string
	flux      config.Flux
	namespace string
	revisions []string
	// base is the tree's path in the source, as Flux's "./" paths start.
	base string
}{
	{
		name:      "git",
		flux:      config.Flux{Path: "./clusters/prod/istio", SourceRef: config.SourceRef{Kind: "GitRepository", Name: "flux-system"}, Interval: "10m"},
		namespace: "istio-system",
		revisions: []string{"1-30", "1-31"},
		base:      "./clusters/prod/istio",
	},
	{
		name:      "oci-other-namespace",
		flux:      config.Flux{Path: "clusters/prod/istio/", SourceRef: config.SourceRef{Kind: "OCIRepository", Name: "mesh", Namespace: "mesh-sources"}, Interval: "1h30m"},
		namespace: "istio-control",
		revisions: []string{"1-31", "1-30", "canary"},
		base:      "./clusters/prod/istio",
	},
	{
		// timeout, wait and serviceAccountName pass through to every one.
		name: "passthroughs",
		flux: config.Flux{Path: "./clusters/prod/istio", SourceRef: config.SourceRef{Kind: "GitRepository", Name: "flux-system"}, Interval: "10m",
			Timeout: "4m30s", Wait: ptr(true), ServiceAccountName: "istio-applier"},
		namespace: "istio-system",
		revisions: []string{"1-31"},
		base:      "./clusters/prod/istio",
	},
	{
		// wait: false is Flux's default: nothing to write.
		name: "no-wait",
		flux: config.Flux{Path: "./clusters/prod/istio", SourceRef: config.SourceRef{Kind: "GitRepository", Name: "flux-system"}, Interval: "10m",
			Wait: ptr(false)},
		namespace: "istio-system",
		revisions: []string{"1-31"},
		base:      "./clusters/prod/istio",
	},
	{
		name:      "source-root",
		flux:      config.Flux{Path: "./", SourceRef: config.SourceRef{Kind: "Bucket", Name: "mesh"}, Interval: "5m"},
		namespace: "istio-system",
		revisions: []string{"1-31"},
		base:      ".",
	},
}

func ptr[T any](v T) *T { return &v }

func TestKustomizationsGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := flux.Kustomizations(tc.flux, tc.namespace, tc.revisions)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := (kio.ByteWriter{Writer: &b}).Write(objs); err != nil {
				t.Fatal(err)
			}
			treetest.GoldenFile(t, filepath.Join("../../testdata/flux", tc.name+".yaml"), b.Bytes())
		})
	}
}

// decode reads a rendered Kustomization with Flux's own API types; unknown
// or misspelled fields are errors.
func decode(t *testing.T, obj *yaml.RNode) *kustomizev1.Kustomization {
	t.Helper()
	k := &kustomizev1.Kustomization{}
	if err := k8syaml.UnmarshalStrict([]byte(obj.MustString()), k); err != nil {
		t.Fatalf("%s: not a Flux Kustomization: %v", obj.GetName(), err)
	}
	return k
}

// TestKustomizationsFluxAPI checks the objects as kustomize-controller
// reads them: API, names, paths, sources, dependencies and health checks.
func TestKustomizationsFluxAPI(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := flux.Kustomizations(tc.flux, tc.namespace, tc.revisions)
			if err != nil {
				t.Fatal(err)
			}
			folders := append([]string{"common"}, tc.revisions...)
			if len(objs) != len(folders) {
				t.Fatalf("got %d objects, want %d", len(objs), len(folders))
			}
			interval, _ := time.ParseDuration(tc.flux.Interval)
			wantNS := tc.flux.SourceRef.Namespace
			if wantNS == "" {
				wantNS = "flux-system"
			}
			byKey := map[string]*kustomizev1.Kustomization{}
			var order []string
			for i, obj := range objs {
				k := decode(t, obj)
				folder := folders[i]
				what := k.Name
				if got := k.APIVersion; got != kustomizev1.GroupVersion.String() {
					t.Errorf("%s: apiVersion %q, want %q", what, got, kustomizev1.GroupVersion.String())
				}
				if k.Kind != kustomizev1.KustomizationKind {
					t.Errorf("%s: kind %q", what, k.Kind)
				}
				if k.Name != flux.Name(folder) || k.Namespace != wantNS {
					t.Errorf("%s/%s, want %s/%s", k.Namespace, k.Name, wantNS, flux.Name(folder))
				}
				checkPath(t, what, k.Spec.Path, tc.base, folder)
				if !k.Spec.Prune {
					t.Errorf("%s: prune must be on: a retired revision's objects must leave the cluster", what)
				}
				if k.Spec.Interval.Duration != interval {
					t.Errorf("%s: interval %v, want %v", what, k.Spec.Interval.Duration, interval)
				}
				if k.Spec.ServiceAccountName != tc.flux.ServiceAccountName {
					t.Errorf("%s: serviceAccountName %q, want %q", what, k.Spec.ServiceAccountName, tc.flux.ServiceAccountName)
				}
				if wait := tc.flux.Wait != nil && *tc.flux.Wait; k.Spec.Wait != wait {
					t.Errorf("%s: wait %v, want %v", what, k.Spec.Wait, wait)
				}
				switch timeout, _ := time.ParseDuration(tc.flux.Timeout); {
				case tc.flux.Timeout == "" && k.Spec.Timeout != nil:
					t.Errorf("%s: timeout %v, want none", what, k.Spec.Timeout.Duration)
				case tc.flux.Timeout != "" && (k.Spec.Timeout == nil || k.Spec.Timeout.Duration != timeout):
					t.Errorf("%s: timeout %v, want %v", what, k.Spec.Timeout, timeout)
				}
				src := k.Spec.SourceRef
				if src.Kind != tc.flux.SourceRef.Kind || src.Name != tc.flux.SourceRef.Name || src.Namespace != tc.flux.SourceRef.Namespace {
					t.Errorf("%s: sourceRef %+v, want %+v", what, src, tc.flux.SourceRef)
				}
				if folder == "common" {
					if len(k.Spec.DependsOn) != 0 || len(k.Spec.HealthChecks) != 0 {
						t.Errorf("%s: dependsOn %v, healthChecks %v: common depends on nothing", what, k.Spec.DependsOn, k.Spec.HealthChecks)
					}
				} else {
					if len(k.Spec.DependsOn) != 1 || k.Spec.DependsOn[0].Name != "istio-common" {
						t.Errorf("%s: dependsOn %v, want istio-common", what, k.Spec.DependsOn)
					}
					hc := k.Spec.HealthChecks
					if len(hc) != 1 || hc[0].APIVersion != "apps/v1" || hc[0].Kind != "Deployment" ||
						hc[0].Name != "istiod-"+folder || hc[0].Namespace != tc.namespace {
						t.Errorf("%s: healthChecks %+v, want Deployment %s/istiod-%s", what, hc, tc.namespace, folder)
					}
				}
				key := k.Namespace + "/" + k.Name
				if byKey[key] != nil {
					t.Errorf("%s: two Kustomizations", key)
				}
				byKey[key] = k
				order = append(order, key)
				if got, want := flux.File(folder), "flux/"+folder+".yaml"; got != want {
					t.Errorf("File(%q) = %q, want %q", folder, got, want)
				}
			}
			for _, e := range dependencyErrors(byKey, order) {
				t.Error(e)
			}
		})
	}
}

// checkPath: a path Flux resolves inside the source, in "./" form, clean,
// ending in the folder under the tree's base.
func checkPath(t *testing.T, what, p, base, folder string) {
	t.Helper()
	rest, ok := strings.CutPrefix(p, "./")
	if !ok {
		t.Errorf("%s: path %q must start with ./", what, p)
		return
	}
	if path.Clean(rest) != rest || rest == ".." || strings.HasPrefix(rest, "../") || strings.Contains(rest, "/../") || strings.HasSuffix(rest, "/") {
		t.Errorf("%s: path %q is not clean", what, p)
	}
	if want := "./" + path.Join(base, folder); p != want {
		t.Errorf("%s: path %q, want %q", what, p, want)
	}
}

// checkDependencies: every dependsOn names a rendered Kustomization (in the
// same namespace when none is given, as Flux reads it), and the graph has
// no cycle, so Flux can order them.
func dependencyErrors(byKey map[string]*kustomizev1.Kustomization, order []string) []string {
	var errs []string
	deps := func(k *kustomizev1.Kustomization) []string {
		var out []string
		for _, d := range k.Spec.DependsOn {
			ns := d.Namespace
			if ns == "" {
				ns = k.Namespace
			}
			key := ns + "/" + d.Name
			if byKey[key] == nil {
				errs = append(errs, fmt.Sprintf("%s depends on %s, which is not rendered", k.Name, key))
				continue
			}
			out = append(out, key)
		}
		return out
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(key string, trail []string)
	visit = func(key string, trail []string) {
		switch state[key] {
		case visiting:
			errs = append(errs, "dependency cycle: "+strings.Join(append(trail, key), " -> "))
			return
		case done:
			return
		}
		state[key] = visiting
		for _, d := range deps(byKey[key]) {
			visit(d, append(trail, key))
		}
		state[key] = done
	}
	for _, key := range order {
		visit(key, nil)
	}
	return errs
}

// TestCheckDependenciesFindsCycles makes sure the graph check can fail.
func TestCheckDependenciesFindsCycles(t *testing.T) {
	a := &kustomizev1.Kustomization{}
	a.Name, a.Namespace = "a", "ns"
	b := a.DeepCopy()
	b.Name = "b"
	a.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "b"}}
	b.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "a"}}
	c := &kustomizev1.Kustomization{}
	c.Name, c.Namespace = "c", "ns"
	c.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "missing"}}
	errs := dependencyErrors(map[string]*kustomizev1.Kustomization{"ns/a": a, "ns/b": b, "ns/c": c}, []string{"ns/a", "ns/b", "ns/c"})
	want := []string{"dependency cycle: ns/a -> ns/b -> ns/a", "c depends on ns/missing, which is not rendered"}
	if !slices.Equal(errs, want) {
		t.Errorf("errors %q, want %q", errs, want)
	}
}

func TestKustomizationsErrors(t *testing.T) {
	ok := config.Flux{Path: "./clusters/prod/istio", SourceRef: config.SourceRef{Kind: "GitRepository", Name: "flux-system"}, Interval: "10m"}
	for _, tc := range []struct {
		name      string
		edit      func(f *config.Flux)
		revisions []string
		want      string
	}{
		{"empty path", func(f *config.Flux) { f.Path = "" }, nil, `spec.flux.path: must be the tree's path in the source`},
		{"outside the source", func(f *config.Flux) { f.Path = "./clusters/../../x" }, nil, `spec.flux.path: "./clusters/../../x" must stay inside the source`},
		{"backslash", func(f *config.Flux) { f.Path = `clusters\prod` }, nil, `must use forward slashes`},
		{"interval", func(f *config.Flux) { f.Interval = "often" }, nil, `spec.flux.interval: "often" must be a duration`},
		{"negative interval", func(f *config.Flux) { f.Interval = "-10m" }, nil, `spec.flux.interval: "-10m" must be a duration`},
		{"microseconds", func(f *config.Flux) { f.Interval = "10us" }, nil, `spec.flux.interval: "10us" must be a duration`},
		{"revision too long for a label", nil, []string{strings.Repeat("r", 58)}, `must be at most 57 characters with Flux`},
		{"no source", func(f *config.Flux) { f.SourceRef.Name = "" }, nil, `spec.flux.sourceRef: kind and name must be set`},
		{"revision named common", nil, []string{"common"}, `spec.revisions[0].name: "common" must not be used`},
		{"duplicate revision", nil, []string{"1-31", "1-31"}, `spec.revisions[1].name: "1-31" must be unique`},
		{"revision with a dot", nil, []string{"1.31"}, `spec.revisions[0].name: "1.31" must be a DNS label`},
		{"no revision", nil, []string{}, `spec.revisions: must list at least one revision`},
		{"timeout", func(f *config.Flux) { f.Timeout = "soon" }, nil, `spec.flux.timeout: "soon" must be a duration`},
		{"timeout in days", func(f *config.Flux) { f.Timeout = "1d" }, nil, `spec.flux.timeout: "1d" must be a duration`},
		{"service account", func(f *config.Flux) { f.ServiceAccountName = "Istio_Applier" }, nil, `spec.flux.serviceAccountName: "Istio_Applier" must be a ServiceAccount name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ok
			if tc.edit != nil {
				tc.edit(&f)
			}
			revs := tc.revisions
			if revs == nil {
				revs = []string{"1-31"}
			}
			_, err := flux.Kustomizations(f, "istio-system", revs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestDisablePrune marks every CRD of istioctl's output and nothing else,
// with the annotation and value kustomize-controller reads.
func TestDisablePrune(t *testing.T) {
	if want := kustomizev1.GroupVersion.Group + "/prune"; api.FluxPruneAnnotation != want {
		t.Errorf("annotation %q, kustomize-controller reads %q", api.FluxPruneAnnotation, want)
	}
	if flux.PruneDisabled != kustomizev1.DisabledValue {
		t.Errorf("value %q, kustomize-controller reads %q", flux.PruneDisabled, kustomizev1.DisabledValue)
	}
	f, err := os.Open("../../testdata/istioctl/1-31/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := (&kio.ByteReader{Reader: f, OmitReaderAnnotations: true}).Read()
	if err != nil {
		t.Fatal(err)
	}
	crds := 0
	for _, o := range objs {
		before := o.MustString()
		if err := flux.DisablePrune(o); err != nil {
			t.Fatal(err)
		}
		if o.GetKind() != "CustomResourceDefinition" {
			if o.MustString() != before {
				t.Errorf("%s %s changed", o.GetKind(), o.GetName())
			}
			continue
		}
		crds++
		if got := o.GetAnnotations()[api.FluxPruneAnnotation]; got != "disabled" {
			t.Errorf("CRD %s: %s = %q", o.GetName(), api.FluxPruneAnnotation, got)
		}
		again := o.MustString()
		if err := flux.DisablePrune(o); err != nil || o.MustString() != again {
			t.Errorf("CRD %s: DisablePrune is not idempotent (%v)", o.GetName(), err)
		}
		// Only the annotation was added.
		o2, err := yaml.Parse(before)
		if err != nil {
			t.Fatal(err)
		}
		if err := o2.PipeE(yaml.LookupCreate(yaml.MappingNode, "metadata", "annotations"), yaml.SetField(api.FluxPruneAnnotation, yaml.NewStringRNode("disabled"))); err != nil {
			t.Fatal(err)
		}
		if o2.MustString() != o.MustString() {
			t.Errorf("CRD %s: changed beyond the annotation", o.GetName())
		}
	}
	if crds < 10 {
		t.Errorf("only %d CRDs in istioctl's output", crds)
	}
}
