package pipeline_test

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/buildtest"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/istioctl"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/state"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// customFixture is the synthetic istioctl output with two custom ingress
// gateways (testdata/gateway/README.md), relative to the fixtures folder.
// It has no CRDs and no injector or values ConfigMaps; the pipeline needs
// none of them unless spec.tags is set.
func customFixture(rev string) string { return "../gateway/custom-" + rev + ".yaml" }

// gatewayWant is what the gateways of a golden case's tree must be.
type gatewayWant struct {
	// gateways maps each gateway's istioctl name to the `istio` label its
	// pods keep for Gateway resources to select them.
	gateways    map[string]string
	perRevision bool
	stable      bool
	// ingress is the Ingress template's name; "" when there is none.
	ingress string
	// liveOnly are annotation keys of the template that only the live
	// revision's Ingress must carry.
	liveOnly []string
	// namespace is the gateways' namespace; "" for the control plane's.
	namespace string
}

var (
	defaultGateways = map[string]string{"istio-ingressgateway": "ingressgateway"}
	demoGateways    = map[string]string{"istio-ingressgateway": "ingressgateway", "istio-egressgateway": "egressgateway"}
)

// gatewayWants are the golden cases' gateway expectations.
var gatewayWants = map[string]gatewayWant{
	"bootstrap": {gateways: defaultGateways, perRevision: true},
	"add-1-31":  {gateways: defaultGateways, perRevision: true},
	"demo":      {gateways: demoGateways, perRevision: true},
	"gateways": {gateways: demoGateways, perRevision: true, stable: true, ingress: "public",
		liveOnly: []string{"cert-manager.io/cluster-issuer", "external-dns.alpha.kubernetes.io/hostname"}},
	"gateways-custom": {gateways: map[string]string{"internal-ingress": "custom-internal", "public-ingress": "custom"},
		perRevision: true, stable: true, ingress: "edge",
		liveOnly: []string{"external-dns.alpha.kubernetes.io/hostname"}},
	"gateways-in-place": {gateways: demoGateways, perRevision: false},
}

// TestGatewayTrees writes every golden case's tree from its real input
// and checks what kustomize would deploy from it: no two objects share an
// identity; every reference (service accounts, role bindings, HPA targets,
// webhook services, Ingress backends) resolves in the referring object's
// own folder, or for a revision's non-gateway objects in common/'s shared
// istioctl objects; every Service, Deployment and PDB selects pods of one
// folder only, the revision's own; and, where the case lists them, the
// gateways are laid out as the config says (checkGateways).
func TestGatewayTrees(t *testing.T) {
	t.Parallel()
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := setup(t, c)
			run(t, dir)
			tr := readTree(t, dir)
			checkTree(t, tr)
			if want, ok := gatewayWants[c.name]; ok {
				checkGateways(t, tr, want)
			}
		})
	}
}

// TestSwitchLiveGateways switches the live gateways from 1-30 to 1-31 by
// editing spec.gateways.live, and rolls back by reverting the edit: the
// switch changes the stable Services' selector and annotation and the
// Ingresses' live-only annotations and nothing else, and the rollback
// restores the tree byte for byte.
func TestSwitchLiveGateways(t *testing.T) {
	t.Parallel()
	c := goldenCaseNamed(t, "gateways")
	want := gatewayWants[c.name]
	dir := setup(t, c)
	run(t, dir)
	before := treetest.Files(t, dir)
	original := before["istio-gitops.yaml"]

	editConfig(t, dir, "    live: 1-30", "    live: 1-31")
	run(t, dir)
	switched := treetest.Files(t, dir)
	wantChanged := []string{
		"1-30/generated/ingress/public-1-30.yaml",
		"1-31/generated/ingress/public-1-31.yaml",
		"common/service/istio-egressgateway.yaml",
		"common/service/istio-ingressgateway.yaml",
		"istio-gitops.yaml",
	}
	if got := changedFiles(before, switched); !slices.Equal(got, wantChanged) {
		t.Fatalf("switching live changed %q, want exactly %q", got, wantChanged)
	}
	for _, f := range []string{"common/service/istio-egressgateway.yaml", "common/service/istio-ingressgateway.yaml"} {
		removed, added := changedLines(state.WithoutDigest(before[f]), state.WithoutDigest(switched[f]))
		wantRemoved := []string{"    fn.istio-gitops.dev/live-revision: 1-30", "    fn.istio-gitops.dev/points-at: 1-30", "    istio.io/rev: 1-30"}
		wantAdded := []string{"    fn.istio-gitops.dev/live-revision: 1-31", "    fn.istio-gitops.dev/points-at: 1-31", "    istio.io/rev: 1-31"}
		if !slices.Equal(removed, wantRemoved) || !slices.Equal(added, wantAdded) {
			t.Errorf("%s: removed %q, added %q; want only the selector and the live revision's records (and the digest) to move", f, removed, added)
		}
	}
	// 1-30's Ingress loses the live-only annotations, 1-31's gains them.
	for _, ing := range []struct {
		file string
		gain bool
	}{{"1-30/generated/ingress/public-1-30.yaml", false}, {"1-31/generated/ingress/public-1-31.yaml", true}} {
		removed, added := changedLines(state.WithoutDigest(before[ing.file]), state.WithoutDigest(switched[ing.file]))
		moved, still := removed, added
		if ing.gain {
			moved, still = added, removed
		}
		if len(still) != 0 || len(moved) == 0 {
			t.Errorf("%s: removed %q, added %q; want only live-only annotations to move", ing.file, removed, added)
		}
		for _, l := range moved {
			if !isLiveOnlyLine(l, append([]string{api.LiveRevisionAnnotation}, want.liveOnly...)) {
				t.Errorf("%s: line %q changed: only live-only annotations (and their comments) may", ing.file, l)
			}
		}
	}
	tr := readTree(t, dir)
	checkTree(t, tr)
	checkGateways(t, tr, want)
	run(t, dir)
	if d := treetest.Diff(treetest.Files(t, dir), switched); d != "" {
		t.Errorf("second run after the switch changed the tree:\n%s", d)
	}
	buildtest.BuildAll(t, dir)

	// Rollback: revert the config edit.
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), original)
	run(t, dir)
	if d := treetest.Diff(treetest.Files(t, dir), before); d != "" {
		t.Errorf("reverting the switch did not restore the tree:\n%s", d)
	}
}

// TestRetireGatewaySet promotes 1-31 and makes its gateways live, then
// retires 1-30 by removing it from spec.revisions: every file of 1-30's
// folder, its gateway set included, is deleted and reported, and nothing
// in common/ or 1-31/ changes.
func TestRetireGatewaySet(t *testing.T) {
	t.Parallel()
	c := goldenCaseNamed(t, "gateways")
	dir := setup(t, c)
	run(t, dir)
	editConfig(t, dir, "  activeRevision: 1-30", "  activeRevision: 1-31")
	editConfig(t, dir, "    live: 1-30", "    live: 1-31")
	run(t, dir)
	before := treetest.Files(t, dir)
	var retiring []string
	for _, n := range treetest.Names(before) {
		if strings.HasPrefix(n, "1-30/") {
			retiring = append(retiring, n)
		}
	}
	for _, f := range []string{"1-30/generated/deployment/istio-ingressgateway-1-30.yaml", "1-30/generated/service/istio-egressgateway-1-30.yaml", "1-30/generated/ingress/public-1-30.yaml"} {
		if !slices.Contains(retiring, f) {
			t.Fatalf("%s missing before the retirement: %q", f, retiring)
		}
	}

	editConfig(t, dir, "  - name: 1-30\n", "")
	results := run(t, dir)
	after := treetest.Files(t, dir)
	var deleted []string
	for _, r := range results {
		if r.File != nil && strings.HasPrefix(r.Message, "deleted:") {
			deleted = append(deleted, r.File.Path)
		}
	}
	slices.Sort(deleted)
	if !slices.Equal(deleted, retiring) {
		t.Errorf("reported deleted %q, want every file of 1-30/ %q", deleted, retiring)
	}
	if got, want := changedFiles(before, after), append([]string{"istio-gitops.yaml", "kustomization.yaml"}, retiring...); !sameSet(got, want) {
		t.Errorf("retiring 1-30 changed %q, want 1-30/'s files and the root's config and kustomization", got)
	}
	for _, n := range treetest.Names(after) {
		if strings.HasPrefix(n, "1-30/") {
			t.Errorf("%s left after 1-30 was retired", n)
		}
	}
	tr := readTree(t, dir)
	for _, p := range tr.objs {
		if strings.Contains(p.obj.GetName(), "1-30") {
			t.Errorf("%s: %s still deployed after 1-30 was retired", p.file, object.Describe(p.obj))
		}
	}
	checkTree(t, tr)
	checkGateways(t, tr, gatewayWants[c.name])
	run(t, dir)
	if d := treetest.Diff(treetest.Files(t, dir), after); d != "" {
		t.Errorf("second run after the retirement changed the tree:\n%s", d)
	}
	buildtest.BuildAll(t, dir)
}

// TestGatewayConfigErrors: retiring the revision whose gateways are live,
// or asking for stable Services or an Ingress per revision of gateways
// upgraded in place, fails the run with the field named and writes nothing.
func TestGatewayConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		edits [][2]string
		want  string
	}{
		{
			name: "retire the live revision",
			edits: [][2]string{
				{"  activeRevision: 1-30", "  activeRevision: 1-31"},
				{"  - name: 1-30\n", ""},
			},
			want: `IstioGitOps "prod": spec.gateways.live: "1-30" must be one of the listed revisions ["1-31"] (to retire a revision, switch the live gateways first)`,
		},
		{
			name:  "stable Services of gateways in place",
			edits: [][2]string{{"    stableServices: true", "    stableServices: true\n    perRevision: false"}},
			want:  `IstioGitOps "prod": spec.gateways.stableServices: must not be true when spec.gateways.perRevision is false`,
		},
		{
			name:  "Ingress per revision of gateways in place",
			edits: [][2]string{{"    stableServices: true", "    perRevision: false"}},
			want:  `spec.gateways.ingress: must not be set when spec.gateways.perRevision is false`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			treetest.Copy(t, filepath.Join(golden("gateways"), "want"), dir)
			for _, e := range c.edits {
				editConfig(t, dir, e[0], e[1])
			}
			runFails(t, dir, c.want)
		})
	}
}

// TestGatewaysInPlace: with perRevision false the gateways live in
// common/ under istioctl's names, taken from the newest revision: adding
// 1-31 upgrades the same files in place to 1-31's objects, and 1-30's
// gateway objects are reported, not written.
func TestGatewaysInPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(golden("gateways-in-place"), "input"), dir)
	editConfig(t, dir, "  - name: 1-31\n", "")
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/demo.yaml"), filepath.Join(dir, "1-30", config.SourceFile))
	run(t, dir)
	files := []struct{ file, kind, name string }{
		{"common/deployment/istio-ingressgateway.yaml", "Deployment", "istio-ingressgateway"},
		{"common/deployment/istio-egressgateway.yaml", "Deployment", "istio-egressgateway"},
		{"common/service/istio-ingressgateway.yaml", "Service", "istio-ingressgateway"},
		{"common/serviceaccount/istio-egressgateway-service-account.yaml", "ServiceAccount", "istio-egressgateway-service-account"},
		{"common/rolebinding/istio-ingressgateway-sds.yaml", "RoleBinding", "istio-ingressgateway-sds"},
	}
	got := treetest.Files(t, dir)
	for _, f := range files {
		if want := readObject(t, filepath.Join(fixtures, "1-30/demo.yaml"), f.kind, f.name); string(got[f.file]) != want {
			t.Errorf("%s is not 1-30's %s %s:\n%s", f.file, f.kind, f.name, got[f.file])
		}
	}

	editConfig(t, dir, "  - name: 1-30\n", "  - name: 1-30\n  - name: 1-31\n")
	treetest.CopyFile(t, filepath.Join(fixtures, "1-31/demo.yaml"), filepath.Join(dir, "1-31", config.SourceFile))
	run(t, dir)
	got = treetest.Files(t, dir)
	for _, f := range files {
		if want := readObject(t, filepath.Join(fixtures, "1-31/demo.yaml"), f.kind, f.name); string(got[f.file]) != want {
			t.Errorf("%s was not upgraded in place to 1-31's %s %s:\n%s", f.file, f.kind, f.name, got[f.file])
		}
	}
	// The first run consumed 1-30's output; regenerate 1-30 too, and each
	// of its gateway objects must be reported dropped.
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/demo.yaml"), filepath.Join(dir, "1-30", config.SourceFile))
	results := run(t, dir)
	dropped := map[string]bool{}
	for _, r := range results {
		if r.Tags[pipeline.DroppedTag] == "1-30" && r.ResourceRef != nil {
			dropped[r.ResourceRef.Kind+" "+r.ResourceRef.Name] = true
		}
	}
	for _, f := range files {
		if !dropped[f.kind+" "+f.name] {
			t.Errorf("1-30's %s %s was not reported dropped", f.kind, f.name)
		}
	}
	if d := treetest.Diff(treetest.Files(t, dir), got); d != "" {
		t.Errorf("regenerating 1-30 changed the tree:\n%s", d)
	}
	tr := readTree(t, dir)
	checkTree(t, tr)
	checkGateways(t, tr, gatewayWants["gateways-in-place"])
}

// TestGatewaysInOwnNamespace: gateways istioctl renders into their own
// namespace (an IngressGateways component with `namespace: istio-ingress`)
// are renamed per revision there, filed under the namespace, fronted by
// stable Services and Ingresses of that namespace.
func TestGatewaysInOwnNamespace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(golden("gateways"), "input"), dir)
	// The same Ingress template; no egress gateway in the default profile.
	editConfig(t, dir, "    live: 1-30", "    live: 1-31")
	for _, rev := range []string{"1-30", "1-31"} {
		treetest.Write(t, filepath.Join(dir, rev, config.SourceFile), gatewaysInNamespace(t, filepath.Join(fixtures, rev, "default.yaml"), "istio-ingress"))
	}
	run(t, dir)
	first := treetest.Files(t, dir)
	for _, f := range []string{
		"1-30/generated/deployment/istio-ingress/istio-ingressgateway-1-30.yaml",
		"1-31/generated/rolebinding/istio-ingress/istio-ingressgateway-sds-1-31.yaml",
		"1-31/generated/horizontalpodautoscaler/istio-ingress/istio-ingressgateway-1-31.yaml",
		"common/service/istio-ingress/istio-ingressgateway.yaml",
		"1-30/generated/ingress/istio-ingress/public-1-30.yaml",
	} {
		if _, ok := first[f]; !ok {
			t.Errorf("%s not written", f)
		}
	}
	tr := readTree(t, dir)
	checkTree(t, tr)
	checkGateways(t, tr, gatewayWant{gateways: defaultGateways, perRevision: true, stable: true, ingress: "public",
		liveOnly: gatewayWants["gateways"].liveOnly, namespace: "istio-ingress"})
	run(t, dir)
	if d := treetest.Diff(treetest.Files(t, dir), first); d != "" {
		t.Errorf("second run changed the tree:\n%s", d)
	}
	buildtest.BuildAll(t, dir)
}

// gatewaysInNamespace is the istioctl output file with its gateways
// rendered into namespace ns, as istioctl renders a gateway component
// given a namespace: every object of the chart, and the proxy's owner.
func gatewaysInNamespace(t testing.TB, file, ns string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := (&kio.ByteReader{Reader: bytes.NewReader(b), OmitReaderAnnotations: true}).Read()
	if err != nil {
		t.Fatal(err)
	}
	comps, err := gateway.Find(objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(comps) == 0 {
		t.Fatalf("%s has no gateway", file)
	}
	for _, c := range comps {
		for _, o := range c.Objects {
			if err := o.SetNamespace(ns); err != nil {
				t.Fatal(err)
			}
		}
	}
	var out bytes.Buffer
	if err := (kio.ByteWriter{Writer: &out}).Write(objs); err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(out.Bytes(), []byte("/namespaces/istio-system/deployments/"), []byte("/namespaces/"+ns+"/deployments/"))
}

// TestTreeChecksCatchBrokenTrees breaks golden trees the ways a gateway
// bug would, and wants checkTree and checkGateways to say so.
func TestTreeChecksCatchBrokenTrees(t *testing.T) {
	t.Parallel()
	type edit struct{ file, old, new string }
	for _, c := range []struct {
		name, tree string
		edits      []edit
		want       string
	}{
		{
			name:  "unbroken",
			tree:  "gateways",
			edits: nil,
		},
		{
			name:  "Service selects both revisions",
			tree:  "gateways",
			edits: []edit{{"1-31/generated/service/istio-ingressgateway-1-31.yaml", "    istio.io/rev: 1-31\n  type", "  type"}},
			want:  `Service istio-system/istio-ingressgateway-1-31 selects pods of ["1-30" "1-31"], want only 1-31/'s`,
		},
		{
			name:  "stable Service selects another revision than it says",
			tree:  "gateways",
			edits: []edit{{"common/service/istio-ingressgateway.yaml", "    istio.io/rev: 1-30", "    istio.io/rev: 1-31"}},
			want:  `Service istio-system/istio-ingressgateway selects pods of ["1-31"], want only 1-30/'s`,
		},
		{
			name:  "Ingress backend in another revision",
			tree:  "gateways",
			edits: []edit{{"1-31/generated/ingress/public-1-31.yaml", "name: istio-ingressgateway-1-31", "name: istio-ingressgateway-1-30"}},
			want:  "backend: 1-30/generated/service/istio-ingressgateway-1-30.yaml is in 1-30/, not in the referring object's folder 1-31/",
		},
		{
			name:  "live-only annotation on a canary Ingress",
			tree:  "gateways",
			edits: []edit{{"1-31/generated/ingress/public-1-31.yaml", "    kubernetes.io/ingress.class: gce\n", "    kubernetes.io/ingress.class: gce\n    cert-manager.io/cluster-issuer: letsencrypt\n"}},
			want:  "annotation cert-manager.io/cluster-issuer present true",
		},
		{
			name:  "binding of an account not renamed",
			tree:  "gateways",
			edits: []edit{{"1-30/generated/rolebinding/istio-ingressgateway-sds-1-30.yaml", "name: istio-ingressgateway-service-account-1-30", "name: istio-ingressgateway-service-account"}},
			want:  "subject: ServiceAccount istio-system/istio-ingressgateway-service-account is not deployed by the tree",
		},
		{
			name:  "gateway pods lose their Gateway label",
			tree:  "gateways",
			edits: []edit{{"1-30/generated/deployment/istio-ingressgateway-1-30.yaml", "istio: ingressgateway", "istio: ingress"}},
			want:  `gateway istio-ingressgateway-1-30's pods are labelled istio="ingress", want "ingressgateway"`,
		},
		{
			name:  "HPA of the istioctl name",
			tree:  "gateways-custom",
			edits: []edit{{"1-30/generated/horizontalpodautoscaler/public-ingress-1-30.yaml", "    name: public-ingress-1-30\n", "    name: public-ingress\n"}},
			want:  "scaleTargetRef: Deployment istio-system/public-ingress is not deployed by the tree",
		},
		{
			name: "one object in two folders",
			tree: "gateways",
			edits: []edit{
				{"1-31/generated/configmap/istio-1-30.yaml", "", "1-30/generated/configmap/istio-1-30.yaml"},
				{"1-31/kustomization.yaml", "- generated/configmap/istio-1-31.yaml\n", "- generated/configmap/istio-1-30.yaml\n- generated/configmap/istio-1-31.yaml\n"},
			},
			want: "1-30/generated/configmap/istio-1-30.yaml and 1-31/generated/configmap/istio-1-30.yaml both deploy ConfigMap istio-system/istio-1-30",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			treetest.Copy(t, filepath.Join(golden(c.tree), "want"), dir)
			for _, e := range c.edits {
				p := filepath.Join(dir, e.file)
				if e.old == "" {
					treetest.CopyFile(t, filepath.Join(dir, e.new), p)
					continue
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), e.old) {
					t.Fatalf("%s has no %q", e.file, e.old)
				}
				treetest.Write(t, p, []byte(strings.ReplaceAll(string(b), e.old, e.new)))
			}
			tr := readTree(t, dir)
			rec := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				checkTree(rec, tr)
				checkGateways(rec, tr, gatewayWants[c.tree])
			}()
			<-done
			switch {
			case c.want == "" && len(rec.errs) > 0:
				t.Errorf("the golden tree fails the checks:\n%s", strings.Join(rec.errs, "\n"))
			case c.want != "" && !slices.ContainsFunc(rec.errs, func(e string) bool { return strings.Contains(e, c.want) }):
				t.Errorf("no error contains %q; errors:\n%s", c.want, strings.Join(rec.errs, "\n"))
			}
		})
	}
}

// recorder collects a check's failures instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// Fatalf records and stops the check, which runs in its own goroutine.
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func goldenCaseNamed(t testing.TB, name string) goldenCase {
	t.Helper()
	i := slices.IndexFunc(goldenCases, func(c goldenCase) bool { return c.name == name })
	if i < 0 {
		t.Fatalf("no golden case %q", name)
	}
	return goldenCases[i]
}

// editConfig replaces old, which must occur once, in the tree's config.
func editConfig(t testing.TB, dir, old, new string) {
	t.Helper()
	p := filepath.Join(dir, "istio-gitops.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%s: %q occurs %d times, want once", p, old, n)
	}
	treetest.Write(t, p, []byte(strings.Replace(string(b), old, new, 1)))
}

// changedFiles lists the files added, removed or changed from a to b.
func changedFiles(a, b map[string][]byte) []string {
	var out []string
	for _, n := range treetest.Names(a) {
		if nb, ok := b[n]; !ok || !bytes.Equal(a[n], nb) {
			out = append(out, n)
		}
	}
	for _, n := range treetest.Names(b) {
		if _, ok := a[n]; !ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// changedLines returns the lines only a has and those only b has, each
// sorted, counting repeated lines.
func changedLines(a, b []byte) (removed, added []string) {
	count := map[string]int{}
	for l := range strings.SplitSeq(string(a), "\n") {
		count[l]++
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		count[l]--
	}
	for _, l := range config.SortedKeys(count) {
		for ; count[l] > 0; count[l]-- {
			removed = append(removed, l)
		}
		for ; count[l] < 0; count[l]++ {
			added = append(added, l)
		}
	}
	return removed, added
}

// isLiveOnlyLine reports whether a line of an Ingress file is one of the
// live-only annotations, or a comment (the template's comment on one).
func isLiveOnlyLine(line string, liveOnly []string) bool {
	l := strings.TrimSpace(line)
	if strings.HasPrefix(l, "#") {
		return true
	}
	return slices.ContainsFunc(liveOnly, func(k string) bool { return strings.HasPrefix(l, k+":") })
}

// placed is an object a tree deploys, with the folder that deploys it.
type placed struct {
	// folder is "common", a revision, or "." for files the root lists.
	folder string
	file   string
	obj    *yaml.RNode
}

type deployedTree struct {
	cfg  *config.IstioGitOps
	objs []placed
}

// readTree reads what the tree's kustomizations deploy: the root's
// resources, and for each folder it lists, that folder's resources.
func readTree(t testing.TB, dir string) deployedTree {
	t.Helper()
	cfgNode, err := yaml.ReadFile(filepath.Join(dir, "istio-gitops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgNode)
	if err != nil {
		t.Fatal(err)
	}
	tr := deployedTree{cfg: cfg}
	folders := map[string]bool{}
	for _, res := range kustomizationResources(t, dir, ".") {
		if fi, err := os.Stat(filepath.Join(dir, res)); err == nil && fi.IsDir() {
			folders[res] = true
			for _, f := range kustomizationResources(t, dir, res) {
				tr.objs = append(tr.objs, readObjects(t, dir, res, path.Join(res, f))...)
			}
			continue
		}
		tr.objs = append(tr.objs, readObjects(t, dir, ".", res)...)
	}
	want := append([]string{"common"}, cfg.RevisionNames()...)
	if got := config.SortedKeys(folders); !sameSet(got, want) {
		t.Errorf("the root kustomization lists folders %q, want %q", got, want)
	}
	return tr
}

func kustomizationResources(t testing.TB, dir, folder string) []string {
	t.Helper()
	k, err := yaml.ReadFile(filepath.Join(dir, folder, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := k.Pipe(yaml.Lookup("resources"))
	if err != nil || res == nil {
		t.Fatalf("%s/kustomization.yaml: no resources (%v)", folder, err)
	}
	var out []string
	for _, e := range res.Content() {
		out = append(out, e.Value)
	}
	return out
}

func readObjects(t testing.TB, dir, folder, file string) []placed {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(b), OmitReaderAnnotations: true}).Read()
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := make([]placed, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, placed{folder: folder, file: file, obj: n})
	}
	return out
}

func (tr deployedTree) inFolder(folder string) []*yaml.RNode {
	var out []*yaml.RNode
	for _, p := range tr.objs {
		if p.folder == folder {
			out = append(out, p.obj)
		}
	}
	return out
}

func (tr deployedTree) find(group, kind, namespace, name string) (placed, bool) {
	for _, p := range tr.objs {
		if groupOf(p.obj.GetApiVersion()) == group && p.obj.GetKind() == kind &&
			p.obj.GetNamespace() == namespace && p.obj.GetName() == name {
			return p, true
		}
	}
	return placed{}, false
}

func groupOf(apiVersion string) string {
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		return g
	}
	return ""
}

func rendered(o *yaml.RNode) bool {
	_, ok := o.GetAnnotations()[api.RenderedFromAnnotation]
	return ok
}

// checkTree checks what any tree must satisfy: unique identities,
// references that resolve, selectors confined to one folder.
func checkTree(t testing.TB, tr deployedTree) {
	t.Helper()
	if len(tr.objs) == 0 {
		t.Fatal("the tree deploys nothing")
	}
	seen := map[string]string{}
	for _, p := range tr.objs {
		id := istioctl.Identity(p.obj)
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s both deploy %s", prev, p.file, object.Describe(p.obj))
		}
		seen[id] = p.file
	}

	// Gateway objects, folder by folder, as the product recognizes them.
	gatewayObj := map[string]bool{}
	for _, f := range append([]string{"common"}, tr.cfg.RevisionNames()...) {
		comps, err := gateway.Find(tr.inFolder(f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range gateway.Objects(comps) {
			gatewayObj[istioctl.Identity(o)] = true
		}
	}

	refs := map[string]int{}
	resolve := func(from placed, what, group, kind, namespace, name string) (placed, bool) {
		refs[what]++
		to, ok := tr.find(group, kind, namespace, name)
		if !ok {
			t.Errorf("%s: %s %s: %s %s/%s is not deployed by the tree", from.file, object.Describe(from.obj), what, kind, namespace, name)
			return to, false
		}
		strict := gatewayObj[istioctl.Identity(from.obj)] || from.obj.GetKind() == "Ingress"
		switch {
		case to.folder == from.folder:
		case from.folder == "common" && rendered(from.obj):
			// Pointers rendered into common/ refer to a revision.
		case from.folder != "common" && to.folder == "common" && !strict && !rendered(to.obj):
			// A revision's own objects may use what istioctl shares
			// between revisions (istio-reader-service-account).
		default:
			t.Errorf("%s: %s %s: %s is in %s/, not in the referring object's folder %s/", from.file, object.Describe(from.obj), what, to.file, to.folder, from.folder)
		}
		return to, true
	}

	type pod struct {
		p      placed
		labels map[string]string
	}
	var pods []pod
	for _, p := range tr.objs {
		if hasPodTemplate(p.obj) {
			pods = append(pods, pod{p, stringMap(t, p.obj, "spec", "template", "metadata", "labels")})
		}
	}
	selected := func(from placed, sel func(map[string]string) bool) []placed {
		var out []placed
		for _, pd := range pods {
			if pd.p.obj.GetNamespace() == from.obj.GetNamespace() && sel(pd.labels) {
				out = append(out, pd.p)
			}
		}
		if len(out) == 0 {
			t.Errorf("%s: %s selects no pods of the tree", from.file, object.Describe(from.obj))
		}
		return out
	}
	// checkSelected: a revision's selectors select only its own pods. In
	// common/, istioctl's shared objects select common/'s (gateways in
	// place), and a rendered Service one revision's: the live one's for a
	// stable Service, the active one's for istiod, a tag's for its own.
	checkSelected := func(from placed, got []placed) {
		folders := map[string]bool{}
		for _, p := range got {
			folders[p.folder] = true
		}
		want := from.folder
		if from.folder == "common" && rendered(from.obj) {
			switch live := from.obj.GetAnnotations()[api.LiveRevisionAnnotation]; {
			case live != "":
				want = live
			case from.obj.GetName() == "istiod":
				want = tr.cfg.Spec.ActiveRevision
			default:
				// A tag's Service: the revision the tag points at.
				want = scalarAt(from.obj, "spec", "selector", api.RevisionLabel)
			}
		}
		if f := config.SortedKeys(folders); len(f) > 0 && !slices.Equal(f, []string{want}) {
			t.Errorf("%s: %s selects pods of %q, want only %s/'s", from.file, object.Describe(from.obj), f, want)
		}
	}

	for _, p := range tr.objs {
		o := p.obj
		ns := o.GetNamespace()
		switch kind := o.GetKind(); {
		case kind == "Service" && groupOf(o.GetApiVersion()) == "":
			sel := stringMap(t, o, "spec", "selector")
			if len(sel) == 0 {
				continue
			}
			refs["Service selector"]++
			checkSelected(p, selected(p, func(l map[string]string) bool { return subset(sel, l) }))
		case hasPodTemplate(o):
			sel := labelSelector(t, o, "spec", "selector")
			refs["workload selector"]++
			got := selected(p, sel)
			if len(got) != 1 || got[0].obj != o {
				var files []string
				for _, g := range got {
					files = append(files, g.file)
				}
				t.Errorf("%s: %s selects the pods of %q, want only its own", p.file, object.Describe(o), files)
			}
			if sa := scalarAt(o, "spec", "template", "spec", "serviceAccountName"); sa != "" {
				resolve(p, "serviceAccountName", "", "ServiceAccount", ns, sa)
			}
		case kind == "PodDisruptionBudget":
			refs["PDB selector"]++
			checkSelected(p, selected(p, labelSelector(t, o, "spec", "selector")))
		case kind == "HorizontalPodAutoscaler":
			ref := lookup(t, o, "spec", "scaleTargetRef")
			resolve(p, "scaleTargetRef", groupOf(scalarAt(ref, "apiVersion")), scalarAt(ref, "kind"), ns, scalarAt(ref, "name"))
		case kind == "RoleBinding" || kind == "ClusterRoleBinding":
			refKind := scalarAt(o, "roleRef", "kind")
			refNS := ns
			if refKind == "ClusterRole" {
				refNS = ""
			}
			resolve(p, "roleRef", scalarAt(o, "roleRef", "apiGroup"), refKind, refNS, scalarAt(o, "roleRef", "name"))
			for _, s := range elements(t, o, "subjects") {
				if scalarAt(s, "kind") != "ServiceAccount" {
					continue
				}
				sns := scalarAt(s, "namespace")
				if sns == "" {
					sns = ns
				}
				resolve(p, "subject", "", "ServiceAccount", sns, scalarAt(s, "name"))
			}
		case kind == "MutatingWebhookConfiguration" || kind == "ValidatingWebhookConfiguration":
			for _, w := range elements(t, o, "webhooks") {
				if svc := lookup(t, w, "clientConfig", "service"); svc != nil {
					resolve(p, "webhook "+scalarAt(w, "name"), "", "Service", scalarAt(svc, "namespace"), scalarAt(svc, "name"))
				}
			}
		case kind == "Ingress":
			backends := ingressBackends(t, o)
			if len(backends) == 0 {
				t.Errorf("%s: %s has no backend", p.file, object.Describe(o))
			}
			for _, b := range backends {
				svc, ok := resolve(p, "backend", "", "Service", ns, scalarAt(b, "service", "name"))
				if ok && !hasPort(t, svc.obj, scalarAt(b, "service", "port", "name"), scalarAt(b, "service", "port", "number")) {
					t.Errorf("%s: backend port %s%s is not a port of %s", p.file, scalarAt(b, "service", "port", "name"),
						scalarAt(b, "service", "port", "number"), object.Describe(svc.obj))
				}
			}
		}
	}
	t.Logf("%d objects deployed; checked %v", len(tr.objs), refs)
	for _, what := range []string{"Service selector", "workload selector", "serviceAccountName", "roleRef", "subject", "webhook rev.validation.istio.io"} {
		if refs[what] == 0 {
			t.Errorf("no %s checked: the tree is not what this check expects", what)
		}
	}
}

// checkGateways checks the tree's gateways against want and the config.
func checkGateways(t testing.TB, tr deployedTree, want gatewayWant) {
	t.Helper()
	cfg := tr.cfg
	live := cfg.Spec.Gateways.Live
	if cfg.PerRevisionGateways() != want.perRevision {
		t.Fatalf("config perRevision %v, case says %v", cfg.PerRevisionGateways(), want.perRevision)
	}
	originals := config.SortedKeys(want.gateways)
	ns := cmp.Or(want.namespace, cfg.Spec.Namespace)
	// Objects outside the control-plane namespace are filed under it.
	nsDir := ""
	if ns != cfg.Spec.Namespace {
		nsDir = ns + "/"
	}
	for _, folder := range append([]string{"common"}, cfg.RevisionNames()...) {
		comps, err := gateway.Find(tr.inFolder(folder))
		if err != nil {
			t.Fatalf("%s: %v", folder, err)
		}
		var names, wantNames []string
		for _, c := range comps {
			names = append(names, c.Name)
		}
		switch {
		case want.perRevision && folder != "common":
			for _, g := range originals {
				wantNames = append(wantNames, g+"-"+folder)
			}
		case !want.perRevision && folder == "common":
			wantNames = originals
		}
		if !sameSet(names, wantNames) {
			t.Errorf("%s/ has gateways %q, want %q", folder, names, wantNames)
			continue
		}
		for _, c := range comps {
			orig := strings.TrimSuffix(c.Name, "-"+folder)
			if c.Namespace != ns {
				t.Errorf("%s/: gateway %s is in namespace %q, want %q", folder, c.Name, c.Namespace, ns)
			}
			if got := c.PodLabels["istio"]; got != want.gateways[orig] {
				t.Errorf("%s/: gateway %s's pods are labelled istio=%q, want %q: Gateway resources select them by it", folder, c.Name, got, want.gateways[orig])
			}
			if len(c.Services()) == 0 {
				t.Errorf("%s/: gateway %s has no Service", folder, c.Name)
			}
			if folder == "common" {
				continue
			}
			if got := c.PodLabels[api.RevisionLabel]; got != folder {
				t.Errorf("%s/: gateway %s's pods are labelled %s=%q", folder, c.Name, api.RevisionLabel, got)
			}
			for _, o := range c.Objects {
				if !strings.HasSuffix(o.GetName(), "-"+folder) {
					t.Errorf("%s/: %s of gateway %s is not renamed for the revision", folder, object.Describe(o), c.Name)
				}
			}
			if len(c.Objects) < 5 {
				t.Errorf("%s/: gateway %s has only %d objects", folder, c.Name, len(c.Objects))
			}
		}
	}

	// Stable Services: one per live gateway Service, under its istioctl
	// name, selecting the live revision.
	var stable, wantStable []string
	for _, p := range tr.objs {
		if p.folder == "common" && p.obj.GetKind() == "Service" && p.obj.GetAnnotations()[api.LiveRevisionAnnotation] != "" {
			stable = append(stable, p.obj.GetName())
			if got := p.obj.GetAnnotations()[api.LiveRevisionAnnotation]; got != live {
				t.Errorf("%s: live revision %q, want %q", p.file, got, live)
			}
			if got := scalarAt(p.obj, "spec", "selector", api.RevisionLabel); got != live {
				t.Errorf("%s: selects %s=%q, want the live revision %q", p.file, api.RevisionLabel, got, live)
			}
			if want := "common/service/" + nsDir + p.obj.GetName() + ".yaml"; p.file != want {
				t.Errorf("stable Service %s is in %s, want %s", p.obj.GetName(), p.file, want)
			}
		}
	}
	if want.stable {
		wantStable = originals
	}
	if !sameSet(stable, wantStable) {
		t.Errorf("stable Services %q, want %q", stable, wantStable)
	}

	// Ingresses: one per revision in its folder, live-only annotations on
	// the live one only, the same otherwise.
	var ingresses []string
	var others []map[string]string
	for _, p := range tr.objs {
		if p.obj.GetKind() != "Ingress" {
			continue
		}
		ingresses = append(ingresses, p.file)
		if p.obj.GetNamespace() != ns {
			t.Errorf("%s: namespace %q, want the gateways' %q", p.file, p.obj.GetNamespace(), ns)
		}
		ann := p.obj.GetAnnotations()
		// Records of the object itself: its digest, and on the live one
		// that it is.
		if got := ann[api.LiveRevisionAnnotation]; (got != "") != (p.folder == live) || got != "" && got != live {
			t.Errorf("%s: %s = %q; want %q on the live revision's Ingress only", p.file, api.LiveRevisionAnnotation, got, live)
		}
		delete(ann, api.LiveRevisionAnnotation)
		delete(ann, api.RenderedDigestAnnotation)
		for _, k := range want.liveOnly {
			if _, has := ann[k]; has != (p.folder == live) {
				t.Errorf("%s: annotation %s present %v; want it on the live revision %s's Ingress only", p.file, k, has, live)
			}
			delete(ann, k)
		}
		others = append(others, ann)
	}
	var wantIngresses []string
	if want.ingress != "" {
		for _, rev := range cfg.RevisionNames() {
			wantIngresses = append(wantIngresses, fmt.Sprintf("%s/generated/ingress/%s%s-%s.yaml", rev, nsDir, want.ingress, rev))
		}
	}
	if !sameSet(ingresses, wantIngresses) {
		t.Errorf("Ingresses %q, want %q", ingresses, wantIngresses)
	}
	for _, a := range others[min(1, len(others)):] {
		if fmt.Sprint(a) != fmt.Sprint(others[0]) {
			t.Errorf("Ingress annotations differ beyond the live-only ones: %v and %v", a, others[0])
		}
	}
}

func hasPodTemplate(o *yaml.RNode) bool {
	switch o.GetKind() {
	case "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet":
		return groupOf(o.GetApiVersion()) == "apps"
	}
	return false
}

func lookup(t testing.TB, n *yaml.RNode, fields ...string) *yaml.RNode {
	t.Helper()
	v, err := n.Pipe(yaml.Lookup(fields...))
	if err != nil {
		t.Fatalf("%s: %s: %v", object.Describe(n), strings.Join(fields, "."), err)
	}
	return v
}

func scalarAt(n *yaml.RNode, fields ...string) string {
	if n == nil {
		return ""
	}
	v, err := n.Pipe(yaml.Lookup(fields...))
	if err != nil || v == nil || v.YNode().Kind != yaml.ScalarNode {
		return ""
	}
	return yaml.GetValue(v)
}

func elements(t testing.TB, n *yaml.RNode, fields ...string) []*yaml.RNode {
	t.Helper()
	l := lookup(t, n, fields...)
	if yaml.IsMissingOrNull(l) {
		return nil
	}
	e, err := l.Elements()
	if err != nil {
		t.Fatalf("%s: %s: %v", object.Describe(n), strings.Join(fields, "."), err)
	}
	return e
}

func stringMap(t testing.TB, n *yaml.RNode, fields ...string) map[string]string {
	t.Helper()
	m := lookup(t, n, fields...)
	if yaml.IsMissingOrNull(m) {
		return nil
	}
	out := map[string]string{}
	c := m.Content()
	for i := 0; i+1 < len(c); i += 2 {
		out[c[i].Value] = c[i+1].Value
	}
	return out
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// labelSelector reads a metav1.LabelSelector; an empty one selects nothing
// here, as no gateway or istiod object has one.
func labelSelector(t testing.TB, n *yaml.RNode, fields ...string) func(map[string]string) bool {
	t.Helper()
	ml := stringMap(t, n, append(slices.Clone(fields), "matchLabels")...)
	exprs := elements(t, n, append(slices.Clone(fields), "matchExpressions")...)
	if len(ml) == 0 && len(exprs) == 0 {
		t.Errorf("%s: %s is empty", object.Describe(n), strings.Join(fields, "."))
	}
	return func(labels map[string]string) bool {
		if !subset(ml, labels) {
			return false
		}
		for _, e := range exprs {
			v, has := labels[scalarAt(e, "key")]
			var values []string
			for _, x := range elements(t, e, "values") {
				values = append(values, yaml.GetValue(x))
			}
			ok := false
			switch op := scalarAt(e, "operator"); op {
			case "In":
				ok = has && slices.Contains(values, v)
			case "NotIn":
				ok = !has || !slices.Contains(values, v)
			case "Exists":
				ok = has
			case "DoesNotExist":
				ok = !has
			default:
				t.Errorf("%s: operator %q", object.Describe(n), op)
			}
			if !ok {
				return false
			}
		}
		return true
	}
}

func ingressBackends(t testing.TB, in *yaml.RNode) []*yaml.RNode {
	t.Helper()
	var out []*yaml.RNode
	if b := lookup(t, in, "spec", "defaultBackend"); b != nil {
		out = append(out, b)
	}
	for _, r := range elements(t, in, "spec", "rules") {
		for _, p := range elements(t, r, "http", "paths") {
			if b := lookup(t, p, "backend"); b != nil {
				out = append(out, b)
			}
		}
	}
	return out
}

func hasPort(t testing.TB, svc *yaml.RNode, name, number string) bool {
	t.Helper()
	return slices.ContainsFunc(elements(t, svc, "spec", "ports"), func(p *yaml.RNode) bool {
		return (name != "" && scalarAt(p, "name") == name) || (number != "" && scalarAt(p, "port") == number)
	})
}
