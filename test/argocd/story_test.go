package argocd_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// goldenStory is the Argo CD story's trees, one folder per step.
var goldenStory = filepath.Join(repo, "testdata/golden/argocd")

// TestStory syncs every step of the Argo CD story as Argo CD would, on
// one cluster: the app-of-apps creates the Applications in their waves,
// common/ (the CRDs) synced before any revision; after istiod's own
// webhook edits every object is Synced in the four diff modes, with no
// ignoreDifferences; a second pass changes no object; retiring 1-30
// deletes exactly the objects of its folder, never a CRD; and common/'s
// CRDs survive a sync that no longer lists them.
func TestStory(t *testing.T) {
	c := startCluster(t)
	entries, err := os.ReadDir(goldenStory)
	if err != nil {
		t.Fatal(err)
	}
	// Each Application's objects in Git at the step before, by name.
	prev := map[string][]string{}
	for _, e := range entries {
		tree := filepath.Join(goldenStory, e.Name())
		ok := t.Run(e.Name(), func(t *testing.T) {
			all := apps(t, tree)
			now := map[string][]string{}
			for name, a := range all {
				now[name] = ids(targets(t, tree, a))
			}
			d := c.deploy(t, tree)
			t.Logf("synced %q", d.order)

			// Waves: the app-of-apps' Namespace, then common/, then the
			// revisions, each wave once the one before is healthy.
			common := slices.Index(d.order, "istio-common")
			for i, name := range d.order {
				if name != "istio-common" && all[name].wave != "2" || name == "istio-common" && all[name].wave != "1" {
					t.Errorf("Application %s is in sync wave %q", name, all[name].wave)
				}
				if strings.HasPrefix(name, "istio-1-") && i < common {
					t.Errorf("Application %s synced before istio-common: %q", name, d.order)
				}
			}
			for name, a := range all {
				if name != appOfApps && !a.finalize {
					t.Errorf("Application %s lacks the resources finalizer: retiring it would leave its objects", name)
				}
			}

			// Retiring a revision deletes exactly its objects, never a CRD.
			for name := range prev {
				if _, kept := all[name]; kept {
					continue
				}
				if got, want := d.deleted[name], prev[name]; !slices.Equal(got, want) {
					t.Errorf("retiring %s deleted:\n%s\nwant its objects:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
			for name, gone := range d.deleted {
				if _, retired := prev[name]; !retired || all[name].name != "" {
					t.Errorf("Application %s was deleted: %q", name, gone)
				}
				for _, o := range gone {
					if strings.HasPrefix(o, "CustomResourceDefinition.") {
						t.Errorf("%s deleted a CRD: %s", name, o)
					}
				}
			}

			// istiod's edits, then Argo CD's diff in each mode.
			if flipped := c.istiodEdits(t); len(flipped) > 0 {
				t.Errorf("with drift guards, istiod must find no validator to flip: %q", flipped)
			}
			for m, oos := range c.outOfSync(t, tree) {
				if len(oos) > 0 {
					t.Errorf("%s: OutOfSync after istiod's edits:\n%s", m, strings.Join(oos, "\n"))
				}
			}

			// A second pass is a no-op, and keeps istiod's edits.
			before := c.versions(t)
			if again := c.deploy(t, tree); len(again.deleted) > 0 {
				t.Errorf("a second pass deleted %v", again.deleted)
			}
			if d := versionDiff(before, c.versions(t)); d != "" {
				t.Errorf("a second pass changed objects:\n%s", d)
			}
			prev = now
		})
		if !ok {
			return
		}
	}

	// The CRDs survive a sync of common/ whose Git no longer lists them
	// (Prune=false), and come back under management with the next one.
	t.Run("crds-not-pruned", func(t *testing.T) {
		last := filepath.Join(goldenStory, entries[len(entries)-1].Name())
		a := apps(t, last)["istio-common"]
		var noCRDs []*unstructured.Unstructured
		crds := 0
		for _, o := range targets(t, last, a) {
			if o.GetKind() == "CustomResourceDefinition" {
				crds++
				continue
			}
			noCRDs = append(noCRDs, o)
		}
		res, err := c.sync(context.Background(), last, a, noCRDs)
		if err := syncError(res, err); err != nil {
			t.Fatal(err)
		}
		skipped := 0
		for _, r := range res {
			if r.ResourceKey.Kind == "CustomResourceDefinition" {
				if r.Status != synccommon.ResultCodePruneSkipped {
					t.Errorf("CRD %s: %s %s", r.ResourceKey.Name, r.Status, r.Message)
				}
				skipped++
			}
		}
		if crds == 0 || skipped != crds {
			t.Errorf("%d of %d CRDs kept from pruning", skipped, crds)
		}
		c.deploy(t, last)
	})
}

// TestDriftGuardsOff: with webhooks.driftGuards false, the validators
// istiod flips to failurePolicy Fail are OutOfSync in every diff mode
// (Git says Ignore): Argo CD would flip them back on every sync.
func TestDriftGuardsOff(t *testing.T) {
	c := startCluster(t)
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
	c.deploy(t, tree)
	flipped := c.istiodEdits(t)
	if len(flipped) == 0 {
		t.Fatal("istiod found no validator with failurePolicy Ignore to flip")
	}
	for m, oos := range c.outOfSync(t, tree) {
		for _, v := range flipped {
			if !slices.Contains(oos, "ValidatingWebhookConfiguration.admissionregistration.k8s.io/"+v) {
				t.Errorf("%s: validator %s must be OutOfSync (Git says failurePolicy Ignore, istiod wrote Fail); OutOfSync: %q", m, v, oos)
			}
		}
	}
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

func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, id(o))
	}
	slices.Sort(out)
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
