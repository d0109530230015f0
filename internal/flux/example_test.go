package flux_test

import (
	"os"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/flux"
)

// A tree at clusters/prod/istio of the flux-system GitRepository, with one
// revision: the CRDs of common/ are never pruned, and each Kustomization
// goes to its own file under flux/.
func Example() {
	f := config.Flux{
		Path:      "./clusters/prod/istio",
		SourceRef: config.SourceRef{Kind: "GitRepository", Name: "flux-system"},
		Interval:  "10m",
	}
	objs, err := flux.Kustomizations(f, "istio-system", []string{"1-31"})
	if err != nil {
		panic(err)
	}
	crd := yaml.MustParse("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gateways.networking.istio.io\n")
	if err := flux.DisablePrune(crd); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("# " + flux.File("1-31") + "\n")
	if err := (kio.ByteWriter{Writer: os.Stdout}).Write(append(objs[1:], crd)); err != nil {
		panic(err)
	}
	// Output:
	// # flux/1-31.yaml
	// apiVersion: kustomize.toolkit.fluxcd.io/v1
	// kind: Kustomization
	// metadata:
	//   name: istio-1-31
	//   namespace: flux-system
	// spec:
	//   dependsOn:
	//   - name: istio-common
	//   healthChecks:
	//   - apiVersion: apps/v1
	//     kind: Deployment
	//     name: istiod-1-31
	//     namespace: istio-system
	//   interval: 10m
	//   path: ./clusters/prod/istio/1-31
	//   prune: true
	//   sourceRef:
	//     kind: GitRepository
	//     name: flux-system
	// ---
	// apiVersion: apiextensions.k8s.io/v1
	// kind: CustomResourceDefinition
	// metadata:
	//   name: gateways.networking.istio.io
	//   annotations:
	//     kustomize.toolkit.fluxcd.io/prune: disabled
}
