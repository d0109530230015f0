package pipeline_test

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/cli"
	"github.com/istio-gitops/istio-gitops/internal/fuzztest"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// Where FuzzRun puts its document, chosen by the input's first byte.
const (
	atRoot      = iota // a user file at the tree's root
	asGenerated        // a new file in 1-30/generated/
	inGenerated        // appended to a generated file
	inSource           // appended to 1-30's fresh istioctl output
	asPatch            // a file of 1-30/patches/
	placements
)

var placementFiles = [placements]string{
	atRoot:      "fuzz.yaml",
	asGenerated: "1-30/generated/configmap/fuzz.yaml",
	inGenerated: "1-30/generated/deployment/istiod-1-30.yaml",
	inSource:    "1-30/istioctl-output.yaml",
	asPatch:     "1-30/patches/fuzz.yaml",
}

// fuzzBase is the bootstrap tree, read once a process.
var fuzzBase = sync.OnceValues(func() (map[string][]byte, error) {
	return fuzzFiles(filepath.Join(golden("bootstrap"), "want"))
})

// fuzzSourceBase is a tree bootstrapped, once a process, from 1-30's
// output less its CRDs, and that output: regenerating from it again (with
// one more document) costs a tenth of regenerating from the whole output,
// most of which is CRDs.
var fuzzSourceBase = sync.OnceValues(func() (map[string][]byte, error) {
	b, err := os.ReadFile(filepath.Join(fixtures, "1-30", "default.yaml"))
	if err != nil {
		return nil, err
	}
	var docs []string
	for d := range strings.SplitSeq(string(b), "\n---\n") {
		if !strings.Contains(d, "\nkind: CustomResourceDefinition\n") {
			docs = append(docs, d)
		}
	}
	source := []byte(strings.Join(docs, "\n---\n"))
	dir, err := os.MkdirTemp("", "fuzz-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	input, err := fuzzFiles(filepath.Join(golden("bootstrap"), "input"))
	if err != nil {
		return nil, err
	}
	input[placementFiles[inSource]] = source
	for name, data := range input {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}
	if _, err := cli.Processors().RunDir(dir); err != nil {
		return nil, err
	}
	files, err := fuzzFiles(dir)
	if err != nil {
		return nil, err
	}
	files[placementFiles[inSource]] = source
	return files, nil
})

// fuzzFiles reads every file below dir, by slash path.
func fuzzFiles(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	return files, err
}

// FuzzRun runs the whole function over a bootstrapped tree with one
// fuzzed document added (where the input's first byte says): the run
// succeeds or fails, never panics or hangs; failing, it leaves the tree
// as it was, byte for byte, and writes nothing next to it; succeeding,
// a second run changes nothing.
func FuzzRun(f *testing.F) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: istio-system\ndata:\n  a: b\n"
	patchDiff := `diff --git a/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml b/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml
index 1111111..2222222 100644
--- a/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml
+++ b/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml
@@ -42,4 +42,4 @@ webhooks:
     - UPDATE
     resources:
     - '*'
-  sideEffects: None
+  sideEffects: NoneOnDryRun
`
	gitPatch := "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: GitPatch\nmetadata:\n  name: side-effects\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nspec:\n  diff: |\n    " +
		strings.ReplaceAll(strings.TrimSuffix(patchDiff, "\n"), "\n", "\n    ") + "\n"
	for _, s := range []struct {
		at  int
		doc string
	}{
		{atRoot, cm},
		{atRoot, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  labels:\n    istio.io/rev: 1-30\n"},
		{atRoot, "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: IstioGitOps\nmetadata:\n  name: backup\nspec:\n  revisions:\n  - name: 1-30\n"},
		{atRoot, "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: RevisionMigration\nmetadata:\n  name: m\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nspec:\n  from: 1-30\n  to: default\n  ownerKey: team\n"},
		{atRoot, "a: 1\n"},
		{atRoot, "apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(strings.TrimSuffix(cm, "\n"), "\n", "\n  ") + "\n"},
		{atRoot, "apiVersion: v1\nkind: ConfigMap\nmetadata: [a]\n"},
		{atRoot, "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n"},
		{asGenerated, cm},
		{inGenerated, "---\n" + cm},
		{inSource, cm},
		{inSource, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: istiod-1-30\n  namespace: istio-system\n"},
		{inSource, "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: extra-1-30\nwebhooks: [a, b]\n"},
		{inSource, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + strings.Repeat("a", 253) + "\n  namespace: istio-system\n"},
		{asPatch, gitPatch},
		{asPatch, strings.ReplaceAll(gitPatch, "generated/validatingwebhookconfiguration", "../common/validatingwebhookconfiguration")},
	} {
		f.Add(append([]byte{byte(s.at)}, s.doc...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		at, doc := placementFiles[int(b[0])%placements], b[1:]
		files, err := fuzzBase()
		if at == placementFiles[inSource] {
			files, err = fuzzSourceBase()
		}
		if err != nil {
			t.Fatal(err)
		}
		base := t.TempDir()
		root := filepath.Join(base, "tree")
		for name, data := range files {
			if name == at {
				data = append(append(slices.Clip(data), "\n---\n"...), doc...)
			}
			treetest.Write(t, filepath.Join(root, filepath.FromSlash(name)), data)
		}
		if _, ok := files[at]; !ok {
			treetest.Write(t, filepath.Join(root, filepath.FromSlash(at)), doc)
		}
		before := entries(t, base)
		fuzztest.Run(t, 60*time.Second, nil, func() error {
			ps := cli.Processors()
			// No t in here: a run past its deadline outlives the test.
			_, err := ps.RunDir(root)
			after, serr := snapshot(base)
			if serr != nil {
				return serr
			}
			if err != nil {
				if err.Error() == "" {
					return fmt.Errorf("a run failed without a message")
				}
				if d := treetest.Diff(after, before); d != "" {
					return fmt.Errorf("a failed run (%v) changed the tree:\n%s", err, d)
				}
				return nil
			}
			if _, err := ps.RunDir(root); err != nil {
				return fmt.Errorf("a run succeeded, the next one fails: %v", err)
			}
			again, err := snapshot(base)
			if err != nil {
				return err
			}
			if d := treetest.Diff(again, after); d != "" {
				return fmt.Errorf("a second run changed the tree:\n%s", d)
			}
			for _, name := range slices.Sorted(maps.Keys(after)) {
				if name != "tree" && !strings.HasPrefix(name, "tree/") {
					return fmt.Errorf("a run wrote %s, outside its tree", name)
				}
			}
			return nil
		})
	})
}

// snapshot is every file, link and folder below dir, by slash path: the
// content of a file, what a link points at, "folder" for a folder.
func snapshot(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			out[rel] = []byte("folder")
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			out[rel] = []byte("link to " + t)
			return err
		default:
			b, err := os.ReadFile(p)
			out[rel] = b
			return err
		}
		return nil
	})
	return out, err
}

func entries(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	s, err := snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
