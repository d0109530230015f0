package pipeline_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/istio-gitops/istio-gitops/internal/buildtest"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// storyConfig is the IstioGitOps of one step of an upgrade.
func storyConfig(revisions []string, active string, tags map[string]string) string {
	var b strings.Builder
	b.WriteString(treetest.ConfigHead)
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

// TestStories walks each story's tree through its steps on the real
// fixtures. After each step: the golden tree, a second run changes
// nothing (and says nothing moved), every folder builds with kustomize and
// Flux, Flux Kustomizations point at folders that exist, and the step's
// own checks.
func TestStories(t *testing.T) {
	t.Parallel()
	stories := treetest.Stories(t, "../../testdata")
	for _, name := range slices.Sorted(maps.Keys(stories)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runStory(t, name, stories[name])
		})
	}
}

func runStory(t *testing.T, name string, st treetest.Story) {
	dir := t.TempDir()
	trees := map[string]map[string][]byte{}
	var prev map[string][]byte
	for _, s := range st.Steps {
		ok := t.Run(s.Name, func(t *testing.T) {
			s.Lay(t, dir, "../../testdata", nil)
			results := run(t, dir)
			tree := treetest.Files(t, dir)
			trees[s.Name] = tree
			treetest.Golden(t, dir, filepath.Join(golden(name), s.Name))
			said := resultLines(results)
			for _, want := range s.Results {
				if !slices.ContainsFunc(said, func(l string) bool { return strings.Contains(l, want) }) {
					t.Errorf("the results must say %q:\n%s", want, strings.Join(said, "\n"))
				}
			}
			for _, not := range s.NoResults {
				if slices.ContainsFunc(said, func(l string) bool { return strings.Contains(l, not) }) {
					t.Errorf("the results must not say %q:\n%s", not, strings.Join(said, "\n"))
				}
			}
			again := run(t, dir)
			if d := treetest.Diff(treetest.Files(t, dir), tree); d != "" {
				t.Errorf("second run changed the tree:\n%s", d)
			}
			for _, l := range resultLines(again) {
				if strings.Contains(l, " -> ") {
					t.Errorf("a second run said something moved: %s", l)
				}
			}
			if s.DNS != nil {
				checkDNS(t, tree, s.DNS)
			}
			buildtest.BuildAll(t, dir)
			if _, err := os.Stat(filepath.Join(dir, "flux")); err == nil {
				checkFluxPaths(t, dir)
			}
			if _, err := os.Stat(filepath.Join(dir, "argocd")); err == nil {
				checkArgoCDPaths(t, dir)
			}
			if s.SameAs != "" {
				if d := treetest.Diff(tree, trees[s.SameAs]); d != "" {
					t.Errorf("tree differs from step %s:\n%s", s.SameAs, d)
				}
			}
			changed := changedFiles(prev, tree)
			if s.Changes != nil {
				for _, f := range changed {
					if !matchAny(s.Changes, f) {
						t.Errorf("%s changed: the step may change only %q", f, s.Changes)
					}
				}
			}
			for _, f := range changed {
				if matchAny(s.Unchanged, f) {
					t.Errorf("%s changed: the step must keep it byte for byte", f)
				}
			}
			for _, f := range treetest.Names(tree) {
				if matchAny(s.Absent, f) {
					t.Errorf("%s must not be in the tree after this step", f)
				}
			}
			t.Logf("changed: %q", changed)
			prev = tree
		})
		if !ok {
			return
		}
	}
}

// checkDNS resolves each name of want through the hosts the tree's
// Ingresses publish (external-dns.alpha.kubernetes.io/hostname with the
// hostname source annotation-only): the name itself, else a wildcard one
// label up. Each must lead to exactly the revision want names, and no
// name may be published from two revisions' Ingresses.
func checkDNS(t *testing.T, tree map[string][]byte, want map[string]string) {
	t.Helper()
	published := map[string][]string{}
	for _, f := range treetest.Names(tree) {
		rev, rest, _ := strings.Cut(f, "/")
		if !strings.HasPrefix(rest, "generated/ingress/") {
			continue
		}
		objs, err := (&kio.ByteReader{Reader: bytes.NewReader(tree[f]), OmitReaderAnnotations: true}).Read()
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %v", f, err)
		}
		hosts, ok := gateway.PublishedHosts(objs[0])
		if !ok {
			t.Errorf("%s: external-dns must publish only its hostname annotation (ingress-hostname-source: annotation-only)", f)
		}
		for _, h := range hosts {
			published[h] = append(published[h], rev)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(published)) {
		if len(published[h]) != 1 {
			t.Errorf("%s is published from the Ingresses of %q: it must be one", h, published[h])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		revs, ok := published[name]
		if _, rest, found := strings.Cut(name, "."); !ok && found {
			revs = published["*."+rest]
		}
		if !slices.Equal(revs, []string{want[name]}) {
			t.Errorf("%s resolves to the load balancers of %q, want %s's", name, revs, want[name])
		}
	}
}

// matchAny reports whether p matches one of globs; "**" matches any
// number of folders.
func matchAny(globs []string, p string) bool {
	for _, g := range globs {
		if prefix, ok := strings.CutSuffix(g, "/**"); ok && strings.HasPrefix(p, prefix+"/") {
			return true
		}
		if ok, _ := path.Match(g, p); ok {
			return true
		}
	}
	return false
}

func resultLines(results framework.Results) []string {
	var out []string
	for _, r := range results {
		l := string(r.Severity) + " " + r.Message
		if r.File != nil {
			l = string(r.Severity) + " " + r.File.Path + ": " + r.Message
		}
		out = append(out, l)
	}
	return out
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

// checkArgoCDPaths: argocd/'s kustomization lists every Application but
// the app-of-apps, which deploys the root; each Application's path is a
// folder of the tree with a kustomization.yaml; common/ syncs in an
// earlier wave than every revision.
func checkArgoCDPaths(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "argocd", "kustomization.yaml"))
	if err != nil {
		t.Fatalf("argocd/: %v", err)
	}
	waves := map[string]string{}
	for _, name := range treetest.Names(treetest.Files(t, filepath.Join(dir, "argocd"))) {
		if name == "kustomization.yaml" {
			continue
		}
		if listed := bytes.Contains(b, []byte("- "+name+"\n")); listed != (name != "app-of-apps.yaml") {
			t.Errorf("argocd/kustomization.yaml lists %s: %v\n%s", name, listed, b)
		}
		f, err := os.Open(filepath.Join(dir, "argocd", name))
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := (&kio.ByteReader{Reader: f, OmitReaderAnnotations: true}).Read()
		f.Close()
		if err != nil || len(nodes) != 1 || nodes[0].GetKind() != "Application" {
			t.Fatalf("argocd/%s: want one Application: %v", name, err)
		}
		p, _ := nodes[0].GetString("spec.source.path")
		rel, ok := strings.CutPrefix(p+"/", "clusters/prod/istio/")
		if !ok {
			t.Errorf("argocd/%s: path %q is not in the tree", name, p)
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, rel, "kustomization.yaml")); err != nil {
			t.Errorf("argocd/%s: path %q has no kustomization.yaml in the tree", name, p)
		}
		waves[rel] = nodes[0].GetAnnotations()["argocd.argoproj.io/sync-wave"]
	}
	for rel, w := range waves {
		switch {
		case rel == "":
		case rel == "common/" && w != "1", rel != "common/" && w != "2":
			t.Errorf("the Application of %s is in sync wave %q: common/ must sync in wave 1, the revisions in 2", rel, w)
		}
	}
	if len(waves) < 3 {
		t.Errorf("argocd/ holds %d Applications", len(waves))
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
