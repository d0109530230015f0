package krm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// labeller is a processor over items: it labels every item with the
// config's name, and can fail or report an error.
type labeller struct{ calls *[]string }

func (l labeller) Process(rl *framework.ResourceList) error {
	name := rl.FunctionConfig.GetName()
	*l.calls = append(*l.calls, rl.FunctionConfig.GetKind()+"/"+name)
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
		if err != nil || len(results) != 2 || results[0].Message != `tree a (IstioGitOps "one"): no change` ||
			results[1].Message != `tree b (IstioGitOps "two"): no change` {
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
			_, err := processors(&calls).RunDir(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
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
