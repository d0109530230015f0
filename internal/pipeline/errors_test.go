package pipeline_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
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
