package pipeline_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
)

var minimalConfig = treetest.Config("1-30")

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

// TestAllowRemovals: a profile change (demo to default) removes the demo's
// egress gateway and more; taken for a truncated output, it is refused
// until the user says the removals are meant, in the config or with the
// run's option. Each removed file is then a warning, and the config
// setting is reported until it is removed.
func TestAllowRemovals(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	treetest.Copy(t, filepath.Join(golden("bootstrap"), "input"), base)
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/demo.yaml"), filepath.Join(base, "1-30", config.SourceFile))
	run(t, base)
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/default.yaml"), filepath.Join(base, "1-30", config.SourceFile))
	runFails(t, base, "1-30/istioctl-output.yaml would remove", "objects of 1-30/",
		"deployment/istio-egressgateway-1-30.yaml", "spec.revisions[0].allowRemovals: true", "--allow-removals")

	// The default profile's tree, and a warning for each file removed.
	check := func(t *testing.T, dir string, results framework.Results) {
		t.Helper()
		var removed []string
		for _, r := range results {
			if r.Severity == framework.Warning && strings.HasPrefix(r.Message, "removed: ") {
				removed = append(removed, r.File.Path)
			}
		}
		if !slices.Contains(removed, "1-30/generated/deployment/istio-egressgateway-1-30.yaml") || len(removed) <= 3 {
			t.Errorf("removal warnings for %q, want one per removed file, the egress gateway's among them", removed)
		}
		got := treetest.Files(t, dir)
		for p := range got {
			if strings.Contains(p, "egressgateway") {
				t.Errorf("%s: the default profile has no egress gateway", p)
			}
		}
		if _, ok := got["1-30/generated/deployment/istiod-1-30.yaml"]; !ok {
			t.Error("istiod-1-30 is gone")
		}
	}

	t.Run("in the config", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		treetest.Copy(t, base, dir)
		editConfig(t, dir, "  - name: 1-30\n", "  - name: 1-30\n    allowRemovals: true\n")
		check(t, dir, run(t, dir))
		// Kept on, it is said to be spent until it is removed.
		results := run(t, dir)
		if !hasMessage(results, framework.Warning, `spec.revisions[0].allowRemovals is set but revision "1-30" was not regenerated`) {
			t.Errorf("no warning that allowRemovals is still set: %v", results)
		}
	})

	t.Run("for one run", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		treetest.Copy(t, base, dir)
		ps := krm.Processors{config.Kind: pipeline.Processor{Options: pipeline.Options{AllowRemovals: true}}}
		results, err := ps.RunDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		check(t, dir, results)
	})
}

// hasMessage reports whether results hold one of severity whose message
// starts with prefix.
func hasMessage(results framework.Results, severity framework.Severity, prefix string) bool {
	for _, r := range results {
		if r.Severity == severity && strings.HasPrefix(r.Message, prefix) {
			return true
		}
	}
	return false
}

// TestEditsListed: a kept revision with more files edited by hand than an
// error lists names the first ones and says how many more there are.
func TestEditsListed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(golden("bootstrap"), "want"), dir)
	var edited []string
	files := treetest.Files(t, dir)
	for _, n := range treetest.Names(files) {
		if strings.HasPrefix(n, "1-30/generated/") && !strings.HasSuffix(n, "/state.yaml") && len(edited) < 11 {
			edited = append(edited, n)
			treetest.Write(t, filepath.Join(dir, n), append(files[n], "# tuned by hand\n"...))
		}
	}
	err := runFails(t, dir, edited[0]+" changed since the last run", "; and 3 more; ")
	if n := strings.Count(err.Error(), " changed since the last run"); n != 8 {
		t.Errorf("%d files named, want 8: %v", n, err)
	}
}
