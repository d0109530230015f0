package config_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
)

const head = `apiVersion: fn.istio-gitops.dev/v1alpha1
kind: IstioGitOps
metadata:
  name: prod
`

func load(t *testing.T, spec string) (*config.IstioGitOps, error) {
	t.Helper()
	return config.Load(yaml.MustParse(head + spec))
}

// ingressSpec is a two-revision config with an Ingress template serving
// www.example.com and *.apps.example.com, and more fields of its entry.
func ingressSpec(more string) string {
	s := "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n" +
		"      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}, {host: \"*.apps.example.com\"}]}}\n"
	if more != "" {
		s += "      " + more + "\n"
	}
	return s
}

func TestDefaults(t *testing.T) {
	cfg, err := load(t, "spec:\n  revisions:\n  - name: 1-30\n  - name: 1-31\n")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Spec
	checks := map[string][2]string{
		"namespace":      {s.Namespace, "istio-system"},
		"source 0":       {s.Revisions[0].Source, "1-30/istioctl-output.yaml"},
		"source 1":       {s.Revisions[1].Source, "1-31/istioctl-output.yaml"},
		"activeRevision": {s.ActiveRevision, "1-30"},
		"gateways.live":  {s.Gateways.Live, "1-30"},
		"newest":         {cfg.Newest(), "1-31"},
	}
	for _, k := range config.SortedKeys(checks) {
		if checks[k][0] != checks[k][1] {
			t.Errorf("%s = %q, want %q", k, checks[k][0], checks[k][1])
		}
	}
	if !cfg.PerRevisionGateways() || !cfg.DriftGuards() {
		t.Error("gateways.perRevision and webhooks.driftGuards must default to true")
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range []struct{ name, spec, want string }{
		{"unknown field", "spec:\n  revisions: [{name: 1-30}]\n  revison: 1-31\n", `spec.revison: unknown field`},
		{"unknown revision field", "spec:\n  revisions: [{name: 1-30, versoin: 1.30.2}]\n", `spec.revisions[0].versoin: unknown field`},
		{"no revisions", "spec: {}\n", "spec.revisions: must list at least one revision"},
		{"revision named default", "spec:\n  revisions: [{name: default}]\n", `spec.revisions[0].name: "default" must not be used`},
		{"dot", "spec:\n  revisions: [{name: 1-30}, {name: \"1.31\"}]\n", `spec.revisions[1].name: "1.31" must not contain a dot`},
		{"duplicate", "spec:\n  revisions: [{name: 1-30}, {name: 1-30}]\n", `spec.revisions[1].name: "1-30" must be unique`},
		{"upper case", "spec:\n  revisions: [{name: Canary}]\n", `spec.revisions[0].name: "Canary" must be a DNS label`},
		{"active not listed", "spec:\n  revisions: [{name: 1-30}]\n  activeRevision: 1-31\n", `spec.activeRevision: "1-31" must be one of the listed revisions`},
		{"tag like a revision", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  tags: {1-31: 1-30}\n", `spec.tags[1-31]: "1-31" a tag must not be named like a revision`},
		{"tag like a folder", "spec:\n  revisions: [{name: 1-30}]\n  tags: {argocd: 1-30}\n", `spec.tags[argocd]: "argocd" a tag must not be named like a folder of the tree`},
		{"revision like a folder", "spec:\n  revisions: [{name: argocd}]\n", `spec.revisions[0].name: "argocd" must not be used: the tree has a folder of that name`},
		{"tag target", "spec:\n  revisions: [{name: 1-30}]\n  tags: {prod-stable: 1-29}\n", `spec.tags[prod-stable]: "1-29" must be one of the listed revisions`},
		{"source escapes", "spec:\n  revisions: [{name: 1-30, source: ../x.yaml}]\n", `spec.revisions[0].source: "../x.yaml" must be a clean path inside the tree`},
		{"patchesFrom newer", "spec:\n  revisions: [{name: 1-30, patchesFrom: 1-31}, {name: 1-31}]\n", `spec.revisions[0].patchesFrom: "1-31" must name an older revision`},
		{"version", "spec:\n  revisions: [{name: 1-30, version: latest}]\n", `spec.revisions[0].version: "latest" must be an Istio version`},
		{"live not listed", "spec:\n  revisions: [{name: 1-30}]\n  gateways: {live: 1-31}\n", `spec.gateways.live: "1-31" must be one of the listed revisions`},
		{"flux kind", "spec:\n  revisions: [{name: 1-30}]\n  flux: {path: ./x, sourceRef: {kind: Git, name: a}}\n", `spec.flux.sourceRef.kind: "Git" must be GitRepository`},
		{"wrong kind", "spec:\n  revisions: [{name: 1-30}]\n", ""},
		{"key twice", "spec:\n  revisions: [{name: 1-30}]\n  activeRevision: 1-30\n  activeRevision: 1-31\n", "spec.activeRevision: must be set once, not on lines 7 and 8"},
		{"live unset with stable Services", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways: {stableServices: true}\n", "spec.gateways.live: must be set once two revisions are listed"},
		{"live defaults without traffic to move", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n", ""},
		{"node agents not listed", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  nodeAgents: {revision: 1-29}\n", `spec.nodeAgents.revision: "1-29" must be one of the listed revisions`},
		{"istio-cni not listed", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  nodeAgents: {revision: 1-30, cni: 1-32}\n", `spec.nodeAgents.cni: "1-32" must be one of the listed revisions ["1-30" "1-31"] (to retire a revision, move istio-cni to another revision first)`},
		{"ztunnel not listed", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  nodeAgents: {ztunnel: 1-29}\n", `spec.nodeAgents.ztunnel: "1-29" must be one of the listed revisions`},
		{"source in argocd", "spec:\n  revisions: [{name: 1-30, source: argocd/x.yaml}]\n", `spec.revisions[0].source: "argocd/x.yaml" must not be in argocd/`},
		{"source in common", "spec:\n  revisions: [{name: 1-30, source: common/x.yaml}]\n", `spec.revisions[0].source: "common/x.yaml" must not be in common/`},
		{"source in generated", "spec:\n  revisions: [{name: 1-30}, {name: 1-31, source: 1-30/generated/x.yaml}]\n", `must not be in 1-30/generated/`},
		{"source is a kustomization", "spec:\n  revisions: [{name: 1-30, source: kustomization.yaml}]\n", `must not be kustomization.yaml`},
		{"source not yaml", "spec:\n  revisions: [{name: 1-30, source: 1-30/out.txt}]\n", `must be a .yaml, .yml or .json file`},
		{"flux timeout", "spec:\n  revisions: [{name: 1-30}]\n  flux: {path: ./x, sourceRef: {kind: GitRepository, name: a}, timeout: soon}\n", `spec.flux.timeout: "soon" must be a duration`},
		{"wrong type", "spec:\n  revisions: {name: 1-30}\n", "spec.revisions: must be a list, not object"},
		{"host on an unlisted revision", ingressSpec("hosts: {www.example.com: 1-29}"), `spec.gateways.ingress.hosts[www.example.com]: "1-29" must be one of the listed revisions ["1-30" "1-31"] (to retire a revision, move its hosts to another revision first)`},
		{"host not in the rules", ingressSpec("hosts: {shop.example.com: 1-31}"), `spec.gateways.ingress.hosts[shop.example.com]: "shop.example.com" must be served by a rule of spec.gateways.ingress.template (a host, or one label under a wildcard host): its rules' hosts are ["*.apps.example.com" "www.example.com"]`},
		{"host two labels under a wildcard", ingressSpec("hosts: {a.b.apps.example.com: 1-31}"), `"a.b.apps.example.com" must be served by a rule`},
		{"host under a wildcard", ingressSpec("hosts: {beta.apps.example.com: 1-31, \"*.apps.example.com\": 1-30}"), ""},
		{"host not a name", ingressSpec("hosts: {Shop_Example: 1-31}"), `spec.gateways.ingress.hosts[Shop_Example]: "Shop_Example" must be a host name`},
		{"hostname annotation and hosts", strings.Replace(ingressSpec("hosts: {}"), "name: web}", "name: web, annotations: {external-dns.alpha.kubernetes.io/hostname: www.example.com}}", 1),
			`spec.gateways.ingress.template.metadata.annotations[external-dns.alpha.kubernetes.io/hostname]: must not be set while spec.gateways.ingress.hosts is`},
		{"per-revision hostname annotation and hosts", ingressSpec("hosts: {}") + "      perRevision: {1-31: {annotations: {external-dns.kubernetes.io/hostname: www.example.com}}}\n",
			`spec.gateways.ingress.perRevision[1-31].annotations[external-dns.kubernetes.io/hostname]: must not be set while spec.gateways.ingress.hosts is`},
		{"hostname annotation without hosts", strings.Replace(ingressSpec(""), "name: web}", "name: web, annotations: {external-dns.alpha.kubernetes.io/hostname: www.example.com}}", 1), ""},
		{"per-revision values of an unlisted revision", ingressSpec("perRevision: {1-29: {annotations: {a: b}}}"), `spec.gateways.ingress.perRevision[1-29]: "1-29" must be one of the listed revisions`},
		{"per-revision label value", ingressSpec("perRevision: {1-31: {labels: {tier: \"a b\"}}}"), `spec.gateways.ingress.perRevision[1-31].labels[tier]: "a b" must be a label value`},
		{"per-revision annotations as a list", ingressSpec("perRevision: {1-31: {annotations: [a]}}"), `spec.gateways.ingress.perRevision[1-31].annotations: must be a map of strings, not a list (line 11)`},
		{"host's revision as a list", ingressSpec("hosts: {www.example.com: [1-31]}"), `spec.gateways.ingress.hosts[www.example.com]: must be a string, not a list (line 11)`},
		{"per-revision values as a list", ingressSpec("perRevision: [1-31]"), `spec.gateways.ingress.perRevision: must be a map of revisions to values, not a list (line 11)`},
		{"template annotations as a list", strings.Replace(ingressSpec(""), "name: web}", "name: web, annotations: [a, b]}", 1), `spec.gateways.ingress.template: metadata.annotations (line 10): must be a map of strings, not a list`},
		{"two templates of one name", ingressSpec("") + "    ingresses:\n    - template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n",
			`spec.gateways.ingresses[0].template.metadata.name: "web" must be unique: spec.gateways.ingress.template names its Ingresses web-<revision> too`},
		{"ingresses of gateways in place", "spec:\n  revisions: [{name: 1-30}]\n  gateways:\n    perRevision: false\n    ingresses: [{template: {kind: Ingress}}]\n", "spec.gateways.ingresses[0]: must not be set when spec.gateways.perRevision is false"},
		{"second Ingress with hosts", ingressSpec("") + "    ingresses:\n    - template: {metadata: {name: internal}, spec: {rules: [{host: internal.example.com}]}}\n      hosts: {internal.example.com: 1-31}\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.spec)
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want error %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `IstioGitOps "prod"`) {
				t.Errorf("error %q\nmust name the config and contain %q", err, c.want)
			}
		})
	}
}

// TestEveryMistake: a config with several mistakes reports each, not only
// the first, and each is a result with its field.
func TestEveryMistake(t *testing.T) {
	_, err := load(t, "spec:\n  revisions: [{name: default}, {name: 1-31, versoin: x}]\n  activeRevision: 1-29\n  tags: {Bad: 1-31}\n")
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v must be a *config.Error", err)
	}
	var fields []string
	for _, r := range cerr.Results("istio-gitops.yaml") {
		fields = append(fields, r.Field.Path)
	}
	want := []string{"spec.revisions[1].versoin", "spec.revisions[0].name", "spec.activeRevision", "spec.tags[Bad]"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields %q, want %q (error: %v)", fields, want, err)
	}
}

// TestTypeErrorAndUnknownField: a value of the wrong type does not hide
// the other mistakes: every wrong type and every unknown field is reported
// in one run, each by its path.
func TestTypeErrorAndUnknownField(t *testing.T) {
	_, err := load(t, "spec:\n  revisions: {name: 1-30}\n  activeRevison: 1-30\n  tags: {prod: [1-30]}\n  nodeAgents: {cni: 1-30, ztunel: 1-30}\n")
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v must be a *config.Error", err)
	}
	var got []string
	for _, r := range cerr.Results("istio-gitops.yaml") {
		got = append(got, strings.TrimPrefix(r.Message, `IstioGitOps "prod": `))
	}
	want := []string{
		"spec.activeRevison: unknown field: is it misspelled, or in the wrong place?",
		"spec.nodeAgents.ztunel: unknown field: is it misspelled, or in the wrong place?",
		"spec.revisions: must be a list, not object",
		"spec.tags[prod]: must be a string, not array",
	}
	if !slices.Equal(got, want) {
		t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func ExampleLoad() {
	cfg, err := config.Load(yaml.MustParse(`apiVersion: fn.istio-gitops.dev/v1alpha1
kind: IstioGitOps
metadata:
  name: prod
spec:
  revisions:
  - name: 1-30
  - name: 1-31
  tags:
    prod-canary: 1-31
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.RevisionNames(), cfg.Spec.ActiveRevision, cfg.Spec.Revisions[1].Source)
	// Output: [1-30 1-31] 1-30 1-31/istioctl-output.yaml
}

// TestHostsOf: listed hosts go to their revision, the other hosts of the
// rules (wildcards included) to the live one, none without hosts.
func TestHostsOf(t *testing.T) {
	cfg, err := load(t, ingressSpec("hosts: {beta.apps.example.com: 1-31}"))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Ingresses()[0]
	if got, want := in.HostsOf("1-30", "1-30"), []string{"*.apps.example.com", "www.example.com"}; !slices.Equal(got, want) {
		t.Errorf("live 1-30 publishes %q, want %q", got, want)
	}
	if got, want := in.HostsOf("1-31", "1-30"), []string{"beta.apps.example.com"}; !slices.Equal(got, want) {
		t.Errorf("1-31 publishes %q, want %q", got, want)
	}
	if got := in.HostsOf("1-30", "1-31"); got != nil {
		t.Errorf("1-30, no longer live, publishes %q", got)
	}
	cfg, err = load(t, ingressSpec(""))
	if err != nil {
		t.Fatal(err)
	}
	if in := cfg.Ingresses()[0]; in.ManagesDNS() || in.HostsOf("1-30", "1-30") != nil {
		t.Error("an Ingress without hosts must not manage DNS")
	}
	for _, c := range []struct {
		rule, host string
		want       bool
	}{
		{"www.example.com", "www.example.com", true},
		{"*.example.com", "shop.example.com", true},
		{"*.example.com", "a.shop.example.com", false},
		{"*.example.com", "example.com", false},
		{"*.example.com", "*.example.com", true},
		{"*.example.com", "*.shop.example.com", false},
		{"shop.example.com", "*.example.com", false},
	} {
		if got := config.RuleCovers(c.rule, c.host); got != c.want {
			t.Errorf("RuleCovers(%q, %q) = %v, want %v", c.rule, c.host, got, c.want)
		}
	}
}
