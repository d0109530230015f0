package krm_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// labeller is a processor over items: it labels every item with the
// config's name, and can fail or report an error.
type labeller struct{ calls *[]string }

func (l labeller) Process(rl *framework.ResourceList) error {
	name := rl.FunctionConfig.GetName()
	*l.calls = append(*l.calls, rl.FunctionConfig.GetKind()+"/"+name)
	// What it writes holds only once written: a failed run drops it.
	rl.Results = append(rl.Results, &framework.Result{Severity: framework.Info, Message: name + ": 1 file changed",
		Tags: map[string]string{api.WritesTag: name}})
	switch name {
	case "fails":
		return os.ErrInvalid
	case "reports":
		// Reported, and the items changed all the same: nothing may be
		// written.
		rl.Results = append(rl.Results, &framework.Result{Severity: framework.Error, Message: "a user problem"})
	}
	for _, it := range rl.Items {
		if it.GetApiVersion() == "fn.istio-gitops.dev/v1alpha1" {
			continue
		}
		if err := it.PipeE(yaml.SetLabel("by", name)); err != nil {
			return err
		}
	}
	return nil
}

func processors(calls *[]string) krm.Processors {
	return krm.Processors{"IstioGitOps": labeller{calls}, "RevisionMigration": labeller{calls}}
}

func cfg(kind, name string) string {
	return "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
}

func TestProcess(t *testing.T) {
	item := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
	for _, c := range []struct {
		name      string
		fnConfig  string
		items     []string
		wantCalls string
		wantErr   string
	}{
		{"config given", cfg("RevisionMigration", "m"), []string{item, cfg("IstioGitOps", "ignored")}, "RevisionMigration/m", ""},
		// kustomize fn run --exec-path passes an empty ConfigMap: the
		// configs among the items run, in path order.
		{"empty ConfigMap", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fn\n",
			[]string{item, cfg("IstioGitOps", "b") + "  annotations:\n    config.kubernetes.io/path: b.yaml\n",
				cfg("RevisionMigration", "a") + "  annotations:\n    config.kubernetes.io/path: a.yaml\n"},
			"RevisionMigration/a IstioGitOps/b", ""},
		{"no config", "", []string{item}, "", "no function config"},
		{"foreign config", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fn\ndata:\n  x: y\n", []string{item},
			"", `functionConfig ConfigMap "fn": kind must be one of ["IstioGitOps" "RevisionMigration"]`},
		{"other group", "apiVersion: example.com/v1\nkind: IstioGitOps\nmetadata:\n  name: x\n", []string{item},
			"", `functionConfig IstioGitOps "x": kind must be one of`},
		{"a config fails", "", []string{cfg("IstioGitOps", "fails"), cfg("RevisionMigration", "never")}, "IstioGitOps/fails", "invalid argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls []string
			rl := &framework.ResourceList{}
			if c.fnConfig != "" {
				rl.FunctionConfig = yaml.MustParse(c.fnConfig)
			}
			for _, it := range c.items {
				rl.Items = append(rl.Items, yaml.MustParse(it))
			}
			err := processors(&calls).Process(rl)
			if got := strings.Join(calls, " "); got != c.wantCalls {
				t.Errorf("ran %q, want %q", got, c.wantCalls)
			}
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestRunDir(t *testing.T) {
	t.Parallel()
	write := func(dir string, files map[string]string) {
		for name, content := range files {
			treetest.Write(t, filepath.Join(dir, name), []byte(content))
		}
	}

	t.Run("runs each config and writes", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, map[string]string{
			"a/config.yaml": cfg("IstioGitOps", "one"),
			"b/config.yaml": cfg("IstioGitOps", "two"),
			"cm.yaml":       "# kept\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
			"README.md":     "not YAML, not read\n",
		})
		var calls []string
		results, err := processors(&calls).RunDir(dir)
		if err != nil || len(results) != 4 || results[1].Tags[api.WritesTag] != "two" ||
			results[2].Message != `tree a (IstioGitOps "one"): no change` ||
			results[3].Message != `tree b (IstioGitOps "two"): no change` {
			t.Fatalf("RunDir: %v %v", results, err)
		}
		if got := strings.Join(calls, " "); got != "IstioGitOps/one IstioGitOps/two" {
			t.Errorf("ran %q, want both configs in path order", got)
		}
		want := "# kept\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    by: 'two'\n" // kyaml's SetLabel quotes
		if got := treetest.Snapshot(t, dir)["cm.yaml"]; got != want {
			t.Errorf("cm.yaml:\n%s\nwant:\n%s", got, want)
		}
	})

	for _, c := range []struct {
		name, config, want string
	}{
		{"no config", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "no function config: the tree must hold an object of kind"},
		{"a config fails", cfg("IstioGitOps", "fails"), "invalid argument"},
		{"a config reports an error", cfg("IstioGitOps", "reports"), "the run reported errors; nothing was written"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(dir, map[string]string{"config.yaml": c.config, "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"})
			before := treetest.Snapshot(t, dir)
			var calls []string
			results, err := processors(&calls).RunDir(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
			for _, r := range results {
				if _, ok := r.Tags[api.WritesTag]; ok {
					t.Errorf("a failed run says what it wrote: %s", r.Message)
				}
			}
			if d := treetest.Diff(treetest.Files(t, dir), mapBytes(before)); d != "" {
				t.Errorf("a failed run wrote:\n%s", d)
			}
		})
	}
}

func mapBytes(m map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		if !strings.HasSuffix(k, "/") {
			out[k] = []byte(v)
		}
	}
	return out
}

// seer records, per config, the paths of the items it was given.
type seer struct{ saw map[string][]string }

func (s seer) Process(rl *framework.ResourceList) error {
	name := rl.FunctionConfig.GetName()
	for _, it := range rl.Items {
		p := it.GetAnnotations()["config.kubernetes.io/path"]
		s.saw[name] = append(s.saw[name], p)
		if it.GetKind() == "ConfigMap" {
			if err := it.PipeE(yaml.SetLabel("by", name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestTreesApart: each IstioGitOps config owns its folder less the
// folders of the configs below it; a run over the parent gives each tree
// its own files and the files of no tree, over a directory and over a
// ResourceList alike, and each result names its tree.
func TestTreesApart(t *testing.T) {
	files := map[string]string{
		"clusters/staging/istio/istio-gitops.yaml": cfg("IstioGitOps", "staging"),
		"clusters/staging/istio/cm.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: staging\n",
		"clusters/prod/istio/istio-gitops.yaml":    cfg("IstioGitOps", "prod"),
		"clusters/prod/istio/cm.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: prod\n",
		// A tree nested in prod's: prod does not see it.
		"clusters/prod/istio/edge/istio-gitops.yaml": cfg("IstioGitOps", "edge"),
		"clusters/prod/istio/edge/cm.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edge\n",
		// No tree's: every tree sees it.
		"clusters/namespaces.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shared\n",
	}
	want := map[string][]string{
		"staging": {"clusters/namespaces.yaml", "clusters/staging/istio/cm.yaml", "clusters/staging/istio/istio-gitops.yaml"},
		"prod":    {"clusters/namespaces.yaml", "clusters/prod/istio/cm.yaml", "clusters/prod/istio/istio-gitops.yaml"},
		"edge":    {"clusters/namespaces.yaml", "clusters/prod/istio/edge/cm.yaml", "clusters/prod/istio/edge/istio-gitops.yaml"},
	}
	check := func(t *testing.T, saw map[string][]string) {
		t.Helper()
		for name, w := range want {
			got := saw[name]
			slices.Sort(got)
			if !slices.Equal(got, w) {
				t.Errorf("%s saw %q, want %q", name, got, w)
			}
		}
	}
	t.Run("dir", func(t *testing.T) {
		dir := t.TempDir()
		for name, content := range files {
			treetest.Write(t, filepath.Join(dir, name), []byte(content))
		}
		s := seer{saw: map[string][]string{}}
		results, err := krm.Processors{"IstioGitOps": s}.RunDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		check(t, s.saw)
		// Each tree's ConfigMap is labelled by its own config alone, and
		// each tree is said apart.
		got := treetest.Snapshot(t, dir)
		for _, tree := range []string{"staging", "prod", "edge"} {
			p := map[string]string{"staging": "clusters/staging/istio", "prod": "clusters/prod/istio", "edge": "clusters/prod/istio/edge"}[tree]
			if !strings.Contains(got[p+"/cm.yaml"], "by: '"+tree+"'") {
				t.Errorf("%s/cm.yaml:\n%s", p, got[p+"/cm.yaml"])
			}
			found := false
			for _, r := range results {
				found = found || r.Tags[krm.TreeTag] == p && strings.HasPrefix(r.Message, "tree "+p+" (IstioGitOps \""+tree+"\"): 1 files written")
			}
			if !found {
				t.Errorf("no result says what tree %s got: %v", p, results)
			}
		}
	})
	t.Run("ResourceList", func(t *testing.T) {
		rl := &framework.ResourceList{}
		for _, name := range slices.Sorted(maps.Keys(files)) {
			n := yaml.MustParse(files[name])
			if err := n.PipeE(yaml.SetAnnotation("config.kubernetes.io/path", name)); err != nil {
				t.Fatal(err)
			}
			rl.Items = append(rl.Items, n)
		}
		s := seer{saw: map[string][]string{}}
		if err := (krm.Processors{"IstioGitOps": s}).Process(rl); err != nil {
			t.Fatal(err)
		}
		check(t, s.saw)
		if len(rl.Items) != len(files) {
			t.Errorf("%d items out of %d", len(rl.Items), len(files))
		}
	})
}

func TestOwner(t *testing.T) {
	roots := []string{"", "a", "a/b", "ab"}
	for p, want := range map[string]string{
		"x.yaml": "", "a/x.yaml": "a", "a/b/x.yaml": "a/b", "a/bc/x.yaml": "a", "ab/x.yaml": "ab", "a/b/c/x.yaml": "a/b",
	} {
		if got, ok := krm.Owner(roots, p); !ok || got != want {
			t.Errorf("Owner(%q) = %q, %v; want %q", p, got, ok, want)
		}
	}
	if _, ok := krm.Owner([]string{"a"}, "b/x.yaml"); ok {
		t.Error("b/x.yaml is in no tree")
	}
}
