package kustomization_test

import (
	"fmt"

	"github.com/istio-gitops/istio-gitops/internal/kustomization"
)

func ExampleNew() {
	k, _ := kustomization.New([]string{"common", "1-30", "1-31"})
	fmt.Print(k.MustString())
	// Output:
	// apiVersion: kustomize.config.k8s.io/v1beta1
	// kind: Kustomization
	// resources:
	// - common
	// - 1-30
	// - 1-31
}
