// Package externaldns proves the host-by-host DNS cutover with
// external-dns's own code: its Ingress source (wrapped as its controller
// wraps it), its TXT registry and its planner, over an in-memory DNS
// provider, fed with the Ingresses istio-gitops wrote at each step of the
// cutover story (testdata/stories/cutover.yaml, testdata/golden/cutover).
//
// It is a Go module of its own: sigs.k8s.io/external-dns v0.23.0 needs Go
// 1.27, while istio-gitops stays on Go 1.26. `make test` runs it with
// GOTOOLCHAIN=go1.27.3, which the go command fetches through the module
// proxy.
package externaldns

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/external-dns/endpoint"
	"sigs.k8s.io/external-dns/pkg/apis/externaldns"
	"sigs.k8s.io/external-dns/plan"
	"sigs.k8s.io/external-dns/provider"
	"sigs.k8s.io/external-dns/provider/inmemory"
	"sigs.k8s.io/external-dns/registry"
	"sigs.k8s.io/external-dns/registry/txt"
	"sigs.k8s.io/external-dns/source"
	"sigs.k8s.io/external-dns/source/annotations"
	"sigs.k8s.io/external-dns/source/wrappers"
	"sigs.k8s.io/yaml"
)

const (
	repo    = "../.."
	story   = "cutover"
	zone    = "example.com"
	ownerID = "istio-gitops"
)

// storyFile is the part of testdata/stories/cutover.yaml this test reads:
// each step's name and the revision each name must resolve to.
type storyFile struct {
	Steps []struct {
		Name string            `json:"name"`
		DNS  map[string]string `json:"dns"`
	} `json:"steps"`
}

func readStory(t *testing.T) storyFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "testdata", "stories", story+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var st storyFile
	if err := yaml.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// clients give the sources a Kubernetes client; the Ingress source asks
// for no other (the embedded nil generator would panic if it did).
type clients struct {
	source.ClientGenerator
	kube kubernetes.Interface
}

func (c clients) KubeClient() (kubernetes.Interface, error) { return c.kube, nil }

// ingress is one Ingress of a step's tree.
type ingress struct {
	file, rev string
	obj       *networkingv1.Ingress
}

// readIngresses reads the Ingresses of a step's tree (each revision's
// generated/ingress/), sorted by file.
func readIngresses(t *testing.T, step string) []ingress {
	t.Helper()
	root := filepath.Join(repo, "testdata", "golden", story, step)
	files, err := filepath.Glob(filepath.Join(root, "*", "generated", "ingress", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []ingress
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var in networkingv1.Ingress
		if err := yaml.UnmarshalStrict(b, &in); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rel, _ := filepath.Rel(root, f)
		out = append(out, ingress{file: filepath.ToSlash(rel), rev: strings.Split(filepath.ToSlash(rel), "/")[0], obj: &in})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no Ingress", root)
	}
	return out
}

// addresses gives each Ingress of the story (by name) its load balancer's
// address, as a cloud would on its status: one per Ingress, the same at
// every step.
func addresses(t *testing.T, st storyFile) map[string]string {
	names := map[string]bool{}
	for _, s := range st.Steps {
		for _, in := range readIngresses(t, s.Name) {
			names[in.obj.Name] = true
		}
	}
	out := map[string]string{}
	for i, n := range slices.Sorted(maps.Keys(names)) {
		out[n] = fmt.Sprintf("192.0.2.%d", 10+i)
	}
	return out
}

// cluster is what external-dns reads at a step: the step's Ingresses,
// each with its load balancer's address on its status.
func cluster(ingresses []ingress, addr map[string]string, edit func(*networkingv1.Ingress)) kubernetes.Interface {
	var objs []runtime.Object
	for _, in := range ingresses {
		o := in.obj.DeepCopy()
		o.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: addr[o.Name]}}
		if edit != nil {
			edit(o)
		}
		objs = append(objs, o)
	}
	return fake.NewClientset(objs...)
}

// externalDNS is one external-dns instance: its configuration, TXT
// registry and policy over a DNS zone kept in memory across the steps.
type externalDNS struct {
	cfg      *externaldns.Config
	provider provider.Provider
	registry registry.Registry
	policy   plan.Policy
}

func newExternalDNS(t *testing.T) *externalDNS {
	t.Helper()
	// The configuration as external-dns's command line makes it. Its
	// default record types (A, AAAA, CNAME) are given: ParseFlags leaves
	// them out.
	cfg := externaldns.NewConfig()
	if err := cfg.ParseFlags([]string{"--source=ingress", "--provider=inmemory", "--inmemory-zone=" + zone,
		"--registry=txt", "--txt-owner-id=" + ownerID, "--policy=sync",
		"--managed-record-types=A", "--managed-record-types=AAAA", "--managed-record-types=CNAME"}); err != nil {
		t.Fatal(err)
	}
	p := inmemory.NewInMemoryProvider(inmemory.InMemoryInitZones(cfg.InMemoryZones))
	reg, err := txt.New(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	policy, ok := plan.Policies[cfg.Policy]
	if !ok {
		t.Fatalf("no policy %q", cfg.Policy)
	}
	return &externalDNS{cfg: cfg, provider: p, registry: reg, policy: policy}
}

// source is the Ingress source over a cluster, built and wrapped as
// external-dns's controller builds it (source.NewSourceConfig,
// wrappers.Build).
func (e *externalDNS) source(t *testing.T, kube kubernetes.Interface) source.Source {
	t.Helper()
	sCfg, err := source.NewSourceConfig(e.cfg, source.WithClientGenerator(clients{kube: kube}))
	if err != nil {
		t.Fatal(err)
	}
	src, err := wrappers.Build(t.Context(), sCfg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// reconcile is one loop of external-dns's controller (Controller.RunOnce:
// the registry's records, the source's endpoints, the plan, its changes
// applied), returning the changes. The controller package itself is not
// used: it links every DNS provider.
func (e *externalDNS) reconcile(ctx context.Context, src source.Source) (*plan.Changes, error) {
	records, err := e.registry.Records(ctx)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, provider.RecordsContextKey, records)
	eps, err := src.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	eps, err = e.registry.AdjustEndpoints(eps)
	if err != nil {
		return nil, err
	}
	p := (&plan.Plan{
		Policies:       []plan.Policy{e.policy},
		Current:        records,
		Desired:        eps,
		DomainFilter:   endpoint.MatchAllDomainFilters{e.registry.GetDomainFilter()},
		ManagedRecords: e.cfg.ManagedDNSRecordTypes,
		ExcludeRecords: e.cfg.ExcludeDNSRecordTypes,
		OwnerID:        e.registry.OwnerID(),
	}).Calculate()
	if p.Changes.HasChanges() {
		if err := e.registry.ApplyChanges(ctx, p.Changes); err != nil {
			return nil, err
		}
	}
	return p.Changes, nil
}

// zoneRecords are the zone's records by name and type ("shop.example.com
// A"), each its sorted targets.
func (e *externalDNS) zoneRecords(t *testing.T) map[string]string {
	t.Helper()
	recs, err := e.provider.Records(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range recs {
		targets := slices.Clone([]string(r.Targets))
		slices.Sort(targets)
		out[r.DNSName+" "+r.RecordType] = strings.Join(targets, ",")
	}
	return out
}

// resolve answers for name as a resolver would from the zone: its own A
// record, else the wildcard one label up.
func resolve(records map[string]string, name string) string {
	if a, ok := records[name+" A"]; ok {
		return a
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		return records["*."+rest+" A"]
	}
	return ""
}

// covers reports whether an Ingress rule's host serves name.
func covers(rule, name string) bool {
	if rule == name {
		return true
	}
	suffix, ok := strings.CutPrefix(rule, "*")
	label, found := strings.CutSuffix(name, suffix)
	return ok && found && label != "" && !strings.Contains(label, ".")
}

// wantAddress is the address name must resolve to at a step: that of the
// revision's Ingress whose template's rules serve name (every revision's
// Ingress keeps every rule).
func wantAddress(t *testing.T, ingresses []ingress, addr map[string]string, name, rev string) string {
	t.Helper()
	var out []string
	for _, in := range ingresses {
		if in.rev != rev {
			continue
		}
		for _, r := range in.obj.Spec.Rules {
			if covers(r.Host, name) {
				out = append(out, addr[in.obj.Name])
				break
			}
		}
	}
	if len(out) != 1 {
		t.Fatalf("%s: %d Ingresses of revision %s serve it: %q", name, len(out), rev, out)
	}
	return out[0]
}

// TestCutover runs external-dns over each step of the cutover story, the
// DNS zone kept from one step to the next as a real zone is: every name
// resolves to exactly the address of the revision the step assigns it;
// every published name has its TXT ownership record, owned by this
// instance; a TXT record is never deleted while its name is published,
// and changes only at a step that moves its name; a second loop at each
// step changes nothing (no flapping).
func TestCutover(t *testing.T) {
	st := readStory(t)
	if len(st.Steps) < 5 {
		t.Fatalf("the story has %d steps", len(st.Steps))
	}
	addr := addresses(t, st)
	dns := newExternalDNS(t)
	var prev map[string]string
	for _, step := range st.Steps {
		t.Run(step.Name, func(t *testing.T) {
			if len(step.DNS) == 0 {
				t.Fatal("the step says nothing of DNS")
			}
			ingresses := readIngresses(t, step.Name)
			src := dns.source(t, cluster(ingresses, addr, nil))
			changes, err := dns.reconcile(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			again, err := dns.reconcile(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			if again.HasChanges() {
				t.Errorf("a second loop changed records (flapping): %v", again)
			}
			records := dns.zoneRecords(t)
			for _, name := range slices.Sorted(maps.Keys(step.DNS)) {
				want := wantAddress(t, ingresses, addr, name, step.DNS[name])
				if got := resolve(records, name); got != want {
					t.Errorf("%s resolves to %q, want %q (revision %s's load balancer)", name, got, want, step.DNS[name])
				}
			}
			// Ownership: each A record has its TXT record, ours.
			owned, err := dns.registry.Records(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range owned {
				if r.RecordType == endpoint.RecordTypeA && r.Labels[endpoint.OwnerLabelKey] != ownerID {
					t.Errorf("%s A: owner %q, want %q (its TXT record is missing or another's)", r.DNSName, r.Labels[endpoint.OwnerLabelKey], ownerID)
				}
			}
			checkTXT(t, prev, records, changes)
			t.Logf("records: %v", records)
			prev = records
		})
	}
}

// checkTXT: a TXT record present before and whose name is still
// published is still there; it changed only if its name's A record did;
// no step deletes and recreates a record of the same name.
func checkTXT(t *testing.T, prev, now map[string]string, changes *plan.Changes) {
	t.Helper()
	created, deleted := map[string]bool{}, map[string]bool{}
	for _, c := range changes.Create {
		created[c.DNSName+" "+c.RecordType] = true
	}
	for _, d := range changes.Delete {
		deleted[d.DNSName+" "+d.RecordType] = true
	}
	for k := range created {
		if deleted[k] {
			t.Errorf("%s: deleted and created in one step", k)
		}
	}
	// The TXT record of <name> is a-<name>: exactly it, not any TXT
	// record whose name ends in <name>.
	for _, k := range slices.Sorted(maps.Keys(now)) {
		name, ok := strings.CutSuffix(k, " A")
		if !ok {
			continue
		}
		if _, ok := now["a-"+name+" TXT"]; !ok {
			t.Errorf("%s has no TXT ownership record", name)
		}
	}
	if prev == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		if !strings.HasSuffix(k, " TXT") {
			continue
		}
		// The A record the TXT record owns: a-<name> owns <name>.
		owner := strings.TrimSuffix(strings.TrimPrefix(k, "a-"), " TXT") + " A"
		if _, published := now[owner]; !published {
			continue
		}
		if _, kept := now[k]; !kept {
			t.Errorf("%s: deleted while %s is published", k, owner)
			continue
		}
		if now[k] != prev[k] && now[owner] == prev[owner] {
			t.Errorf("%s changed from %q to %q, but %s did not move", k, prev[k], now[k], owner)
		}
	}
}

// TestWithoutAnnotationOnly is the control: the same Ingresses without
// the hostname source annotation, as external-dns reads Ingresses by
// default, publish every rule's host from every revision's load balancer,
// so a host cannot resolve to one revision. It shows that TestCutover's
// checks can fail, and why the annotation is there.
func TestWithoutAnnotationOnly(t *testing.T) {
	got := resolveShop(t, func(in *networkingv1.Ingress) {
		for _, p := range prefixes {
			delete(in.Annotations, p+"ingress-hostname-source")
		}
	})
	if !strings.Contains(got, ",") {
		t.Errorf("without annotation-only, shop.example.com resolves to %q: want the addresses of both revisions' load balancers", got)
	}
}

// prefixes are external-dns's annotation prefixes: external-dns v0.22 and
// later read the second, and the first only with
// --enable-legacy-annotation-prefix.
var prefixes = []string{annotations.LegacyAnnotationPrefix, annotations.DefaultAnnotationPrefix}

// TestAnnotationPrefixes: the Ingresses carry external-dns's annotations
// under both prefixes because this version reads only its own by default:
// with the alpha ones alone it publishes the rules' hosts from every load
// balancer, unless --enable-legacy-annotation-prefix is given.
func TestAnnotationPrefixes(t *testing.T) {
	alphaOnly := func(in *networkingv1.Ingress) {
		for k := range in.Annotations {
			if strings.HasPrefix(k, annotations.DefaultAnnotationPrefix) {
				delete(in.Annotations, k)
			}
		}
	}
	if got := resolveShop(t, alphaOnly); !strings.Contains(got, ",") {
		t.Errorf("with the alpha annotations alone, by default, shop.example.com resolves to %q: want both load balancers (the default prefix changed in v0.22)", got)
	}
	annotations.SetLegacyAnnotationPrefix(annotations.LegacyAnnotationPrefix)
	t.Cleanup(func() { annotations.SetLegacyAnnotationPrefix("") })
	if got, want := resolveShop(t, alphaOnly), "192.0.2.11"; got != want {
		t.Errorf("with the alpha annotations and --enable-legacy-annotation-prefix, shop.example.com resolves to %q, want 1-31's %q", got, want)
	}
}

// resolveShop runs external-dns once over the Ingresses of the step that
// moved shop.example.com to 1-31, each edited, and resolves the host.
func resolveShop(t *testing.T, edit func(*networkingv1.Ingress)) string {
	t.Helper()
	addr := addresses(t, readStory(t))
	dns := newExternalDNS(t)
	src := dns.source(t, cluster(readIngresses(t, "3-move-shop"), addr, edit))
	if _, err := dns.reconcile(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	return resolve(dns.zoneRecords(t), "shop.example.com")
}
