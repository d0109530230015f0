package gateway

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// ingressConfig is a function config with an Ingress template the way a
// user writes it: comments, a live-only cert-manager and external-dns
// setup, a backend that is not a gateway.
const ingressConfig = `apiVersion: fn.istio-gitops.dev/v1alpha1
kind: IstioGitOps
metadata:
  name: prod
spec:
  revisions:
  - name: 1-30
  - name: 1-31
  gateways:
    live: 1-30
    ingress:
      liveOnlyAnnotations: ["cert-manager.io/*", "external-dns.alpha.kubernetes.io/*"]
      template:
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: public # one per revision: public-<rev>
          annotations:
            kubernetes.io/ingress.class: gce
            # Only the live Ingress asks for certificates and DNS records.
            cert-manager.io/cluster-issuer: letsencrypt
            external-dns.alpha.kubernetes.io/hostname: www.example.com,status.example.com
            networking.gke.io/v1beta1.FrontendConfig: public-frontend
        spec:
          tls:
          - hosts:
            - www.example.com
            secretName: www-example-com-tls # issued once, read by both
          defaultBackend:
            service:
              name: istio-ingressgateway
              port:
                number: 80
          rules:
          - host: status.example.com
            http:
              paths:
              - path: /healthz/ready
                pathType: Prefix
                backend:
                  service:
                    name: istio-ingressgateway # the gateway's status port
                    port:
                      name: status-port
              - path: /legacy
                pathType: Prefix
                backend:
                  service:
                    name: legacy-frontend # not a gateway: kept
                    port:
                      number: 8080
`

// ingressTemplate is the Ingress template of the config
// (spec.gateways.ingress.template) as a copy of the node it was read from,
// so its order and comments survive; nil when the config has none. Its
// shape was checked with the config's (object.CheckShape): metadata, its
// labels and annotations are mappings, its name and namespace strings.
// The pipeline reads it the same way, through cfg.Ingresses().
func ingressTemplate(cfg *config.IstioGitOps) (*yaml.RNode, error) {
	for _, s := range cfg.Ingresses() {
		if s.Field == config.FieldIngress {
			return s.TemplateNode(cfg)
		}
	}
	return nil, nil
}

var liveOnly = []string{"cert-manager.io/*", "external-dns.alpha.kubernetes.io/*"}

func loadIngressTemplate(t *testing.T, cfgYAML string) *yaml.RNode {
	t.Helper()
	cfg, err := config.Load(mustParse(t, cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ingressTemplate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl == nil {
		t.Fatal("ingressTemplate returned no template")
	}
	return tmpl
}

func TestIngressTemplate(t *testing.T) {
	tmpl := loadIngressTemplate(t, ingressConfig)
	s := tmpl.MustString()
	for _, want := range []string{"name: public # one per revision: public-<rev>", "# Only the live Ingress asks"} {
		if !strings.Contains(s, want) {
			t.Errorf("template lost %q:\n%s", want, s)
		}
	}
	// A copy: rendering must not edit the config.
	cfg, err := config.Load(mustParse(t, ingressConfig))
	if err != nil {
		t.Fatal(err)
	}
	tmpl2, err := ingressTemplate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl2.SetName("changed"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cfg.Node.MustString(), "changed") {
		t.Error("IngressTemplate must return a copy")
	}

	// Without a node (a config built in code) the map is used.
	cfg.Node = nil
	tmpl3, err := ingressTemplate(cfg)
	if err != nil || tmpl3.GetName() != "public" {
		t.Fatalf("IngressTemplate without node = %v, %v", tmpl3, err)
	}
	cfg.Spec.Gateways.Ingress = nil
	if tmpl4, err := ingressTemplate(cfg); tmpl4 != nil || err != nil {
		t.Errorf("IngressTemplate without ingress = %v, %v", tmpl4, err)
	}
}

func TestIngress(t *testing.T) {
	f := fixtures[0]
	tmpl := loadIngressTemplate(t, ingressConfig)
	before := tmpl.MustString()
	var outs []string
	for _, s := range perRevisionSets(t, f) {
		for _, live := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/live=%v", s.rev, live), func(t *testing.T) {
				in, err := Ingress(tmpl, s.rev, IngressOptions{Live: live, LiveOnly: liveOnly}, s.after)
				if err != nil {
					t.Fatal(err)
				}
				out := serialize(t, in)
				if live {
					golden(t, fmt.Sprintf("ingress-%s-%s-live.yaml", f.name, s.rev), out)
				} else {
					golden(t, fmt.Sprintf("ingress-%s-%s.yaml", f.name, s.rev), out)
				}
				outs = append(outs, out)

				if want := "public-" + s.rev; in.GetName() != want {
					t.Errorf("name = %q, want %q", in.GetName(), want)
				}
				if in.GetNamespace() != "istio-system" {
					t.Errorf("namespace = %q, want the gateway's istio-system", in.GetNamespace())
				}
				svc := "istio-ingressgateway-" + s.rev
				if byKindName(s.after, KindService, svc) == nil {
					t.Fatalf("the revision has no Service %s", svc)
				}
				for _, path := range [][]string{
					{"spec", "defaultBackend", "service", "name"},
					{"spec", "rules", "[host=status.example.com]", "http", "paths", "[path=/healthz/ready]", "backend", "service", "name"},
				} {
					if got := object.Scalar(in, path...); got != svc {
						t.Errorf("%s = %q, want %q", strings.Join(path, "."), got, svc)
					}
				}
				if got := object.Scalar(in, "spec", "rules", "[host=status.example.com]", "http", "paths", "[path=/legacy]", "backend", "service", "name"); got != "legacy-frontend" {
					t.Errorf("the non-gateway backend became %q", got)
				}
				ann := in.GetAnnotations()
				for _, k := range []string{"cert-manager.io/cluster-issuer", "external-dns.alpha.kubernetes.io/hostname"} {
					if _, ok := ann[k]; ok != live {
						t.Errorf("annotation %s present = %v, want %v", k, ok, live)
					}
				}
				for _, k := range []string{"kubernetes.io/ingress.class", "networking.gke.io/v1beta1.FrontendConfig"} {
					if _, ok := ann[k]; !ok {
						t.Errorf("annotation %s must be on every revision's Ingress", k)
					}
				}
				for _, c := range []string{"# not a gateway: kept", "# issued once, read by both"} {
					if !strings.Contains(out, c) {
						t.Errorf("comment %q lost", c)
					}
				}
			})
		}
	}
	if tmpl.MustString() != before {
		t.Error("Ingress changed the template")
	}
	// Switching live touches only annotations; the revision's Ingress
	// differs from the other's only in names.
	if a, b := withoutLiveBits(t, outs[0]), withoutLiveBits(t, outs[1]); a != b || outs[0] == outs[1] {
		t.Errorf("live and non-live Ingress of 1-30 must differ only in annotations:\n%s", lineDiff(a, b))
	}
	if a, b := strings.ReplaceAll(outs[0], "1-30", "REV"), strings.ReplaceAll(outs[2], "1-31", "REV"); a != b {
		t.Errorf("the revisions' Ingresses must differ only in the revision:\n%s", lineDiff(a, b))
	}
}

// A template reaching two custom gateways by their original names.
func TestIngressCustomGateways(t *testing.T) {
	tmpl := mustParse(t, `
metadata:
  name: edge
  annotations:
    cert-manager.io/issuer: internal-ca
spec:
  rules:
  - host: www.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: public-ingress
            port:
              name: http2
  - host: internal.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: internal-ingress
            port:
              number: 443
`)
	for _, s := range perRevisionSets(t, fixtures[2]) {
		in, err := Ingress(tmpl, s.rev, IngressOptions{Live: s.rev == "1-31", LiveOnly: liveOnly}, s.after)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, fmt.Sprintf("ingress-custom-%s.yaml", s.rev), serialize(t, in))
		if in.GetApiVersion() != "networking.k8s.io/v1" || in.GetKind() != "Ingress" {
			t.Errorf("type = %s %s", in.GetApiVersion(), in.GetKind())
		}
		for host, svc := range map[string]string{"www.example.com": "public-ingress", "internal.example.com": "internal-ingress"} {
			got := object.Scalar(in, "spec", "rules", "[host="+host+"]", "http", "paths", "[path=/]", "backend", "service", "name")
			if want := svc + "-" + s.rev; got != want {
				t.Errorf("%s: %s backend = %q, want %q", s.rev, host, got, want)
			}
		}
		if _, ok := in.GetAnnotations()["cert-manager.io/issuer"]; ok != (s.rev == "1-31") {
			t.Errorf("%s: cert-manager annotation present = %v", s.rev, ok)
		}
	}
}

func TestIngressErrors(t *testing.T) {
	objs := perRevisionCopy(t, fixtures[0], "1-31")
	base := loadIngressTemplate(t, ingressConfig)
	tests := []struct {
		name     string
		edit     func(t *testing.T, n *yaml.RNode) *yaml.RNode
		liveOnly []string
		want     string
	}{
		{
			name: "no template",
			edit: func(t *testing.T, n *yaml.RNode) *yaml.RNode { return nil },
			want: "Ingress template: must be an Ingress object",
		},
		{
			name: "no name",
			edit: func(t *testing.T, n *yaml.RNode) *yaml.RNode {
				if _, err := n.Pipe(yaml.Lookup("metadata"), yaml.Clear("name")); err != nil {
					t.Fatal(err)
				}
				return n
			},
			want: "Ingress template: metadata.name must be set",
		},
		{
			name: "another kind",
			edit: func(t *testing.T, n *yaml.RNode) *yaml.RNode { n.SetKind("Service"); return n },
			want: `Ingress template "public": kind "Service" must be "Ingress"`,
		},
		{
			name: "old apiVersion",
			edit: func(t *testing.T, n *yaml.RNode) *yaml.RNode { n.SetApiVersion("extensions/v1beta1"); return n },
			want: `Ingress template "public": apiVersion "extensions/v1beta1" must be "networking.k8s.io/v1"`,
		},
		{
			name:     "bad pattern",
			liveOnly: []string{"cert-manager.io/*/x*"},
			want:     `liveOnlyAnnotations[0]: "cert-manager.io/*/x*" must be an annotation key, optionally ending in "*"`,
		},
		{
			name: "no gateway backend",
			edit: func(t *testing.T, n *yaml.RNode) *yaml.RNode {
				if _, err := n.Pipe(yaml.Lookup("spec"), yaml.Clear("defaultBackend")); err != nil {
					t.Fatal(err)
				}
				if _, err := n.Pipe(yaml.Lookup("spec"), yaml.Clear("rules")); err != nil {
					t.Fatal(err)
				}
				return n
			},
			want: `Ingress template "public": no backend service names a gateway Service of revision "1-31": spec.defaultBackend or a rule's backend must name one of ["istio-ingressgateway"]`,
		},
		{
			name: "unknown port",
			edit: func(t *testing.T, n *yaml.RNode) *yaml.RNode {
				if err := object.SetString(n, "8080", "spec", "defaultBackend", "service", "port", "number"); err != nil {
					t.Fatal(err)
				}
				return n
			},
			want: `Ingress template "public": spec.defaultBackend.service.port: "8080" must be a port of Service istio-system/istio-ingressgateway-1-31 (status-port=15021, http2=80, https=443)`,
		},
		{
			name: "other namespace",
			edit: func(t *testing.T, n *yaml.RNode) *yaml.RNode {
				if err := n.SetNamespace("web"); err != nil {
					t.Fatal(err)
				}
				return n
			},
			want: `Ingress template "public": metadata.namespace "web" must be the gateway Services' namespace "istio-system"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo := tt.liveOnly
			if lo == nil {
				lo = liveOnly
			}
			tmpl := base.Copy()
			if tt.edit != nil {
				tmpl = tt.edit(t, tmpl)
			}
			_, err := Ingress(tmpl, "1-31", IngressOptions{Live: true, LiveOnly: lo}, objs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Ingress error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMatchesAny(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{"cert-manager.io/cluster-issuer", true},
		{"cert-manager.io/issuer", true},
		{"acme.cert-manager.io/http01-edit-in-place", false},
		{"external-dns.alpha.kubernetes.io/hostname", true},
		{"kubernetes.io/ingress.class", false},
		{"exact.example.com/key", true},
		{"exact.example.com/key2", false},
	} {
		if got := MatchesAny(tt.key, append(slices.Clone(liveOnly), "exact.example.com/key")); got != tt.want {
			t.Errorf("MatchesAny(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

// TestIngressTemplateShapes writes every value of the template of
// ingressConfig, one at a time, as a list, a map, a string and a null:
// rendering must then fail with an error or give an object of a shape
// every reader takes (no panic, no key twice), never anything else.
func TestIngressTemplateShapes(t *testing.T) {
	objs := perRevisionCopy(t, fixtures[0], "1-31")
	root := mustParse(t, ingressConfig)
	tmpl, err := root.Pipe(yaml.Lookup("spec", "gateways", "ingress", "template"))
	if err != nil || tmpl == nil {
		t.Fatal("no template")
	}
	// Every value node under the template, by its path.
	type spot struct {
		path string
		node *yaml.Node
	}
	var spots []spot
	var walk func(n *yaml.Node, at string)
	walk = func(n *yaml.Node, at string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := at + "." + n.Content[i].Value
				spots = append(spots, spot{p, n.Content[i+1]})
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", at, i)
				spots = append(spots, spot{p, c})
				walk(c, p)
			}
		}
	}
	walk(tmpl.YNode(), "template")
	shapes := map[string]*yaml.Node{
		"a list":   {Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: "x"}}},
		"a map":    {Kind: yaml.MappingNode, Tag: yaml.NodeTagMap, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: "x"}, {Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: "y"}}},
		"a string": {Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: "x"},
		"a null":   {Kind: yaml.ScalarNode, Tag: yaml.NodeTagNull, Value: "null"},
	}
	for _, s := range spots {
		for _, name := range []string{"a list", "a map", "a string", "a null"} {
			saved := *s.node
			*s.node = *shapes[name]
			doc := root.MustString()
			*s.node = saved
			t.Run(s.path+" as "+name, func(t *testing.T) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v\n%s", r, doc)
					}
				}()
				cfg, err := config.Load(mustParse(t, doc))
				if err != nil {
					return
				}
				tmpl, err := ingressTemplate(cfg)
				if err != nil {
					return
				}
				in, err := Ingress(tmpl, "1-31", IngressOptions{Live: true, LiveOnly: liveOnly}, copyAll(objs))
				if err != nil {
					return
				}
				if err := object.CheckShape(in); err != nil {
					t.Errorf("rendered an Ingress of a bad shape: %v\n%s", err, in.MustString())
				}
			})
		}
	}
}
