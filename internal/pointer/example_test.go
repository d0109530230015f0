package pointer_test

import (
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/pointer"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

// Render what points at revision 1-31 from its istioctl output: make it the
// default revision, point tag prod-stable at it, and guard the webhooks
// against drift before they are written to common/.
func Example() {
	objs := treetest.Objects("../../testdata/istioctl/1-31/default.yaml")

	for _, o := range objs {
		if pointer.IsPointer(o) {
			fmt.Println("istioctl rendered a pointer itself:", o.GetName())
		}
	}
	def, err := pointer.DefaultRevision("istio-system", "1-31", objs)
	if err != nil {
		panic(err)
	}
	tag, err := pointer.Tag("istio-system", "prod-stable", "1-31", objs)
	if err != nil {
		panic(err)
	}
	common := append(def, tag...)
	for _, o := range common {
		if err := webhook.DriftGuards(o); err != nil {
			panic(err)
		}
		fmt.Println(o.GetKind(), o.GetName())
	}
	fp, _ := common[1].GetString("webhooks[0].failurePolicy")
	fmt.Println("istiod-default-validator failurePolicy:", fp)
	// Output:
	// Service istiod
	// ValidatingWebhookConfiguration istiod-default-validator
	// MutatingWebhookConfiguration istio-revision-tag-prod-stable
	// Service istiod-revision-tag-prod-stable
	// istiod-default-validator failurePolicy: Fail
}

// The default tag also takes over the selectors of an unrevisioned install:
// namespaces labelled istio-injection=enabled and pods annotated
// sidecar.istio.io/inject=true.
func ExampleTag() {
	objs := treetest.Objects("../../testdata/istioctl/1-30/default.yaml")
	tag, err := pointer.Tag("istio-system", "default", "1-30", objs)
	if err != nil {
		panic(err)
	}
	whs, err := tag[0].Pipe(yaml.Lookup("webhooks"))
	if err != nil {
		panic(err)
	}
	names, err := whs.ElementValues("name")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		fmt.Println(n)
	}
	fmt.Println(tag[1].GetName(), tag[1].GetLabels()["istio.io/tag"], "->", tag[1].GetLabels()["istio.io/rev"])
	// Output:
	// rev.namespace.sidecar-injector.istio.io
	// rev.object.sidecar-injector.istio.io
	// namespace.sidecar-injector.istio.io
	// object.sidecar-injector.istio.io
	// istiod-revision-tag-default default -> 1-30
}
