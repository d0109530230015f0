package gateway_test

import (
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// The default profile's ingress gateway becomes revision 1-31's own set.
func ExamplePerRevision() {
	objs := treetest.Objects("../../testdata/istioctl/1-31/default.yaml")
	if err := gateway.PerRevision(objs, "1-31"); err != nil {
		panic(err)
	}
	comps, err := gateway.Find(objs)
	if err != nil {
		panic(err)
	}
	for _, c := range comps {
		fmt.Println("gateway", c.Name)
		for _, o := range c.Objects {
			fmt.Printf("  %s %s\n", o.GetKind(), o.GetName())
		}
		svc := c.Services()[0]
		sel, _ := svc.Pipe(yaml.Lookup("spec", "selector"))
		fmt.Printf("Service selector:\n%s", sel.MustString())
	}
	// Output:
	// gateway istio-ingressgateway-1-31
	//   Deployment istio-ingressgateway-1-31
	//   HorizontalPodAutoscaler istio-ingressgateway-1-31
	//   Role istio-ingressgateway-sds-1-31
	//   RoleBinding istio-ingressgateway-sds-1-31
	//   Service istio-ingressgateway-1-31
	//   ServiceAccount istio-ingressgateway-service-account-1-31
	// Service selector:
	// app: istio-ingressgateway
	// istio: ingressgateway
	// istio.io/rev: 1-31
}

// With perRevision false, the pipeline sends the gateway objects to
// common/ instead, unrenamed.
func ExampleIsGatewayObject() {
	objs := treetest.Objects("../../testdata/istioctl/1-30/demo.yaml")
	comps, err := gateway.Find(objs)
	if err != nil {
		panic(err)
	}
	for _, o := range objs {
		if gateway.IsGatewayObject(comps, o) && o.GetKind() == "Deployment" {
			fmt.Println("common/deployment/" + o.GetName() + ".yaml")
		}
	}
	// Output:
	// common/deployment/istio-egressgateway.yaml
	// common/deployment/istio-ingressgateway.yaml
}

// The stable Service keeps the gateway's name and follows the live revision.
func ExampleStableServices() {
	objs := treetest.Objects("../../testdata/istioctl/1-30/default.yaml")
	if err := gateway.PerRevision(objs, "1-30"); err != nil {
		panic(err)
	}
	stable, err := gateway.StableServices(objs, "1-30")
	if err != nil {
		panic(err)
	}
	for _, s := range stable {
		sel, _ := s.Pipe(yaml.Lookup("spec", "selector"))
		fmt.Printf("Service %s (%s=%s) selects:\n%s", s.GetName(),
			api.LiveRevisionAnnotation, s.GetAnnotations()[api.LiveRevisionAnnotation], sel.MustString())
	}
	// Output:
	// Service istio-ingressgateway (fn.istio-gitops.dev/live-revision=1-30) selects:
	// app: istio-ingressgateway
	// istio: ingressgateway
	// istio.io/rev: 1-30
}

// Each revision gets its own Ingress; only the live one keeps cert-manager's
// annotations.
func ExampleIngress() {
	objs := treetest.Objects("../../testdata/istioctl/1-31/default.yaml")
	if err := gateway.PerRevision(objs, "1-31"); err != nil {
		panic(err)
	}
	template := yaml.MustParse(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: public
  annotations:
    cert-manager.io/cluster-issuer: letsencrypt # live only
spec:
  defaultBackend:
    service:
      name: istio-ingressgateway
      port:
        number: 80
`)
	in, err := gateway.Ingress(template, "1-31", gateway.IngressOptions{LiveOnly: []string{"cert-manager.io/*"}}, objs)
	if err != nil {
		panic(err)
	}
	fmt.Print(in.MustString())
	// Output:
	// apiVersion: networking.k8s.io/v1
	// kind: Ingress
	// metadata:
	//   name: public-1-31
	//   namespace: istio-system
	// spec:
	//   defaultBackend:
	//     service:
	//       name: istio-ingressgateway-1-31
	//       port:
	//         number: 80
}
