package argocd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/gitops-engine/pkg/health"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// goldenStory is the Argo CD story's trees, one folder per step.
var goldenStory = filepath.Join(repo, "testdata/golden/argocd")

// TestStory deploys every step of the Argo CD story on one cluster as
// Argo CD would, from the app-of-apps applied by hand at the first step:
//   - exactly the Applications whose Git changed sync, once, and every
//     one ends Synced and Healthy without a self-heal;
//   - the app-of-apps applies an Application of a sync wave only once
//     every Application of the waves before is Healthy as its health
//     check sees it, and the revisions' only once every CRD of common/
//     is established;
//   - the live objects of each Application are exactly its folder's;
//   - a sync prunes exactly what left its Application's folder, and
//     retiring a revision deletes exactly its folder's objects, through
//     the resources finalizer of its Application, never a CRD;
//   - after istiod's own webhook edits every object is Synced in the four
//     diff modes, with no ignoreDifferences;
//   - a sync of every Application again changes no object.
//
// Then a CRD that leaves Git is not pruned, and deleting the Applications
// deletes everything they deployed but the CRDs.
func TestStory(t *testing.T) {
	c := startCluster(t, true)
	ac := newController(c)
	entries, err := os.ReadDir(goldenStory)
	if err != nil {
		t.Fatal(err)
	}
	// Each Application's objects and build at the step before.
	prevIDs, prevBuild := map[string][]string{}, map[string]string{}
	crds := map[string]types.UID{}
	for _, e := range entries {
		tree := filepath.Join(goldenStory, e.Name())
		ok := t.Run(e.Name(), func(t *testing.T) {
			ac.tree = tree
			all := apps(t, tree)
			checkApps(t, all)
			gitIDs, gitBuild := map[string][]string{}, map[string]string{}
			for name, a := range all {
				objs := gitObjects(t, tree, a.folder, name, a.destNs)
				gitIDs[name], gitBuild[name] = c.ids(objs, a.destNs), render(t, objs)
			}
			// `kubectl apply -f argocd/app-of-apps.yaml`, once; it does
			// not change.
			c.apply(t, readObjects(t, filepath.Join(tree, "argocd", "app-of-apps.yaml"))[0], "kubectl")

			rec := ac.converge(t)
			t.Logf("synced %q", rec.syncs)

			// Exactly the Applications whose Git changed sync, once each.
			var changed []string
			for name := range all {
				if gitBuild[name] != prevBuild[name] {
					changed = append(changed, name)
				}
			}
			if got, want := slices.Sorted(slices.Values(rec.syncs)), slices.Sorted(slices.Values(changed)); !slices.Equal(got, want) {
				t.Errorf("syncs %q, want one of each Application whose Git changed: %q", rec.syncs, want)
			}
			for _, v := range checkWaves(all, rec.waves, len(crdsOf(t, tree, all))) {
				t.Error(v)
			}

			// The live objects are Git's.
			for name := range all {
				if got := c.ids(c.managed(name), ""); !slices.Equal(got, gitIDs[name]) {
					t.Errorf("Application %s: live objects\n%s\nwant its Git's\n%s", name, strings.Join(got, "\n"), strings.Join(gitIDs[name], "\n"))
				}
			}
			for name := range prevIDs {
				if left := c.managed(name); all[name].name == "" && len(left) > 0 {
					t.Errorf("retired Application %s left %q", name, c.ids(left, ""))
				}
			}

			// Pruned: what left an Application's folder; deleted: a
			// retired Application's objects; never a CRD.
			for name := range all {
				want := without(prevIDs[name], gitIDs[name])
				if got := slices.Sorted(slices.Values(rec.pruned[name])); !slices.Equal(got, want) {
					t.Errorf("Application %s pruned %q, want %q", name, got, want)
				}
			}
			for name, gone := range rec.deleted {
				if all[name].name != "" {
					t.Errorf("Application %s is in Git, yet its objects were deleted: %q", name, gone)
					continue
				}
				if got, want := slices.Sorted(slices.Values(gone)), prevIDs[name]; !slices.Equal(got, want) {
					t.Errorf("retiring %s deleted\n%s\nwant its objects\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
			for name := range prevIDs {
				if _, ok := rec.deleted[name]; all[name].name == "" && !ok {
					t.Errorf("retired Application %s deleted nothing", name)
				}
			}
			for uid, name := range c.crds(t) {
				crds[name] = uid
			}
			checkCRDs(t, c, crds)

			// istiod's edits, then Argo CD's diff in each mode.
			if flipped := c.istiodEdits(t); len(flipped) > 0 {
				t.Errorf("with drift guards, istiod must find no validator to flip: %q", flipped)
			}
			for m, drifts := range ac.outOfSync(t) {
				for _, d := range drifts {
					t.Errorf("%s: %s OutOfSync after istiod's edits:\n%s", m, d.id, d.diff)
				}
			}

			// A sync of every Application again changes nothing.
			before := c.versions()
			again := ac.syncAll(t)
			if got, want := slices.Sorted(slices.Values(again.syncs)), slices.Sorted(maps.Keys(all)); !slices.Equal(got, want) {
				t.Errorf("syncing again: syncs %q, want each Application once", again.syncs)
			}
			if len(again.pruned) > 0 || len(again.deleted) > 0 {
				t.Errorf("syncing again pruned %q, deleted %q", again.pruned, again.deleted)
			}
			if d := versionDiff(before, c.versions()); d != "" {
				t.Errorf("syncing again changed objects:\n%s", d)
			}
			prevIDs, prevBuild = gitIDs, gitBuild
		})
		if !ok {
			return
		}
	}

	// A CRD that leaves Git (a newer Istio drops one) stays: its sync
	// options say Prune=false.
	t.Run("crds-leave-git", func(t *testing.T) {
		ac.edit["istio-common"] = func(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
			return slices.DeleteFunc(objs, kube.IsCRD)
		}
		op := ac.syncOnce(t, "istio-common")
		delete(ac.edit, "istio-common")
		skipped := 0
		for _, r := range op.results {
			if r.ResourceKey.Kind != "CustomResourceDefinition" {
				continue
			}
			if r.Status != synccommon.ResultCodePruneSkipped {
				t.Errorf("CRD %s: %s: %s", r.ResourceKey.Name, r.Status, r.Message)
			}
			skipped++
		}
		if skipped == 0 || skipped != len(crds) {
			t.Errorf("%d of %d CRDs kept from pruning", skipped, len(crds))
		}
		checkCRDs(t, c, crds)
		// Back in Git, they are Synced as they are.
		if rec := ac.converge(t); len(rec.syncs) > 0 {
			t.Errorf("CRDs back in Git: syncs %q, want none", rec.syncs)
		}
	})

	// Deleting the app-of-apps leaves its Applications (it has no
	// finalizer); deleting each of them deletes what it deployed, but the
	// CRDs.
	t.Run("delete-applications", func(t *testing.T) {
		ac.rec = newRecord()
		ctx := context.Background()
		all := apps(t, ac.tree)
		for _, name := range append([]string{appOfApps}, slices.Sorted(maps.Keys(all))...) {
			if err := c.dyn.Resource(appGVR).Namespace(argoNamespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && name != appOfApps {
				t.Fatalf("delete Application %s: %v", name, err)
			}
		}
		for deadline := time.Now().Add(3 * time.Minute); len(ac.list(t)) > 0; time.Sleep(roundPause) {
			if time.Now().After(deadline) {
				t.Fatalf("Applications not deleted in 3 minutes: %q", ac.state(t))
			}
			ac.round(t)
		}
		time.Sleep(time.Second)
		for name := range all {
			for _, o := range c.managed(name) {
				// The app-of-apps, without the finalizer, leaves its
				// own objects (the istio-system Namespace).
				if name == appOfApps && o.GetKind() == "Namespace" {
					continue
				}
				if !kube.IsCRD(o) {
					t.Errorf("Application %s deleted, %s left", name, id(o))
				}
			}
			for _, o := range ac.rec.deleted[name] {
				if strings.HasPrefix(o, "CustomResourceDefinition.") {
					t.Errorf("Application %s deleted CRD %s", name, o)
				}
			}
		}
		checkCRDs(t, c, crds)
	})
}

// checkApps checks the Applications of a tree: the app-of-apps in no
// wave, istio-common in wave 1 and the revisions in wave 2, each child
// with the resources finalizer.
func checkApps(t *testing.T, all map[string]app) {
	t.Helper()
	for name, a := range all {
		want := 2
		switch name {
		case appOfApps:
			want = 0
		case "istio-common":
			want = 1
		}
		if a.wave != want {
			t.Errorf("Application %s is in sync wave %d, want %d", name, a.wave, want)
		}
		if name != appOfApps && !a.finalize {
			t.Errorf("Application %s lacks the resources finalizer: retiring it would leave its objects", name)
		}
	}
}

// checkWaves lists the Applications the app-of-apps applied before the
// waves before theirs were ready: an Application of the waves before not
// Healthy as the sync saw it, or (for the revisions) fewer than crds CRDs
// established.
func checkWaves(all map[string]app, steps []waveStep, crds int) []string {
	var out []string
	for _, s := range steps {
		for _, name := range s.applied {
			w := all[name].wave
			for _, other := range slices.Sorted(maps.Keys(all)) {
				if other != appOfApps && all[other].wave < w && s.health[other] != health.HealthStatusHealthy {
					out = append(out, fmt.Sprintf("Application %s (wave %d) applied while %s (wave %d) was %q", name, w, other, all[other].wave, s.health[other]))
				}
			}
			if w == 2 && s.crds < crds {
				out = append(out, fmt.Sprintf("Application %s (wave %d) applied with %d of common/'s %d CRDs established", name, w, s.crds, crds))
			}
		}
	}
	return out
}

// crdsOf are the CRDs in Git's common/.
func crdsOf(t *testing.T, tree string, all map[string]app) []*unstructured.Unstructured {
	t.Helper()
	a := all["istio-common"]
	return slices.DeleteFunc(gitObjects(t, tree, a.folder, a.name, a.destNs), func(o *unstructured.Unstructured) bool { return !kube.IsCRD(o) })
}

// crds are the live CRDs tracked to an Application, by UID.
func (c *cluster) crds(t *testing.T) map[types.UID]string {
	t.Helper()
	out := map[types.UID]string{}
	for _, o := range c.managed("istio-common") {
		if kube.IsCRD(o) {
			out[o.GetUID()] = o.GetName()
		}
	}
	return out
}

// checkCRDs checks that every CRD ever deployed is still there, the same
// object (its UID).
func checkCRDs(t *testing.T, c *cluster, want map[string]types.UID) {
	t.Helper()
	for name, uid := range want {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		got, err := c.resource(t, crd).Get(context.Background(), name, metav1.GetOptions{})
		switch {
		case err != nil:
			t.Errorf("CRD %s: %v", name, err)
		case got.GetUID() != uid:
			t.Errorf("CRD %s was deleted and created again", name)
		case got.GetDeletionTimestamp() != nil:
			t.Errorf("CRD %s is being deleted", name)
		}
	}
}

// TestApplicationHealthCheck shows what the README's Application health
// check (argocd-cm) does to the app-of-apps' sync waves, with the
// children's controller stopped so that no Application ever turns
// Healthy: with it, the app-of-apps waits at wave 1 for istio-common and
// creates no revision's Application; without it (Argo CD's default since
// 1.8), it creates them all, one wave after the other, without waiting.
func TestApplicationHealthCheck(t *testing.T) {
	tree := filepath.Join(goldenStory, "1-bootstrap")
	for _, check := range []bool{true, false} {
		name := map[bool]string{true: "with", false: "without"}[check]
		t.Run(name, func(t *testing.T) {
			c := startCluster(t, check)
			ac := newController(c)
			ac.tree = tree
			ac.paused = func(name string) bool { return name != appOfApps }
			all := apps(t, tree)
			c.apply(t, readObjects(t, filepath.Join(tree, "argocd", "app-of-apps.yaml"))[0], "kubectl")
			// Long enough for the three waves and their delays, twice over.
			deadline := time.Now().Add(2 * 3 * (waveDelay + time.Second))
			for time.Now().Before(deadline) {
				if op := ac.ops[appOfApps]; op != nil && op.phase.Completed() {
					break
				}
				ac.round(t)
				time.Sleep(roundPause)
			}
			op := ac.ops[appOfApps]
			if op == nil {
				t.Fatal("the app-of-apps never synced")
			}
			violations := checkWaves(all, ac.rec.waves, len(crdsOf(t, tree, all)))
			revision := ac.live(t, "istio-1-30")
			if check {
				want := "waiting for healthy state of argoproj.io/Application/istio-common"
				if op.phase != synccommon.OperationRunning || op.message != want {
					t.Errorf("app-of-apps' sync: %s %q, want %s %q", op.phase, op.message, synccommon.OperationRunning, want)
				}
				if revision != nil {
					t.Error("Application istio-1-30 created before istio-common is Healthy")
				}
				for _, v := range violations {
					t.Error(v)
				}
				return
			}
			if op.phase != synccommon.OperationSucceeded {
				t.Errorf("app-of-apps' sync: %s %q, want it done without waiting", op.phase, op.message)
			}
			if revision == nil {
				t.Error("Application istio-1-30 not created")
			}
			if common := ac.live(t, "istio-common"); common == nil || common.Status.Health.Status != "" {
				t.Errorf("istio-common must exist, never reconciled: %+v", common)
			}
			if len(violations) == 0 {
				t.Error("without the health check, the waves must not wait for istio-common")
			}
			t.Logf("without the health check: %s", strings.Join(violations, "; "))
		})
	}
}

// TestDriftGuardsOff: with webhooks.driftGuards false, the validators
// istiod flips to failurePolicy Fail are OutOfSync in every diff mode
// (Git says Ignore), and Argo CD's self-heal flips them back: the fight
// the guards prevent.
func TestDriftGuardsOff(t *testing.T) {
	c := startCluster(t, true)
	tree := t.TempDir()
	first := filepath.Join(goldenStory, "1-bootstrap")
	cfg, err := os.ReadFile(filepath.Join(first, "istio-gitops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("\n  argocd:\n"), []byte("\n  webhooks: {driftGuards: false}\n  argocd:\n"), 1)
	if !bytes.Contains(cfg, []byte("driftGuards: false")) {
		t.Fatalf("no spec.argocd in %s", first)
	}
	write(t, filepath.Join(tree, "istio-gitops.yaml"), cfg)
	for src, dst := range map[string]string{
		filepath.Join(first, "istio-system.yaml"):                  "istio-system.yaml",
		filepath.Join(repo, "testdata/istioctl/1-30/default.yaml"): "1-30/istioctl-output.yaml",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(tree, dst), b)
	}
	if out, err := exec.Command(istioGitOps, "run", tree).CombinedOutput(); err != nil {
		t.Fatalf("istio-gitops run: %v\n%s", err, out)
	}
	ac := newController(c)
	ac.tree = tree
	c.apply(t, readObjects(t, filepath.Join(tree, "argocd", "app-of-apps.yaml"))[0], "kubectl")
	ac.converge(t)

	flipped := c.istiodEdits(t)
	if len(flipped) == 0 {
		t.Fatal("istiod found no validator with failurePolicy Ignore to flip")
	}
	for m, drifts := range ac.outOfSync(t) {
		for _, v := range flipped {
			i := slices.IndexFunc(drifts, func(d drift) bool {
				return d.id == "ValidatingWebhookConfiguration.admissionregistration.k8s.io/"+v
			})
			switch {
			case i < 0:
				t.Errorf("%s: validator %s must be OutOfSync (Git says failurePolicy Ignore, istiod wrote Fail)", m, v)
			case !hasLine(drifts[i].diff, "- ", `"failurePolicy": "Fail"`) || !hasLine(drifts[i].diff, "+ ", `"failurePolicy": "Ignore"`):
				t.Errorf("%s: validator %s: want failurePolicy Fail -> Ignore, diff:\n%s", m, v, drifts[i].diff)
			}
		}
		for _, d := range drifts {
			t.Logf("%s: %s OutOfSync:\n%s", m, d.id, d.diff)
		}
	}

	// Self-heal flips them back.
	rec := ac.converge(t)
	if !slices.ContainsFunc(rec.syncs, func(s string) bool { return strings.HasSuffix(s, "(self-heal)") }) {
		t.Errorf("no self-heal: %q", rec.syncs)
	}
	for _, v := range flipped {
		vwc := &unstructured.Unstructured{}
		vwc.SetAPIVersion("admissionregistration.k8s.io/v1")
		vwc.SetKind("ValidatingWebhookConfiguration")
		live, err := c.resource(t, vwc).Get(context.Background(), v, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		whs, _, _ := unstructured.NestedSlice(live.Object, "webhooks")
		for _, w := range whs {
			if p := w.(map[string]any)["failurePolicy"]; p != "Ignore" {
				t.Errorf("validator %s after self-heal: failurePolicy %v, want Ignore", v, p)
			}
		}
	}
}

// hasLine says whether a lineDiff has a line of side ("- " or "+ ")
// holding s.
func hasLine(diff, side, s string) bool {
	for _, l := range strings.Split(diff, "\n") {
		if strings.HasPrefix(l, side) && strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// render is objects as JSON, to compare two builds.
func render(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	b, err := json.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// without is a minus b, both sorted.
func without(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); !found {
			out = append(out, s)
		}
	}
	return out
}

// versionDiff lists the objects whose resourceVersion changed, came or
// went.
func versionDiff(before, after map[string]string) string {
	var out []string
	for k, v := range before {
		if after[k] != v {
			out = append(out, k+": "+v+" -> "+after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k+": new")
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
