package gateway

import (
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// componentLabel is set by istioctl on every object of a gateway chart. The
// tests use it as an independent oracle: Find never reads it.
const componentLabel = "operator.istio.io/component"

func isGatewayByLabel(o *yaml.RNode) bool {
	c := o.GetLabels()[componentLabel]
	return c == "IngressGateways" || c == "EgressGateways"
}

func TestFind(t *testing.T) {
	for _, f := range fixtures {
		for _, rev := range revisions {
			t.Run(f.name+"/"+rev, func(t *testing.T) {
				objs := f.load(t, rev)
				comps := find(t, objs)

				var names []string
				for _, c := range comps {
					names = append(names, c.Name)
				}
				if !slices.Equal(names, f.gateways) {
					t.Fatalf("gateways = %q, want %q", names, f.gateways)
				}
				for _, c := range comps {
					var kinds []string
					for _, o := range c.Objects {
						kinds = append(kinds, o.GetKind())
						if o.GetNamespace() != "istio-system" {
							t.Errorf("%s %s: namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
						}
					}
					if !slices.Equal(kinds, f.kinds) {
						t.Errorf("%s: kinds = %q, want %q", c.Name, kinds, f.kinds)
					}
					if c.Deployment.GetName() != c.Name || c.Deployment.GetKind() != KindDeployment {
						t.Errorf("%s: Deployment is %s %s", c.Name, c.Deployment.GetKind(), c.Deployment.GetName())
					}
					if want := c.Name + "-service-account"; c.ServiceAccount != want {
						t.Errorf("%s: ServiceAccount = %q, want %q", c.Name, c.ServiceAccount, want)
					}
					// The pods' gateway-selecting labels: the chart's
					// `app`/`istio`, or the IstioOperator's label.
					if c.PodLabels["istio"] == "" || c.PodLabels["app"] == "" || c.PodLabels[api.RevisionLabel] != rev {
						t.Errorf("%s: PodLabels = %v", c.Name, c.PodLabels)
					}
					// Every object is the gateway's own: named after it,
					// and (when labelled) with its `istio` label.
					for _, o := range c.Objects {
						if !strings.HasPrefix(o.GetName(), c.Name) {
							t.Errorf("%s: holds %s %s", c.Name, o.GetKind(), o.GetName())
						}
						if v, ok := o.GetLabels()["istio"]; ok && v != c.PodLabels["istio"] {
							t.Errorf("%s: holds %s %s labelled istio=%s", c.Name, o.GetKind(), o.GetName(), v)
						}
					}
				}

				// Exactly the objects istioctl rendered from gateway charts,
				// and none of istiod's look-alikes (Deployment, Service, HPA,
				// Role, RoleBinding, ServiceAccount).
				var n int
				for _, o := range objs {
					if got, want := IsGatewayObject(comps, o), isGatewayByLabel(o); got != want {
						t.Errorf("IsGatewayObject(%s %s) = %v, want %v", o.GetKind(), o.GetName(), got, want)
					}
					if isGatewayByLabel(o) {
						n++
					}
				}
				if len(Objects(comps)) != n || n == 0 {
					t.Errorf("Objects: %d objects, want %d", len(Objects(comps)), n)
				}
			})
		}
	}
}

func TestIsGatewayObjectMatchesCopies(t *testing.T) {
	objs := fixtures[0].load(t, "1-31")
	comps := find(t, objs)
	svc := byKindName(objs, KindService, "istio-ingressgateway")
	if !IsGatewayObject(comps, svc.Copy()) {
		t.Error("a copy of the gateway Service must count as a gateway object")
	}
	// Same name, another kind: istiod's and the gateway's must not mix.
	if IsGatewayObject(comps, byKindName(objs, KindService, "istiod-1-31")) {
		t.Error("istiod's Service must not count as a gateway object")
	}
	other := svc.Copy()
	if err := other.SetNamespace("istio-ingress"); err != nil {
		t.Fatal(err)
	}
	if IsGatewayObject(comps, other) {
		t.Error("a Service of another namespace must not count as a gateway object")
	}
}

func TestFindNoGateway(t *testing.T) {
	objs := fixtures[0].load(t, "1-31")
	objs = slices.DeleteFunc(objs, func(o *yaml.RNode) bool { return isGatewayByLabel(o) })
	if comps := find(t, objs); len(comps) != 0 {
		t.Fatalf("found %d gateways in an output without any", len(comps))
	}
	if err := PerRevision(objs, "1-31"); err != nil {
		t.Fatalf("PerRevision without gateways: %v", err)
	}
}

// A gateway rendered for injection (values.gateways.*.injectionTemplate)
// carries no proxy arguments; a sidecar-injected workload that happens to
// run an istio-proxy container is not a gateway.
func TestFindByInjectionTemplate(t *testing.T) {
	objs := parseObjects(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: injected-gateway
  namespace: istio-ingress
spec:
  selector:
    matchLabels:
      app: injected-gateway
      istio: injected
  template:
    metadata:
      annotations:
        inject.istio.io/templates: gateway
        sidecar.istio.io/inject: "true"
      labels:
        app: injected-gateway
        istio: injected
        istio.io/rev: 1-31
        sidecar.istio.io/inject: "true"
    spec:
      serviceAccountName: injected-gateway-service-account
      containers:
      - name: istio-proxy
        image: auto
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-with-sidecar
  namespace: istio-ingress
spec:
  selector:
    matchLabels:
      app: app-with-sidecar
  template:
    metadata:
      labels:
        app: app-with-sidecar
    spec:
      containers:
      - name: app
        image: app
      - name: istio-proxy
        image: docker.io/istio/proxyv2:1.31.0
        args: [proxy, sidecar]
---
apiVersion: v1
kind: Service
metadata:
  name: injected-gateway
  namespace: istio-ingress
spec:
  selector:
    app: injected-gateway
    istio: injected
  ports:
  - name: http2
    port: 80
`)
	comps := find(t, objs)
	if len(comps) != 1 || comps[0].Name != "injected-gateway" {
		t.Fatalf("Find = %v, want only injected-gateway", comps)
	}
	if got := len(comps[0].Objects); got != 2 {
		t.Errorf("injected-gateway has %d objects, want its Deployment and Service", got)
	}
	// Its ServiceAccount is not in the output: nothing to rename it to.
	if comps[0].ServiceAccount != "" {
		t.Errorf("ServiceAccount = %q, want none", comps[0].ServiceAccount)
	}
	if err := PerRevision(objs, "1-31"); err != nil {
		t.Fatal(err)
	}
	d := objs[0]
	if d.GetName() != "injected-gateway-1-31" || d.GetNamespace() != "istio-ingress" {
		t.Errorf("Deployment is %s/%s", d.GetNamespace(), d.GetName())
	}
	if got := object.Scalar(d, "spec", "template", "spec", "serviceAccountName"); got != "injected-gateway-service-account" {
		t.Errorf("serviceAccountName = %q: an account outside the output must be kept", got)
	}
	if objs[1].GetName() != "app-with-sidecar" {
		t.Errorf("the sidecar workload was renamed %q", objs[1].GetName())
	}
}

func TestFindErrors(t *testing.T) {
	base := readObjects(t, "../../testdata/gateway/custom-1-30.yaml")
	tests := []struct {
		name string
		edit func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode
		want string
	}{
		{
			name: "Service selecting two gateways and named after neither",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				return append(objs, mustParse(t, `
apiVersion: v1
kind: Service
metadata:
  name: all-ingress
  namespace: istio-system
spec:
  selector:
    app: istio-ingressgateway
  ports:
  - port: 80
`))
			},
			want: `Service istio-system/all-ingress: selects the pods of gateways ["internal-ingress" "public-ingress"]`,
		},
		{
			name: "ServiceAccount shared by two gateways",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				d := byKindName(objs, KindDeployment, "internal-ingress")
				if err := object.SetString(d, "public-ingress-service-account", "spec", "template", "spec", "serviceAccountName"); err != nil {
					t.Fatal(err)
				}
				return objs
			},
			want: `ServiceAccount istio-system/public-ingress-service-account: belongs to gateways "internal-ingress" and "public-ingress"`,
		},
		{
			name: "object twice",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				return append(objs, byKindName(objs, KindService, "public-ingress").Copy())
			},
			want: "Service istio-system/public-ingress: must appear once in the output",
		},
		{
			name: "PDB with a bad operator",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				p := byKindName(objs, KindPDB, "public-ingress")
				if err := p.PipeE(yaml.LookupCreate(yaml.MappingNode, "spec", "selector"),
					yaml.SetField("matchExpressions", yaml.MustParse("- {key: istio, operator: Like}"))); err != nil {
					t.Fatal(err)
				}
				return objs
			},
			want: `PodDisruptionBudget istio-system/public-ingress: spec.selector.matchExpressions[0].operator: "Like" must be In, NotIn, Exists or DoesNotExist`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.edit(t, copyAll(base))
			_, err := Find(objs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Find error = %v, want %q", err, tt.want)
			}
		})
	}
}

// A PDB written with matchExpressions is found like one with matchLabels.
func TestFindPDBByExpressions(t *testing.T) {
	objs := readObjects(t, "../../testdata/gateway/custom-1-30.yaml")
	p := byKindName(objs, KindPDB, "internal-ingress")
	sel := yaml.MustParse(`
matchExpressions:
- {key: istio, operator: In, values: [custom-internal]}
- {key: app, operator: Exists}
- {key: canary, operator: DoesNotExist}
- {key: istio, operator: NotIn, values: [custom]}
`)
	if err := p.PipeE(yaml.Lookup("spec"), yaml.SetField("selector", sel)); err != nil {
		t.Fatal(err)
	}
	comps := find(t, objs)
	if !comps[0].Has(p) || comps[1].Has(p) {
		t.Fatal("the PDB selecting internal-ingress by expressions must be internal-ingress's")
	}
	if err := PerRevision(objs, "1-30"); err != nil {
		t.Fatal(err)
	}
	if got := object.Scalar(p, "spec", "selector", "matchLabels", api.RevisionLabel); got != "1-30" {
		t.Errorf("PDB matchLabels[istio.io/rev] = %q, want 1-30", got)
	}
}
