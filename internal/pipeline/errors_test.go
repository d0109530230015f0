package pipeline_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

const minimalConfig = `apiVersion: fn.istio-gitops.dev/v1alpha1
kind: IstioGitOps
metadata:
  name: prod
  annotations:
    config.kubernetes.io/local-config: "true"
spec:
  revisions:
  - name: 1-30
`

const goodObject = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: istiod-1-30
  namespace: istio-system
`

// istiod is the least output a revision must hold.
const istiod = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod-1-30
  namespace: istio-system
`

// TestBadInput: each bad input fails the run with a message naming the
// file and object, and leaves the tree as it was.
func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "not yaml",
			files: map[string]string{"1-30/istioctl-output.yaml": "apiVersion: v1\nkind: [unclosed\n"},
			want:  []string{"1-30/istioctl-output.yaml"},
		},
		{
			name:  "no kind",
			files: map[string]string{"1-30/istioctl-output.yaml": goodObject + "---\napiVersion: v1\nmetadata:\n  name: x\n"},
			want:  []string{"1-30/istioctl-output.yaml", "object 2", `object "x" must have a kind`},
		},
		{
			name:  "no name",
			files: map[string]string{"1-30/istioctl-output.yaml": goodObject + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: istio-system\n"},
			want:  []string{"1-30/istioctl-output.yaml", "object 2", "ConfigMap must have metadata.name"},
		},
		{
			name:  "name escapes",
			files: map[string]string{"1-30/istioctl-output.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../x\n"},
			want:  []string{"1-30/istioctl-output.yaml", `ConfigMap name "../x" must not contain a path separator`},
		},
		{
			name:  "name with slash",
			files: map[string]string{"1-30/istioctl-output.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a/b\n"},
			want:  []string{`ConfigMap name "a/b" must not contain a path separator`},
		},
		{
			name:  "namespace escapes",
			files: map[string]string{"1-30/istioctl-output.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ..\n"},
			want:  []string{`namespace ".." must be a namespace name`},
		},
		{
			name:  "duplicate identity",
			files: map[string]string{"1-30/istioctl-output.yaml": goodObject + "---\n" + goodObject},
			want:  []string{"1-30/istioctl-output.yaml", "objects 1 and 2 must not share the identity ServiceAccount istio-system/istiod-1-30"},
		},
		{
			name: "source of an unlisted revision",
			files: map[string]string{
				"1-30/istioctl-output.yaml": goodObject,
				"1-31/istioctl-output.yaml": strings.ReplaceAll(goodObject, "1-30", "1-31"),
			},
			want: []string{"1-31/istioctl-output.yaml", "istioctl output for a revision that spec.revisions does not list"},
		},
		{
			name:  "revision without output",
			files: map[string]string{"istio-system.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: istio-system\n"},
			want:  []string{`spec.revisions[0]: revision "1-30" must have its istioctl output at 1-30/istioctl-output.yaml`},
		},
		{
			name: "corrupt revision record",
			files: map[string]string{
				"1-30/istioctl-output.yaml": goodObject,
				"1-30/generated/state.yaml": "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: RevisionState\nmetadata:\n  name: 1-30\nspec:\n  files: [1]\n",
			},
			want: []string{"1-30/generated/state.yaml", `RevisionState "1-30"`},
		},
		{
			name: "misplaced GitPatch",
			files: map[string]string{
				"1-30/istioctl-output.yaml": goodObject,
				"1-30/fix.yaml":             "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: GitPatch\nmetadata:\n  name: fix\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nspec:\n  diff: \"\"\n",
			},
			want: []string{"1-30/fix.yaml", `GitPatch "fix" must be in the patches/ folder`},
		},
		{
			name:  "bad config",
			files: map[string]string{"istio-gitops.yaml": strings.Replace(minimalConfig, "- name: 1-30", "- name: default", 1)},
			want:  []string{`IstioGitOps "prod": spec.revisions[0].name: "default" must not be used`},
		},
		{
			name: "unpinnable envoyfilter",
			files: map[string]string{"1-30/istioctl-output.yaml": istiod + `---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: stats-filter-1.29
  namespace: istio-system
spec:
  configPatches:
  - match:
      proxy:
        proxyVersion: '^1\.29('
`},
			want: []string{"1-30/istioctl-output.yaml", "EnvoyFilter istio-system/stats-filter-1.29", "proxyVersion", "must be a regular expression"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(minimalConfig))
			for name, content := range c.files {
				treetest.Write(t, filepath.Join(dir, name), []byte(content))
			}
			before := treetest.Files(t, dir)
			_, err := processors.RunDir(dir)
			if err == nil {
				t.Fatal("run succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nmust contain %q", err, w)
				}
			}
			if d := treetest.Diff(treetest.Files(t, dir), before); d != "" {
				t.Errorf("a failed run wrote:\n%s", d)
			}
		})
	}
}

// TestHandEditedFilesReported: regenerating a revision whose generated
// files were edited by hand is no error, but each replaced file is named.
func TestHandEditedFilesReported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(golden("bootstrap"), "want"), dir)
	edited := filepath.Join(dir, "1-30/generated/configmap/istio-1-30.yaml")
	b, err := os.ReadFile(edited)
	if err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, edited, append(b, []byte("# tuned by hand\n")...))
	untouchedBefore := treetest.Files(t, dir)["1-30/generated/deployment/istiod-1-30.yaml"]
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/default.yaml"), filepath.Join(dir, "1-30/istioctl-output.yaml"))

	results := run(t, dir)
	var warned []string
	for _, r := range results {
		if r.Severity == "warning" {
			warned = append(warned, r.File.Path+": "+r.Message)
		}
	}
	if len(warned) != 1 || !strings.HasPrefix(warned[0], "1-30/generated/configmap/istio-1-30.yaml: replaced a file edited by hand") {
		t.Errorf("warnings %q, want one naming the edited file", warned)
	}
	after := treetest.Files(t, dir)
	if strings.Contains(string(after["1-30/generated/configmap/istio-1-30.yaml"]), "tuned by hand") {
		t.Error("the edited file was not regenerated")
	}
	if string(after["1-30/generated/deployment/istiod-1-30.yaml"]) != string(untouchedBefore) {
		t.Error("an unedited file changed")
	}
	if d := treetest.Diff(after, treetest.Files(t, filepath.Join(golden("bootstrap"), "want"))); d != "" {
		t.Errorf("regeneration did not restore the golden tree:\n%s", d)
	}
}
