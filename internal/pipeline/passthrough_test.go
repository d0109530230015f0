package pipeline_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/buildtest"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// userFiles are files the function does not own, in layouts kyaml's writer
// would change (wide sequences, quoting, comments): they must come out byte
// for byte.
var userFiles = map[string]string{
	"Kptfile": `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: mesh
  annotations:
    config.kubernetes.io/local-config: "true"
info:
  description: "the prod mesh"
`,
	"istio-system.yaml": `# kept by the platform team
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
  labels:
    topology.istio.io/network: "net1"   # multi-network
`,
	"common/peer-authentication.yaml": `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`,
	"1-30/ingress.yaml": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: public
  namespace: istio-system
spec:
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: istio-ingressgateway-1-30, port: {number: 80}}
`,
	"1-30/notes.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: upgrade-notes
  annotations:
    config.kubernetes.io/local-config: "true"
data:
  notes: |
    remember the CNI
`,
	"docs/example.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated
data: {a: "1"}
`,
}

// TestUserFilesPassThrough: everything the function does not own (Kptfile,
// the config, user files in the root, common/ and a revision folder,
// local-config objects, unrelated folders) passes through byte for byte;
// deployable ones are listed by their folder's kustomization, the rest not.
func TestUserFilesPassThrough(t *testing.T) {
	t.Parallel()
	dir := setup(t, goldenCases[0])
	for name, content := range userFiles {
		treetest.Write(t, filepath.Join(dir, name), []byte(content))
	}
	before := treetest.Files(t, dir)
	run(t, dir)
	after := treetest.Files(t, dir)
	for _, name := range append(treetest.Names(map[string][]byte{"istio-gitops.yaml": nil}), keys(userFiles)...) {
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s changed:\n%s", name, after[name])
		}
	}
	listed := func(k, entry string) bool {
		return strings.Contains(string(after[k]), "\n- "+entry+"\n")
	}
	for _, c := range []struct {
		kustomization, entry string
		want                 bool
	}{
		{"kustomization.yaml", "istio-system.yaml", true},
		{"kustomization.yaml", "Kptfile", false},
		{"kustomization.yaml", "istio-gitops.yaml", false},
		{"kustomization.yaml", "docs/example.yaml", false},
		{"common/kustomization.yaml", "peer-authentication.yaml", true},
		{"1-30/kustomization.yaml", "ingress.yaml", true},
		{"1-30/kustomization.yaml", "notes.yaml", false},
		{"1-30/kustomization.yaml", "istio-operator.yaml", false},
	} {
		if got := listed(c.kustomization, c.entry); got != c.want {
			t.Errorf("%s lists %s: %v, want %v", c.kustomization, c.entry, got, c.want)
		}
	}
	buildtest.BuildAll(t, dir)
	run(t, dir)
	if d := treetest.Diff(treetest.Files(t, dir), after); d != "" {
		t.Errorf("second run changed the tree:\n%s", d)
	}
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// TestNotObjects: a YAML file of the tree that is no Kubernetes object
// (no apiVersion or kind, such as Helm values) is not listed, with a
// warning; an item given without a file (no path annotation) passes
// through untouched, with a warning, and is listed nowhere.
func TestNotObjects(t *testing.T) {
	t.Parallel()
	dir := setup(t, goldenCase{name: "bootstrap", sources: map[string]string{"1-30": "1-30/default.yaml"}})
	treetest.Write(t, filepath.Join(dir, "values.yaml"), []byte("global:\n  hub: docker.io/istio\n"))
	results := run(t, dir)
	warnings := strings.Join(messages(results, framework.Warning), "\n")
	if !strings.Contains(warnings, "values.yaml: not listed in a kustomization: it is not a Kubernetes object") {
		t.Errorf("no warning for values.yaml:\n%s", warnings)
	}
	if k := treetest.Files(t, dir)["kustomization.yaml"]; bytes.Contains(k, []byte("values.yaml")) {
		t.Errorf("values.yaml listed:\n%s", k)
	}
	buildtest.BuildAll(t, dir)

	items, err := disk.ReadObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	stray := yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n")
	rl := &framework.ResourceList{Items: append(items, stray)}
	if err := processors.Process(rl); err != nil {
		t.Fatal(err)
	}
	var kept bool
	for _, it := range rl.Items {
		if it.GetName() == "stray" {
			kept = true
			if p := object.Path(it); p != "" {
				t.Errorf("the item without a file was placed in %s", p)
			}
		}
		if object.Path(it) == "kustomization.yaml" && strings.Contains(it.MustString(), "- .") {
			t.Errorf("the root kustomization lists the root itself:\n%s", it.MustString())
		}
	}
	if !kept {
		t.Error("the item without a file was dropped")
	}
	if w := strings.Join(messages(rl.Results, framework.Warning), "\n"); !strings.Contains(w, "passed through untouched: it has no config.kubernetes.io/path annotation") {
		t.Errorf("no warning for the item without a file:\n%s", w)
	}
}
