package pipeline_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/buildtest"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/istioctl"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

const fixtures = "../../testdata/istioctl"

var processors = krm.Processors{config.Kind: pipeline.Processor{}}

// goldenCase is one step of a tree's life: start from another case's
// golden tree (or nothing), lay the case's input over it, drop in fresh
// istioctl output, run.
type goldenCase struct {
	name string
	from string
	// sources maps a revision to the istioctl fixture it is given.
	sources map[string]string
}

var goldenCases = []goldenCase{
	{name: "bootstrap", sources: map[string]string{"1-30": "1-30/default.yaml"}},
	{name: "add-1-31", from: "bootstrap", sources: map[string]string{"1-31": "1-31/default.yaml"}},
	{name: "demo", sources: map[string]string{"1-30": "1-30/demo.yaml", "1-31": "1-31/demo.yaml"}},
	// Gateways (gateways_test.go): blue/green with stable Services and an
	// Ingress per revision; two custom ingress gateways; in place.
	{name: "gateways", sources: map[string]string{"1-30": "1-30/demo.yaml", "1-31": "1-31/demo.yaml"}},
	{name: "gateways-custom", sources: map[string]string{"1-30": customFixture("1-30"), "1-31": customFixture("1-31")}},
	{name: "gateways-in-place", sources: map[string]string{"1-30": "1-30/demo.yaml", "1-31": "1-31/demo.yaml"}},
}

func golden(name string) string { return filepath.Join("../../testdata/golden", name) }

// setup lays out a case's input tree in a temporary folder.
func setup(t testing.TB, c goldenCase) string {
	t.Helper()
	dir := t.TempDir()
	if c.from != "" {
		treetest.Copy(t, filepath.Join(golden(c.from), "want"), dir)
	}
	treetest.Copy(t, filepath.Join(golden(c.name), "input"), dir)
	for _, rev := range config.SortedKeys(c.sources) {
		treetest.CopyFile(t, filepath.Join(fixtures, c.sources[rev]), filepath.Join(dir, rev, config.SourceFile))
	}
	return dir
}

func run(t testing.TB, dir string) framework.Results {
	t.Helper()
	results, err := processors.RunDir(dir)
	if err != nil {
		t.Fatalf("run %s: %v", dir, err)
	}
	return results
}

// runFails runs on dir, wants the run to fail with a message holding each
// of want, and the tree left as it was, byte for byte.
func runFails(t testing.TB, dir string, want ...string) error {
	t.Helper()
	before := treetest.Files(t, dir)
	_, err := processors.RunDir(dir)
	if err == nil {
		t.Fatal("the run succeeded")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\nmust contain %q", err, w)
		}
	}
	if d := treetest.Diff(treetest.Files(t, dir), before); d != "" {
		t.Errorf("a failed run wrote:\n%s", d)
	}
	t.Logf("the run failed as it must: %v", err)
	return err
}

// TestGolden writes each case's tree from the real istioctl fixtures and
// checks it byte for byte, that a second run changes nothing, that every
// source object is written once or reported, and that every folder builds
// with kustomize and with Flux.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := setup(t, c)
			sources := sourceObjects(t, dir, c)
			results := run(t, dir)
			treetest.Golden(t, dir, filepath.Join(golden(c.name), "want"))

			first := treetest.Files(t, dir)
			run(t, dir)
			if d := treetest.Diff(treetest.Files(t, dir), first); d != "" {
				t.Errorf("second run changed the tree:\n%s", d)
			}
			checkConservation(t, dir, sources, results)
			counts := buildtest.BuildAll(t, dir)
			// The root deploys every object the function deploys, and the
			// user's istio-system Namespace.
			if want := deployedObjects(t, first) + 1; counts["."] != want {
				t.Errorf("root renders %d objects, want %d: %v", counts["."], want, counts)
			}
		})
	}
}

// deployedObjects counts the objects of the files the function writes to
// be deployed: common/'s and the revisions' generated files, records and
// kept node agents apart.
func deployedObjects(t *testing.T, files map[string][]byte) int {
	t.Helper()
	n := 0
	for _, f := range treetest.Names(files) {
		parts := strings.Split(f, "/")
		deployed := len(parts) >= 3 && (parts[0] == "common" || parts[1] == "generated") &&
			parts[len(parts)-1] != "state.yaml" && parts[2] != "applied-patches" && parts[2] != "node-agents"
		if deployed {
			n += bytes.Count(files[f], []byte("\nkind: ")) + bytes.Count(files[f][:min(len(files[f]), 5)], []byte("kind:"))
		}
	}
	return n
}

// TestAddRevisionKeepsOlderFolder: adding 1-31 must not touch a byte of
// 1-30's folder, and common/ must follow 1-31.
func TestAddRevisionKeepsOlderFolder(t *testing.T) {
	t.Parallel()
	before := treetest.Files(t, filepath.Join(golden("bootstrap"), "want"))
	after := treetest.Files(t, filepath.Join(golden("add-1-31"), "want"))
	n := 0
	for _, name := range treetest.Names(before) {
		if !strings.HasPrefix(name, "1-30/") {
			continue
		}
		n++
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s changed when 1-31 was added", name)
		}
	}
	if n < 10 {
		t.Fatalf("only %d files in 1-30/", n)
	}
	crd := "common/customresourcedefinition/virtualservices.networking.istio.io.yaml"
	if bytes.Equal(before[crd], after[crd]) {
		t.Errorf("%s did not follow 1-31", crd)
	}
	want := readObject(t, filepath.Join(fixtures, "1-31/default.yaml"), "CustomResourceDefinition", "virtualservices.networking.istio.io")
	if got := string(after[crd]); got != want {
		t.Errorf("%s is not 1-31's CRD:\n%s", crd, got)
	}
}

func readObject(t testing.TB, file, kind, name string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(b), OmitReaderAnnotations: true}).Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.GetKind() == kind && n.GetName() == name {
			if err := pipeline.KeepCRD(n); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := (kio.ByteWriter{Writer: &out}).Write([]*yaml.RNode{n}); err != nil {
				t.Fatal(err)
			}
			return out.String()
		}
	}
	t.Fatalf("%s has no %s %s", file, kind, name)
	return ""
}

// sourceObjects lists the identities of a case's fresh istioctl output.
func sourceObjects(t testing.TB, dir string, c goldenCase) []string {
	t.Helper()
	var ids []string
	for _, rev := range config.SortedKeys(c.sources) {
		b, err := os.ReadFile(filepath.Join(dir, rev, config.SourceFile))
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(b)}).Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			ids = append(ids, rev+" "+istioctl.Identity(n))
		}
	}
	return ids
}

// checkConservation: every source object is in exactly one written file
// (under its revision's folder or common/) or in a reported drop.
func checkConservation(t testing.TB, dir string, sources []string, results framework.Results) {
	t.Helper()
	written := map[string][]string{}
	for _, name := range treetest.Names(treetest.Files(t, dir)) {
		if !strings.Contains(name, "/") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(b)}).Read()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range nodes {
			written[istioctl.Identity(n)] = append(written[istioctl.Identity(n)], name)
		}
	}
	dropped := map[string]int{}
	for _, r := range results {
		if r.Tags[pipeline.DroppedTag] == "" {
			continue
		}
		ref := r.ResourceRef
		node := yaml.NewMapRNode(nil)
		node.SetApiVersion(ref.APIVersion)
		node.SetKind(ref.Kind)
		if err := node.SetName(ref.Name); err != nil {
			t.Fatal(err)
		}
		if err := node.SetNamespace(ref.Namespace); err != nil {
			t.Fatal(err)
		}
		dropped[r.Tags[pipeline.DroppedTag]+" "+istioctl.Identity(node)]++
	}
	for _, s := range sources {
		rev, id, _ := strings.Cut(s, " ")
		files := written[id]
		if renamed := written[id+"-"+rev]; len(renamed) > 0 {
			// Gateways are renamed <name>-<rev>.
			files = renamed
		}
		inRev := slices.ContainsFunc(files, func(f string) bool {
			return strings.HasPrefix(f, rev+"/generated/") || strings.HasPrefix(f, "common/")
		})
		switch {
		case dropped[s] == 1 && !slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(f, rev+"/") }):
		case dropped[s] == 0 && inRev && len(files) == 1:
		default:
			t.Errorf("%s: written to %q, reported dropped %d times", s, files, dropped[s])
		}
	}
	if len(sources) == 0 {
		t.Fatal("no source objects")
	}
	t.Logf("%d source objects accounted for", len(sources))
}
