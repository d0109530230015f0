package disk_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// relabel sets a label on ConfigMaps named "change" and drops those named
// "drop": enough to see what RunDir writes.
type relabel struct{}

func (relabel) Process(rl *framework.ResourceList) error {
	var out []*yaml.RNode
	for _, it := range rl.Items {
		switch it.GetName() {
		case "drop":
			continue
		case "change":
			if err := object.SetLabel(it, "changed", "yes"); err != nil {
				return err
			}
		case "fail":
			return os.ErrInvalid
		}
		out = append(out, it)
	}
	rl.Items = out
	return nil
}

func cm(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<missing>"
	}
	return string(b)
}

// TestRunDir: untouched files keep their bytes even in a layout kyaml
// would change; changed files are rewritten; files whose objects are gone
// are deleted with their empty folders; non-YAML files are not read.
func TestRunDir(t *testing.T) {
	dir := t.TempDir()
	odd := "# mine\napiVersion: v1\nkind: ConfigMap\nmetadata:\n    name: keep\ndata:\n    list: |\n      a\n"
	write(t, dir, map[string]string{
		"keep.yaml":        odd,
		"change.yaml":      cm("change"),
		"sub/drop.yaml":    cm("drop"),
		"multi.yaml":       cm("change-not") + "---\n" + cm("drop"),
		"README.md":        "not yaml",
		"sub2/keep2.yml":   cm("keep2"),
		"sub3/deep/x.yaml": cm("drop"),
	})
	if _, err := disk.Run(dir, relabel{}, nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"keep.yaml":      odd,
		"change.yaml":    cm("change") + "  labels:\n    changed: \"yes\"\n",
		"sub/drop.yaml":  "<missing>",
		"multi.yaml":     cm("change-not"),
		"README.md":      "not yaml",
		"sub2/keep2.yml": cm("keep2"),
	} {
		if got := read(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
		}
	}
	for _, gone := range []string{"sub", "sub3"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("empty folder %s left behind", gone)
		}
	}
}

// TestRunDirAtomic: when the processor fails nothing is written.
func TestRunDirAtomic(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.yaml": cm("change"), "b.yaml": cm("fail"), "c.yaml": cm("drop")})
	if _, err := disk.Run(dir, relabel{}, nil); err == nil {
		t.Fatal("no error")
	}
	for name, want := range map[string]string{"a.yaml": cm("change"), "c.yaml": cm("drop")} {
		if got := read(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s written on error:\n%s", name, got)
		}
	}
}

func TestReadDirNamesBadFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"ok.yaml": cm("a"), "bad/broken.yaml": "kind: [\n"})
	_, err := disk.ReadObjects(dir)
	if err == nil || !strings.Contains(err.Error(), "bad/broken.yaml") {
		t.Fatalf("error %v must name the file", err)
	}
}
