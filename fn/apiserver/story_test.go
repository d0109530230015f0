package apiserver_test

import (
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/istio-gitops/istio-gitops/internal/cli"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// storyCases are the profiles the upgrade story runs on, and how Flux
// deploys the tree: through flux/'s Kustomizations, one per folder, or
// one Kustomization of the tree's root.
var storyCases = []struct {
	name string
	// fixture is the file of each revision's folder of testdata/istioctl.
	fixture string
	viaFlux bool
}{
	{name: "default", fixture: "default.yaml", viaFlux: true},
	{name: "demo", fixture: "demo.yaml"},
}

// storyConfig is the config of a story step: tags, stable gateway
// Services and an Ingress per revision following the active revision,
// flux/, and 1-31 carrying 1-30's patches while both are listed.
func storyConfig(revisions []string, active, stable, canary string) meshConfig {
	tags := map[string]string{"prod-stable": stable}
	if canary != "" {
		tags["prod-canary"] = canary
	}
	return meshConfig{revisions: revisions, active: active, tags: tags, carry: len(revisions) == 2, gateways: true, flux: true}
}

var (
	only130 = []string{"1-30"}
	both    = []string{"1-30", "1-31"}
	only131 = []string{"1-31"}
)

// storyStep is a step of the upgrade story: the golden story of
// internal/pipeline with a GitPatch added to 1-30 after the bootstrap.
type storyStep struct {
	name string
	cfg  meshConfig
	// source is a revision given fresh istioctl output at this step.
	source string
	// patch adds a GitPatch to 1-30 at this step.
	patch bool
	// pointers: the step only moves pointers (promote, roll back).
	pointers bool
	// sameAs names an earlier step whose builds this one's must equal.
	sameAs string
	// retire is the revision whose objects the step must delete.
	retire string
}

var storySteps = []storyStep{
	{name: "1-bootstrap", source: "1-30", cfg: storyConfig(only130, "1-30", "1-30", "")},
	{name: "2-patch-1-30", patch: true, cfg: storyConfig(only130, "1-30", "1-30", "")},
	{name: "3-add-1-31", source: "1-31", cfg: storyConfig(both, "1-30", "1-30", "1-31")},
	{name: "4-promote", pointers: true, cfg: storyConfig(both, "1-31", "1-31", "1-31")},
	{name: "5-roll-back", pointers: true, sameAs: "3-add-1-31", cfg: storyConfig(both, "1-30", "1-30", "1-31")},
	{name: "6-promote-again", pointers: true, sameAs: "4-promote", cfg: storyConfig(both, "1-31", "1-31", "1-31")},
	{name: "7-retire-1-30", retire: "1-30", cfg: storyConfig(only131, "1-31", "1-31", "1-31")},
}

// The GitPatch of the story: neither injector webhook of 1-30 ever
// injects into kube-system, whatever its labels say. 1-31 carries it.
const (
	injectorFile   = "generated/mutatingwebhookconfiguration/istio-sidecar-injector-REV.yaml"
	noKubeSystem   = "    - key: istio-injection\n      operator: DoesNotExist\n"
	noKubeSystemTo = noKubeSystem + "    - key: kubernetes.io/metadata.name\n      operator: NotIn\n      values:\n      - kube-system\n"
)

// TestStory walks a tree through the whole upgrade on a real API server,
// deploying each step as Flux does (see cluster.deploy for what every
// step must show): bootstrap 1-30, patch it, add 1-31, promote, roll back,
// promote again, retire 1-30. On top of that: the patch changes only the
// patched object; adding a canary deletes nothing;
// promotion and rollback only reconfigure pointer objects and give the
// same objects as the step they return to; retiring 1-30 deletes exactly
// the objects of its folder, never a CRD.
func TestStory(t *testing.T) {
	t.Parallel()
	for _, sc := range storyCases {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			c := newCluster(srv, sc.viaFlux)
			dir := t.TempDir()
			treetest.Write(t, filepath.Join(dir, "common", "istio-system.yaml"), []byte(namespace))
			snapshots := map[string]map[string]map[string]*unstructured.Unstructured{}
			for _, s := range storySteps {
				ok := t.Run(s.name, func(t *testing.T) {
					if s.patch {
						addPatch(t, dir, "1-30")
					}
					var retired map[string]bool
					if s.retire != "" {
						retired = folderObjects(t, dir, s.retire)
					}
					sources := map[string]string{}
					if s.source != "" {
						sources[s.source] = filepath.Join("istioctl", s.source, sc.fixture)
					}
					cfg := s.cfg
					// Through one Kustomization of the root: a tree without
					// spec.flux, whose root lists every folder.
					cfg.flux = sc.viaFlux
					writeTree(t, dir, cfg, sources)
					d := c.deploy(t, dir)
					t.Logf("%s", d.summary())
					if len(d.configured) > 0 {
						t.Logf("configured %q", d.configured)
					}
					snapshots[s.name] = maps.Clone(c.built)
					checkStep(t, c, s, d, retired, snapshots)
				})
				if !ok {
					return
				}
			}
		})
	}
}

// checkStep checks what is particular to a step of the story.
func checkStep(t *testing.T, c *cluster, s storyStep, d deployed, retired map[string]bool, snapshots map[string]map[string]map[string]*unstructured.Unstructured) {
	t.Helper()
	switch {
	case s.name == "1-bootstrap":
		if len(d.configured)+len(d.unchanged)+len(d.deleted) != 0 {
			t.Errorf("a bootstrap only creates: %+v", d)
		}
	case s.patch:
		// The tag's webhooks keep the chart's selectors (pointer.Tag): a
		// namespaceSelector patch does not reach them.
		want := []string{"MutatingWebhookConfiguration/istio-sidecar-injector-1-30"}
		if !slices.Equal(d.configured, want) || len(d.created)+len(d.deleted) != 0 {
			t.Errorf("the patch configured %q, created %q, deleted %q; want it to configure %q only", d.configured, d.created, d.deleted, want)
		}
		checkNoKubeSystem(t, c, "istio-sidecar-injector-1-30")
	case s.source != "":
		if len(d.deleted)+len(d.kept) != 0 {
			t.Errorf("adding a revision pruned %q and %q", d.deleted, d.kept)
		}
		checkNoKubeSystem(t, c, "istio-sidecar-injector-1-31")
	case s.pointers:
		if len(d.created)+len(d.deleted)+len(d.kept) != 0 || len(d.configured) == 0 {
			t.Errorf("moving pointers created %q, deleted %q, kept %q, configured %q", d.created, d.deleted, d.kept, d.configured)
		}
		for _, k := range slices.Sorted(maps.Keys(c.built)) {
			for _, o := range c.built[k] {
				if slices.Contains(d.configured, describeObj(o)) && o.GetAnnotations()["fn.istio-gitops.dev/rendered-from"] == "" {
					t.Errorf("%s was configured: moving pointers must change only objects rendered from the config", describeObj(o))
				}
			}
		}
	case s.retire != "":
		var want []string
		for o := range retired {
			want = append(want, o)
		}
		slices.Sort(want)
		if !slices.Equal(d.deleted, want) {
			t.Errorf("retiring %s deleted %q, want exactly its objects %q", s.retire, d.deleted, want)
		}
		for _, o := range d.deleted {
			if strings.HasPrefix(o, "CustomResourceDefinition/") {
				t.Errorf("retiring %s deleted %s", s.retire, o)
			}
		}
		if len(d.created)+len(d.configured)+len(d.kept) != 0 {
			t.Errorf("retiring %s created %q, configured %q, kept %q", s.retire, d.created, d.configured, d.kept)
		}
	}
	if s.sameAs != "" {
		then, now := snapshots[s.sameAs], snapshots[s.name]
		for _, k := range slices.Sorted(maps.Keys(now)) {
			for id, o := range now[k] {
				if was, ok := then[k][id]; !ok || !sameJSON(t, was, o) {
					t.Errorf("%s differs from step %s", describeObj(o), s.sameAs)
				}
			}
			if len(then[k]) != len(now[k]) {
				t.Errorf("%s: %d objects, step %s had %d", k, len(now[k]), s.sameAs, len(then[k]))
			}
		}
	}
}

// checkNoKubeSystem: both injector webhooks of the configuration on the
// server carry the patch's namespaceSelector expression.
func checkNoKubeSystem(t *testing.T, c *cluster, name string) {
	t.Helper()
	o := &unstructured.Unstructured{}
	o.SetAPIVersion("admissionregistration.k8s.io/v1")
	o.SetKind("MutatingWebhookConfiguration")
	o.SetName(name)
	live := c.get(t, o)
	if live == nil {
		t.Fatalf("%s is not on the server", name)
	}
	whs, _, _ := unstructured.NestedSlice(live.Object, "webhooks")
	n := 0
	for _, w := range whs {
		exprs, _, _ := unstructured.NestedSlice(w.(map[string]any), "namespaceSelector", "matchExpressions")
		for _, e := range exprs {
			if e.(map[string]any)["key"] == "kubernetes.io/metadata.name" {
				n++
			}
		}
	}
	if n != 2 {
		t.Errorf("%s: %d of %d webhooks on the server exclude kube-system, want 2", name, n, len(whs))
	}
}

// addPatch makes a GitPatch of rev as a platform engineer does: edit a
// written file, git diff, check it out again, `istio-gitops patch import`.
func addPatch(t *testing.T, dir, rev string) {
	t.Helper()
	treetest.Git(t, dir, "init", "-q", "-b", "main")
	treetest.Git(t, dir, "add", "-A")
	treetest.Git(t, dir, "commit", "-q", "-m", "istio: bootstrap "+rev)
	rel := rev + "/" + strings.ReplaceAll(injectorFile, "REV", rev)
	editFile(t, filepath.Join(dir, rel), noKubeSystem, noKubeSystemTo, 2)
	diff := treetest.Git(t, dir, "diff")
	treetest.Git(t, dir, "checkout", "--", rel)
	if err := os.RemoveAll(filepath.Join(dir, ".git")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "no-kube-system.patch")
	treetest.Write(t, file, []byte(diff))
	cmd := cli.NewRootCommand()
	var out bytes.Buffer
	cmd.SetArgs([]string{"patch", "import", file, "--revision", rev, "--name", "no-kube-system"})
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("patch import: %v", err)
	}
	treetest.Write(t, filepath.Join(dir, rev, "patches", "no-kube-system.yaml"), out.Bytes())
}

// folderObjects describes the objects a folder of the tree builds.
func folderObjects(t *testing.T, dir, folder string) map[string]bool {
	t.Helper()
	objs := build(t, dir, folder)
	out := map[string]bool{}
	for _, o := range objs {
		out[describeObj(o)] = true
	}
	return out
}
