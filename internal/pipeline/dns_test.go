package pipeline_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// cutoverStep is a tree of the host-by-host story (testdata/stories/
// cutover.yaml) copied into a new folder.
func cutoverStep(t *testing.T, step string) string {
	t.Helper()
	return fromGolden(t, filepath.Join("cutover", step))
}

// warnings are the messages of the warning results.
func warnings(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, r := range run(t, dir) {
		if r.Severity == "warning" {
			out = append(out, r.Message)
		}
	}
	return out
}

// TestSharedLoadBalancerValues: a static address's name that the template
// gives every revision's Ingress, or that both revisions' gateway Services
// carry, is warned of, naming the objects and where to set each its own;
// per-revision values are not.
func TestSharedLoadBalancerValues(t *testing.T) {
	t.Parallel()
	dir := cutoverStep(t, "2-add-1-31")
	if w := warnings(t, dir); len(w) != 0 {
		t.Fatalf("per-revision addresses warned of: %q", w)
	}
	// The template's address, with no per-revision value for 1-31.
	editConfig(t, dir, "            kubernetes.io/ingress.class: gce\n", "            kubernetes.io/ingress.class: gce\n            kubernetes.io/ingress.global-static-ip-name: edge\n")
	for _, rev := range []string{"1-30", "1-31"} {
		editConfig(t, dir, "        "+rev+":\n          annotations:\n            kubernetes.io/ingress.global-static-ip-name: edge-"+rev+"\n", "")
	}
	want := `Ingress istio-system/edge-1-30, Ingress istio-system/edge-1-31 all have the annotation kubernetes.io/ingress.global-static-ip-name: "edge", which a load balancer holds alone: their load balancers fight over it; give each its own value in spec.gateways.ingress.perRevision.<revision>.annotations`
	if w := warnings(t, dir); !slices.Contains(w, want) {
		t.Errorf("warnings %q\nmust hold %q", w, want)
	}

	// Both revisions' public gateway Services with one Elastic IP.
	dir = cutoverStep(t, "1-bootstrap")
	for _, rev := range []string{"1-30", "1-31"} {
		b, err := os.ReadFile(filepath.Join("../../testdata/gateway", "custom-"+rev+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), "service.beta.kubernetes.io/aws-load-balancer-type: nlb",
			"service.beta.kubernetes.io/aws-load-balancer-type: nlb\n    service.beta.kubernetes.io/aws-load-balancer-eip-allocations: eipalloc-1", 1))
		treetest.Write(t, filepath.Join(dir, rev, "istioctl-output.yaml"), b)
	}
	treetest.CopyFile(t, filepath.Join(golden("cutover"), "2-add-1-31", "istio-gitops.yaml"), filepath.Join(dir, "istio-gitops.yaml"))
	want = `Service istio-system/public-ingress-1-30, Service istio-system/public-ingress-1-31 all have the annotation service.beta.kubernetes.io/aws-load-balancer-eip-allocations: "eipalloc-1"`
	if w := warnings(t, dir); !slices.ContainsFunc(w, func(s string) bool { return strings.HasPrefix(s, want) && strings.Contains(s, "IstioOperator") }) {
		t.Errorf("warnings %q\nmust hold %q and say to set it in each IstioOperator", w, want)
	}
}

// TestLiveOnlyDNSAnnotations: an external-dns annotation of the template
// that liveOnlyAnnotations keeps off the revisions that are not live is
// warned of once hosts move one by one: the hosts those revisions publish
// would go without it.
func TestLiveOnlyDNSAnnotations(t *testing.T) {
	t.Parallel()
	dir := cutoverStep(t, "3-move-shop")
	editConfig(t, dir, `liveOnlyAnnotations: ["cert-manager.io/*"]`, `liveOnlyAnnotations: ["cert-manager.io/*", "external-dns.alpha.kubernetes.io/*"]`)
	want := "spec.gateways.ingress.template: the annotation external-dns.alpha.kubernetes.io/ttl is live-only"
	if w := warnings(t, dir); !slices.ContainsFunc(w, func(s string) bool { return strings.HasPrefix(s, want) }) {
		t.Errorf("warnings %q\nmust hold %q", w, want)
	}
	got := treetest.Files(t, dir)
	if !strings.Contains(string(got["1-31/generated/ingress/edge-1-31.yaml"]), "external-dns.alpha.kubernetes.io/hostname: shop.example.com") {
		t.Errorf("the live-only pattern took the function's own hostname annotation off 1-31's Ingress:\n%s", got["1-31/generated/ingress/edge-1-31.yaml"])
	}
}

// TestRevertHostMove: a host move is the config line and the two
// Ingresses' annotations, nothing shared with other steps (no record in
// common/state.yaml): `git revert` of the last move applies cleanly, the
// next run is a no-op, and the tree is the one before the move.
func TestRevertHostMove(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	dir := cutoverStep(t, "3-move-shop")
	git := func(args ...string) string {
		t.Helper()
		return treetest.Git(t, dir, args...)
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-qm", "shop on 1-31")
	before := withoutGit(treetest.Files(t, dir))
	editConfig(t, dir, "        shop.example.com: 1-31\n", "        api.example.com: 1-31\n        shop.example.com: 1-31\n")
	run(t, dir)
	git("add", "-A")
	git("commit", "-qm", "api on 1-31")
	if changed := git("diff", "--name-only", "HEAD~1"); changed != "1-30/generated/ingress/edge-1-30.yaml\n1-31/generated/ingress/edge-1-31.yaml\nistio-gitops.yaml\n" {
		t.Errorf("the move changed:\n%s", changed)
	}
	git("revert", "--no-edit", "HEAD")
	for _, l := range resultLines(run(t, dir)) {
		if strings.Contains(l, " -> ") {
			t.Errorf("the run after the revert moved something: %s", l)
		}
	}
	if d := treetest.Diff(withoutGit(treetest.Files(t, dir)), before); d != "" {
		t.Errorf("the revert did not restore the tree:\n%s", d)
	}
}

// withoutGit drops the repository's own files from a tree's.
func withoutGit(files map[string][]byte) map[string][]byte {
	for f := range files {
		if strings.HasPrefix(f, ".git/") {
			delete(files, f)
		}
	}
	return files
}
