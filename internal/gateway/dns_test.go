package gateway

import (
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
)

// TestIngressDNS: with DNS, each revision's Ingress keeps every rule and
// carries the external-dns annotations, the hostname one with its own
// hosts sorted and comma-separated, and none when it has no host; the
// live-only external-dns annotations of the template do not take the
// function's own with them.
func TestIngressDNS(t *testing.T) {
	tmpl := loadIngressTemplate(t, strings.Replace(ingressConfig,
		"            external-dns.alpha.kubernetes.io/hostname: www.example.com,status.example.com\n",
		"            external-dns.alpha.kubernetes.io/ttl: \"60\"\n", 1))
	objs := perRevisionCopy(t, fixtures[0], "1-31")
	for _, c := range []struct {
		name      string
		live      bool
		hosts     []string
		annotated string // the hostname annotation, "" for absent
	}{
		{"live with both hosts", true, []string{"www.example.com", "status.example.com"}, "status.example.com,www.example.com"},
		{"canary with one", false, []string{"status.example.com"}, "status.example.com"},
		{"canary with none", false, nil, ""},
		{"live with none", true, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, err := Ingress(tmpl, "1-31", IngressOptions{Live: c.live, LiveOnly: liveOnly, DNS: true, Hosts: c.hosts}, objs)
			if err != nil {
				t.Fatal(err)
			}
			a := in.GetAnnotations()
			// Under both prefixes: external-dns before v0.22 reads the
			// alpha one, later versions the other.
			for _, p := range []string{"external-dns.alpha.kubernetes.io/", "external-dns.kubernetes.io/"} {
				if a[p+"ingress-hostname-source"] != config.AnnotationOnly {
					t.Errorf("%singress-hostname-source = %q, want %q", p, a[p+"ingress-hostname-source"], config.AnnotationOnly)
				}
				got, ok := a[p+"hostname"]
				if got != c.annotated || ok != (c.annotated != "") {
					t.Errorf("%shostname = %q (present %v), want %q", p, got, ok, c.annotated)
				}
			}
			if _, ok := a["external-dns.alpha.kubernetes.io/ttl"]; ok != c.live {
				t.Errorf("the live-only ttl annotation present = %v on a live=%v Ingress", ok, c.live)
			}
			rules, err := in.Pipe(yaml.Lookup("spec", "rules"))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(rules.Content()); n != 1 {
				t.Errorf("%d rules, want the template's 1: every Ingress keeps every rule", n)
			}
			hosts, ok := PublishedHosts(in)
			want := slices.Sorted(slices.Values(c.hosts))
			if !ok || !slices.Equal(hosts, want) {
				t.Errorf("PublishedHosts = %q, %v; want %q", hosts, ok, want)
			}
		})
	}
	// Without DNS nothing is added, and PublishedHosts says external-dns
	// is not restricted.
	in, err := Ingress(tmpl, "1-31", IngressOptions{Live: true, LiveOnly: liveOnly}, objs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := in.GetAnnotations()[config.HostnameSourceAnnotation]; ok {
		t.Error("the hostname source annotation written without DNS")
	}
	if _, ok := PublishedHosts(in); ok {
		t.Error("PublishedHosts ok without the hostname source annotation")
	}
}

// TestIngressValues: a revision's values are set over the template's,
// kept even where a live-only pattern matches them, and labels are
// written as strings.
func TestIngressValues(t *testing.T) {
	tmpl := loadIngressTemplate(t, ingressConfig)
	objs := perRevisionCopy(t, fixtures[0], "1-31")
	in, err := Ingress(tmpl, "1-31", IngressOptions{LiveOnly: liveOnly, Values: config.IngressValues{
		Annotations: map[string]string{
			"kubernetes.io/ingress.global-static-ip-name": "web-1-31",
			"kubernetes.io/ingress.class":                 "gce-canary",
			"cert-manager.io/issuer":                      "canary",
		},
		Labels: map[string]string{"tier": "edge", "canary": "true"},
	}}, objs)
	if err != nil {
		t.Fatal(err)
	}
	a := in.GetAnnotations()
	for k, want := range map[string]string{
		"kubernetes.io/ingress.global-static-ip-name": "web-1-31",
		"kubernetes.io/ingress.class":                 "gce-canary",
		"cert-manager.io/issuer":                      "canary",
		"networking.gke.io/v1beta1.FrontendConfig":    "public-frontend",
	} {
		if a[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, a[k], want)
		}
	}
	if _, ok := a["cert-manager.io/cluster-issuer"]; ok {
		t.Error("the template's live-only annotation kept on a revision that is not live")
	}
	if l := in.GetLabels(); l["tier"] != "edge" || l["canary"] != "true" {
		t.Errorf("labels %v", l)
	}
	s := in.MustString()
	if !strings.Contains(s, `canary: "true"`) {
		t.Errorf("a label value that reads as a boolean must be quoted:\n%s", s)
	}
	// The template is not changed.
	if _, ok := tmpl.GetAnnotations()["kubernetes.io/ingress.global-static-ip-name"]; ok {
		t.Error("the template was changed")
	}
}

// TestSharedValues finds the load balancer values two objects share, and
// only those.
func TestSharedValues(t *testing.T) {
	obj := func(name string, annotations ...string) *yaml.RNode {
		n := yaml.MustParse("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name + "\n")
		for i := 0; i+1 < len(annotations); i += 2 {
			if err := n.PipeE(yaml.SetAnnotation(annotations[i], annotations[i+1])); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	const ip = "kubernetes.io/ingress.global-static-ip-name"
	const eip = "service.beta.kubernetes.io/aws-load-balancer-eip-allocations"
	objs := []*yaml.RNode{
		obj("web-1-30", ip, "web", eip, "eipalloc-1", "kubernetes.io/ingress.class", "gce"),
		obj("web-1-31", ip, "web", eip, "eipalloc-2", "kubernetes.io/ingress.class", "gce"),
		obj("web-1-32", ip, "web-1-32"),
	}
	got := SharedValues(objs)
	if len(got) != 1 || got[0].Key != ip || got[0].Value != "web" || len(got[0].Objects) != 2 ||
		got[0].Objects[0].GetName() != "web-1-30" || got[0].Objects[1].GetName() != "web-1-31" {
		t.Errorf("SharedValues = %+v, want %s: web on web-1-30 and web-1-31 only", got, ip)
	}
	for key, want := range map[string]bool{
		ip: true, eip: true, "service.beta.kubernetes.io/azure-pip-name": true, "networking.gke.io/load-balancer-ip-addresses": true,
		"alb.ingress.kubernetes.io/group.name": true, "kubernetes.io/ingress.class": false, "service.beta.kubernetes.io/aws-load-balancer-type": false,
	} {
		if IsPerLoadBalancer(key) != want {
			t.Errorf("IsPerLoadBalancer(%q) = %v, want %v", key, !want, want)
		}
	}
}
