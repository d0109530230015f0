package pipeline_test

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// storyConfig is the IstioGitOps of one step of an upgrade.
func storyConfig(revisions []string, active string, tags map[string]string) string {
	var b strings.Builder
	b.WriteString(`apiVersion: fn.istio-gitops.dev/v1alpha1
kind: IstioGitOps
metadata:
  name: prod
  annotations:
    config.kubernetes.io/local-config: "true"
spec:
  revisions:
`)
	for _, r := range revisions {
		fmt.Fprintf(&b, "  - name: %s\n", r)
	}
	fmt.Fprintf(&b, "  activeRevision: %s\n  tags:\n", active)
	for _, t := range []string{"prod-canary", "prod-stable"} {
		if rev, ok := tags[t]; ok {
			fmt.Fprintf(&b, "    %s: %s\n", t, rev)
		}
	}
	fmt.Fprintf(&b, `  gateways:
    live: %s
    stableServices: true
  flux:
    path: ./clusters/prod/istio
    sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
    interval: 10m
`, active)
	return b.String()
}

var storySteps = []struct {
	name   string
	config string
	// source is a revision given fresh istioctl output at this step.
	source string
	// sameAs names an earlier step whose tree this one must equal.
	sameAs string
}{
	{name: "1-bootstrap", source: "1-30",
		config: storyConfig([]string{"1-30"}, "1-30", map[string]string{"prod-stable": "1-30"})},
	{name: "2-add-1-31", source: "1-31",
		config: storyConfig([]string{"1-30", "1-31"}, "1-30", map[string]string{"prod-stable": "1-30", "prod-canary": "1-31"})},
	{name: "3-promote",
		config: storyConfig([]string{"1-30", "1-31"}, "1-31", map[string]string{"prod-stable": "1-31", "prod-canary": "1-31"})},
	{name: "4-roll-back", sameAs: "2-add-1-31",
		config: storyConfig([]string{"1-30", "1-31"}, "1-30", map[string]string{"prod-stable": "1-30", "prod-canary": "1-31"})},
	{name: "5-promote-again", sameAs: "3-promote",
		config: storyConfig([]string{"1-30", "1-31"}, "1-31", map[string]string{"prod-stable": "1-31", "prod-canary": "1-31"})},
	{name: "6-retire-1-30",
		config: storyConfig([]string{"1-31"}, "1-31", map[string]string{"prod-stable": "1-31", "prod-canary": "1-31"})},
}

// TestStory walks one tree through a whole upgrade on the real fixtures:
// bootstrap 1-30, add 1-31, promote it, roll back, promote again, retire
// 1-30. After each step: the golden tree, a second run changes nothing,
// every folder builds with kustomize and Flux, the Flux Kustomizations
// point at folders that exist; promotion and rollback touch only the
// objects that point at a revision.
func TestStory(t *testing.T) {
	dir := t.TempDir()
	trees := map[string]map[string][]byte{}
	var prev map[string][]byte
	for _, s := range storySteps {
		t.Run(s.name, func(t *testing.T) {
			treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(s.config))
			if s.source != "" {
				treetest.CopyFile(t, filepath.Join(fixtures, s.source, "default.yaml"), filepath.Join(dir, s.source, "istioctl-output.yaml"))
			}
			run(t, dir)
			tree := treetest.Files(t, dir)
			trees[s.name] = tree
			treetest.Golden(t, dir, filepath.Join(golden("story"), s.name))
			run(t, dir)
			if d := treetest.Diff(treetest.Files(t, dir), tree); d != "" {
				t.Errorf("second run changed the tree:\n%s", d)
			}
			treetest.BuildAll(t, dir)
			checkFluxPaths(t, dir)
			if s.sameAs != "" {
				if d := treetest.Diff(tree, trees[s.sameAs]); d != "" {
					t.Errorf("tree differs from step %s:\n%s", s.sameAs, d)
				}
			}
			if strings.Contains(s.name, "promote") || strings.Contains(s.name, "roll-back") {
				checkPointersOnly(t, prev, tree)
			}
			if s.name == "6-retire-1-30" {
				for name := range tree {
					if strings.HasPrefix(name, "1-30/") {
						t.Errorf("%s survived retirement", name)
					}
				}
				if strings.Contains(string(tree["kustomization.yaml"]), "1-30") {
					t.Errorf("root kustomization still lists 1-30:\n%s", tree["kustomization.yaml"])
				}
			}
			prev = tree
		})
	}
}

// checkPointersOnly: a promotion or rollback changes only the config, the
// objects rendered from it in common/ (istiod Service, default validator,
// tags, stable gateway Services) and nothing in a revision folder.
func checkPointersOnly(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	var changed []string
	for _, n := range treetest.Names(after) {
		if !bytes.Equal(before[n], after[n]) {
			changed = append(changed, n)
		}
	}
	for _, n := range treetest.Names(before) {
		if _, ok := after[n]; !ok {
			changed = append(changed, n)
		}
	}
	if len(changed) < 3 {
		t.Errorf("only %q changed", changed)
	}
	for _, n := range changed {
		if n == "istio-gitops.yaml" || n == "common/state.yaml" {
			continue
		}
		if !strings.HasPrefix(n, "common/") || !bytes.Contains(after[n], []byte("fn.istio-gitops.dev/rendered-from")) {
			t.Errorf("%s changed: a promotion must change only the pointer objects", n)
		}
	}
	t.Logf("changed: %q", changed)
}

// checkFluxPaths: each Flux Kustomization's path is a folder of the tree
// with a kustomization.yaml, and dependsOn has no cycle and no dangling
// name.
func checkFluxPaths(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "flux", "kustomization.yaml"))
	if err != nil {
		t.Fatalf("flux/: %v", err)
	}
	if !bytes.Contains(b, []byte("common.yaml")) {
		t.Errorf("flux/kustomization.yaml does not list common.yaml:\n%s", b)
	}
	deps := map[string][]string{}
	for _, name := range treetest.Names(treetest.Files(t, filepath.Join(dir, "flux"))) {
		if name == "kustomization.yaml" {
			continue
		}
		f, err := os.Open(filepath.Join(dir, "flux", name))
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := (&kio.ByteReader{Reader: f, OmitReaderAnnotations: true}).Read()
		f.Close()
		if err != nil || len(nodes) != 1 {
			t.Fatalf("flux/%s: %v", name, err)
		}
		k := nodes[0]
		p, _ := k.GetString("spec.path")
		rel, ok := strings.CutPrefix(path.Clean(p), "clusters/prod/istio/")
		if !ok {
			t.Errorf("flux/%s: path %q is not in the tree", name, p)
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, rel, "kustomization.yaml")); err != nil {
			t.Errorf("flux/%s: path %q has no kustomization.yaml in the tree", name, p)
		}
		ds, _ := k.GetSlice("spec.dependsOn")
		for _, d := range ds {
			deps[k.GetName()] = append(deps[k.GetName()], d.(map[string]any)["name"].(string))
		}
		if _, ok := deps[k.GetName()]; !ok {
			deps[k.GetName()] = nil
		}
	}
	// Depth-first: a name on the current path seen again is a cycle.
	state := map[string]int{}
	var visit func(n string, trail []string)
	visit = func(n string, trail []string) {
		if _, ok := deps[n]; !ok {
			t.Errorf("dependsOn %q names no Kustomization of flux/", n)
			return
		}
		switch state[n] {
		case 1:
			t.Errorf("dependsOn cycle: %q", append(trail, n))
			return
		case 2:
			return
		}
		state[n] = 1
		for _, d := range deps[n] {
			visit(d, append(slices.Clone(trail), n))
		}
		state[n] = 2
	}
	for _, n := range sortedKeys(deps) {
		visit(n, nil)
	}
	if len(deps) < 2 {
		t.Errorf("flux/ holds %d Kustomizations", len(deps))
	}
}

func sortedKeys(m map[string][]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
