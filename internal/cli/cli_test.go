package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/schema"
)

const repo = "../.."

// call runs the command line in process and returns its exit code, stdout
// and stderr.
func call(t *testing.T, root *cobra.Command, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(root, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// resourceList is the examples' bootstrap tree as a ResourceList, as
// kustomize fn run passes it.
func resourceList(t *testing.T, edit func(string) string) string {
	t.Helper()
	items, err := disk.ReadObjects(filepath.Join(repo, "examples/bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := kio.ByteWriter{Writer: &b, WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion, KeepReaderAnnotations: true}
	if err := w.Write(items); err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return b.String()
	}
	return edit(b.String())
}

// readList parses the ResourceList written on stdout.
func readList(t *testing.T, out string) (items []*yaml.RNode, results *yaml.RNode) {
	t.Helper()
	rw := &kio.ByteReadWriter{Reader: strings.NewReader(out)}
	items, err := rw.Read()
	if err != nil {
		t.Fatalf("stdout is not a ResourceList: %v\n%s", err, out)
	}
	list, err := yaml.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	return items, list.Field("results").Value
}

// TestFunction: on stdin, a good ResourceList gives the tree's items; a bad
// config gives a ResourceList with the error as a result and no items at
// all, and exit 1.
func TestFunction(t *testing.T) {
	code, out, errOut := call(t, NewRootCommand(), resourceList(t, nil))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if items, _ := readList(t, out); len(items) < 20 {
		t.Errorf("%d items out, want the written tree", len(items))
	}

	bad := resourceList(t, func(s string) string { return strings.Replace(s, "- name: 1-30", `- name: "1.30"`, 1) })
	code, out, errOut = call(t, NewRootCommand(), bad)
	if code != ExitUser {
		t.Errorf("exit %d, want %d", code, ExitUser)
	}
	items, results := readList(t, out)
	if len(items) != 0 {
		t.Errorf("%d items written on error, want none", len(items))
	}
	if results == nil || !strings.Contains(results.MustString(), "severity: error") || !strings.Contains(results.MustString(), "spec.revisions[0].name") {
		t.Errorf("results must hold the error naming the field:\n%s", out)
	}
	if !strings.Contains(errOut, "error: ") || !strings.Contains(errOut, "must not contain a dot") {
		t.Errorf("stderr: %s", errOut)
	}
}

// TestFunctionUnreadable: stdin that is no ResourceList (not YAML, a list
// for an item) gives a ResourceList with the error as its one result, and
// exit 1.
func TestFunctionUnreadable(t *testing.T) {
	for name, stdin := range map[string]string{
		"not YAML":      "not: [yaml\n",
		"a list item":   "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- - apiVersion: v1\n",
		"a list config": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nfunctionConfig: [a]\n",
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := call(t, NewRootCommand(), stdin)
			if code != ExitUser {
				t.Errorf("exit %d, want %d: %s", code, ExitUser, errOut)
			}
			items, results := readList(t, out)
			if len(items) != 0 || results == nil || !strings.Contains(results.MustString(), "severity: error") {
				t.Errorf("stdout must be a ResourceList with the error and no items:\n%s", out)
			}
		})
	}
}

// panicking is a processor with a bug.
type panicking struct{}

func (panicking) Process(*framework.ResourceList) error { panic("injected bug") }

// TestPanic: a panic is an internal error, exit 2, with its stack on
// stderr; on stdin the ResourceList still says so, with no items.
func TestPanic(t *testing.T) {
	root := newRoot(krm.Processors{config.Kind: panicking{}})
	code, out, errOut := call(t, root, resourceList(t, nil))
	if code != ExitInternal {
		t.Errorf("stdin: exit %d, want %d", code, ExitInternal)
	}
	items, results := readList(t, out)
	if len(items) != 0 || results == nil || !strings.Contains(results.MustString(), "internal error: injected bug") {
		t.Errorf("stdin: %d items, results:\n%s", len(items), out)
	}
	if !strings.Contains(errOut, "internal error: injected bug") || !strings.Contains(errOut, "goroutine ") {
		t.Errorf("stdin: stderr must say internal error, with the stack:\n%s", errOut)
	}

	// A panic anywhere else reaches Main's recover.
	root = NewRootCommand()
	root.AddCommand(&cobra.Command{Use: "crash", Run: func(*cobra.Command, []string) { panic("injected bug") }})
	code, _, errOut = call(t, root, "", "crash")
	if code != ExitInternal || !strings.HasPrefix(errOut, "internal error: injected bug\n") || !strings.Contains(errOut, "goroutine ") {
		t.Errorf("command: exit %d, stderr:\n%s", code, errOut)
	}
}

// TestExitCodes: 0 done, 1 for the user's errors of every kind.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"version"}, ExitOK, ""},
		{[]string{"status", filepath.Join(repo, "testdata/golden/story/2-add-1-31")}, ExitOK, ""},
		{[]string{"status", dir}, ExitUser, "no IstioGitOps config found"},
		{[]string{"run"}, ExitUser, "accepts 1 arg(s)"},
		{[]string{"run", filepath.Join(dir, "missing")}, ExitUser, "missing"},
		{[]string{"run", dir, "-o", "yaml"}, ExitUser, `--output: "yaml" must be one of text, json`},
		{[]string{"schema", "Kustomization"}, ExitUser, `kind "Kustomization" must be one of`},
	} {
		code, _, errOut := call(t, NewRootCommand(), "", c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("%q: exit %d, want %d; stderr %q must contain %q", c.args, code, c.code, errOut, c.msg)
		}
	}
}

// TestSuggestions: a typo in a command or flag name is answered with the
// name meant.
func TestSuggestions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"stauts"}, "unknown command \"stauts\" for \"istio-gitops\"\n\nDid you mean this?\n\tstatus\n"},
		{[]string{"migrat"}, "Did you mean this?\n\tmigrate\n"},
		{[]string{"patch", "imprt"}, "unknown command \"imprt\" for \"istio-gitops patch\"\n\nDid you mean this?\n\timport\n"},
		{[]string{"status", ".", "--outpt", "json"}, "unknown flag: --outpt\n\nDid you mean this?\n\t--output\n"},
		{[]string{"migrate", ".", "--ownr-key", "team"}, "Did you mean this?\n\t--owner-key\n"},
		{[]string{"frobnicate"}, "unknown command \"frobnicate\" for \"istio-gitops\"\nRun 'istio-gitops --help' for its commands.\n"},
	} {
		code, _, errOut := call(t, NewRootCommand(), "", c.args...)
		if code != ExitUser || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant:\n%s", c.args, code, errOut, c.want)
		}
	}
}

// TestCompletion: `completion SHELL` prints that shell's script.
func TestCompletion(t *testing.T) {
	for shell, start := range map[string]string{
		"bash": "# bash completion V2 for istio-gitops",
		"zsh":  "#compdef istio-gitops",
		"fish": "# fish completion for istio-gitops",
	} {
		code, out, errOut := call(t, NewRootCommand(), "", "completion", shell)
		if code != ExitOK || !strings.HasPrefix(out, start) {
			t.Errorf("completion %s: exit %d, %s\n%.200s", shell, code, errOut, out)
		}
	}
	// The scripts ask the binary; it completes commands and kinds.
	_, out, _ := call(t, NewRootCommand(), "", "__complete", "sta")
	if !strings.Contains(out, "status") {
		t.Errorf("completing sta:\n%s", out)
	}
	_, out, _ = call(t, NewRootCommand(), "", "__complete", "schema", "")
	if !strings.Contains(out, "IstioGitOps") || !strings.Contains(out, "RevisionMigration") {
		t.Errorf("completing schema:\n%s", out)
	}
}

// TestSchemaCommand: `schema KIND` prints the committed schema.
func TestSchemaCommand(t *testing.T) {
	for _, kind := range schema.Kinds() {
		code, out, errOut := call(t, NewRootCommand(), "", "schema", strings.ToLower(kind))
		if code != ExitOK {
			t.Fatalf("schema %s: %s", kind, errOut)
		}
		want, err := os.ReadFile(filepath.Join(repo, schema.Dir, schema.File(kind)))
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("schema %s differs from %s: run `go test ./internal/schema -update`", kind, schema.File(kind))
		}
	}
}

// TestVersion: `version` and `--version` print the same line.
func TestVersion(t *testing.T) {
	_, v, _ := call(t, NewRootCommand(), "", "version")
	_, flag, _ := call(t, NewRootCommand(), "", "--version")
	if !strings.HasPrefix(v, "istio-gitops ") || v != flag {
		t.Errorf("version %q, --version %q", v, flag)
	}
}

// TestStatusFormat: --format, the old name of --output, still works and
// prints nothing more.
func TestStatusFormat(t *testing.T) {
	tree := filepath.Join(repo, "testdata/golden/story/2-add-1-31")
	_, out, errOut := call(t, NewRootCommand(), "", "status", tree, "-o", "markdown")
	_, old, oldErr := call(t, NewRootCommand(), "", "status", tree, "--format", "markdown")
	if !strings.HasPrefix(out, "### Istio mesh `prod`") || old != out || errOut != "" || oldErr != "" {
		t.Errorf("-o markdown:\n%s%s\n--format markdown:\n%s%s", out, errOut, old, oldErr)
	}
}

// TestErrorsSaidOnce: a config with a value of the wrong type and a
// misspelled field reports both in one run, and each error is printed
// once: by `run` (not as a result line and again after error:), and in
// the function's ResourceList (one result a mistake, no summary of them
// all).
func TestErrorsSaidOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repo, "examples/bootstrap"))); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "istio-gitops.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "  - name: 1-30\n", "  - name: 1-30\n  activeRevison: 1-30\n  tags: [1-30]\n", 1)
	if bad == string(b) {
		t.Fatalf("examples/bootstrap/istio-gitops.yaml lists no revision 1-30:\n%s", b)
	}
	if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := call(t, NewRootCommand(), "", "run", dir)
	said := out + errOut
	if code != ExitUser {
		t.Errorf("exit %d, want %d:\n%s", code, ExitUser, said)
	}
	for _, want := range []string{"spec.activeRevison: unknown field", "spec.tags: must be a map, not array"} {
		if n := strings.Count(said, want); n != 1 {
			t.Errorf("%q said %d times, want once:\n%s", want, n, said)
		}
	}
	if strings.Contains(said, "files added") || strings.Contains(said, "written") {
		t.Errorf("a failed run must not say what it wrote:\n%s", said)
	}

	list := resourceList(t, func(s string) string {
		return strings.Replace(s, "    - name: 1-30\n", "    - name: 1-30\n    activeRevison: 1-30\n    tags: [1-30]\n", 1)
	})
	code, out, _ = call(t, NewRootCommand(), list)
	if code != ExitUser {
		t.Errorf("function: exit %d, want %d", code, ExitUser)
	}
	_, results := readList(t, out)
	if results == nil {
		t.Fatalf("no results:\n%s", out)
	}
	for _, want := range []string{"spec.activeRevison: unknown field", "spec.tags: must be a map, not array"} {
		if n := strings.Count(results.MustString(), want); n != 1 {
			t.Errorf("function results say %q %d times, want once:\n%s", want, n, results.MustString())
		}
	}
}
