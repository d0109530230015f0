package buildtest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// recorder is a testing.TB that keeps the errors a helper reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) Failed() bool              { return len(r.errs) > 0 }
func (r *recorder) Fatalf(f string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(f, a...))
	panic(r)
}

const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"

// TestBuildAll: a tree that builds gives each top folder's object count;
// one that does not is reported by both builders, and not remembered as
// built.
func TestBuildAll(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string // errors, or the counts as "folder=n"
	}{
		{"builds", map[string]string{
			"kustomization.yaml":   "resources:\n- a\n- b.yaml\n",
			"a/kustomization.yaml": "resources:\n- x.yaml\n- y.yaml\n",
			"a/x.yaml":             fmt.Sprintf(cm, "x"),
			"a/y.yaml":             fmt.Sprintf(cm, "y"),
			"b.yaml":               fmt.Sprintf(cm, "b"),
			"c.yaml":               "not listed: not built\n",
		}, []string{".=3"}},
		{"a listed file is missing", map[string]string{
			"kustomization.yaml": "resources:\n- gone.yaml\n",
		}, []string{"kustomize build .", "flux build ."}},
		{"one object in two folders", map[string]string{
			"kustomization.yaml":   "resources:\n- a\n- b\n",
			"a/kustomization.yaml": "resources:\n- x.yaml\n",
			"a/x.yaml":             fmt.Sprintf(cm, "x"),
			"b/kustomization.yaml": "resources:\n- x.yaml\n",
			"b/x.yaml":             fmt.Sprintf(cm, "x"),
		}, []string{"kustomize build .", "flux build ."}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, b := range c.files {
				treetest.Write(t, filepath.Join(dir, n), []byte(b))
			}
			r := &recorder{TB: t}
			counts := func() (counts map[string]int) {
				defer func() {
					if v := recover(); v != nil && v != r {
						panic(v)
					}
				}()
				return BuildAll(r, dir)
			}()
			got := slices.Clone(r.errs)
			for _, k := range []string{".", "a", "b"} {
				if n, ok := counts[k]; ok {
					got = append(got, fmt.Sprintf("%s=%d", k, n))
				}
			}
			for _, w := range c.want {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, w)
				}
				if !found {
					t.Errorf("BuildAll said %q, want %q among it", got, w)
				}
			}
			if len(r.errs) > 0 {
				built.Lock()
				_, cached := built.trees[treeKey(treetest.Files(t, dir))]
				built.Unlock()
				if cached {
					t.Error("a tree that failed is remembered as built")
				}
			}
		})
	}
}
