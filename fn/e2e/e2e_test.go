// Package e2e drives the istio-gitops binary end to end: every orchestrator
// (the binary, the container, kustomize fn run, kpt fn eval and render) on
// the bundled examples, and the other commands on real trees.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	k8syaml "sigs.k8s.io/yaml"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// repo is the repository root, relative to this package.
const repo = "../.."

// binary is the istio-gitops binary under test, in a folder any user may
// read, so it can run as the image's non-root user.
var binary string

// TestMain takes the binary `make test` built ($ISTIO_GITOPS), else builds
// one for this test run.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "istio-gitops-e2e-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		binary = filepath.Join(dir, "istio-gitops")
		if built := os.Getenv("ISTIO_GITOPS"); built != "" {
			err = copyExecutable(built, binary)
		} else {
			err = build(binary)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "istio-gitops binary:", err)
		os.Exit(1)
	}
	code := treetest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// build builds the binary at out, static as the release and the image are,
// with extra go build flags.
func build(out string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, "../istio-gitops")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// copyExecutable copies the binary `make test` built into a folder the
// image's user may read.
func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// A runner writes the tree at dir in place, the way one orchestrator does.
// A new way to run the function is one more entry of runners: every test
// of this file that walks the table (the examples, the stories, the
// profiles, the failures) picks it up.
type runner struct {
	name string
	// tool finds the external program the runner needs, if any.
	tool func() (string, error)
	run  func(t *testing.T, tool, dir string) (string, error)
}

// need is the runner's tool: the test is skipped without it, or fails in
// CI where `make test` must have installed it.
func (r runner) need(t *testing.T) string {
	t.Helper()
	if r.tool == nil {
		return ""
	}
	p, err := r.tool()
	if err != nil {
		skipOrFail(t, err)
	}
	return p
}

var runners = []runner{
	{name: "binary", run: func(t *testing.T, _, dir string) (string, error) {
		return command(t, dir, nil, binary, "run", dir)
	}},
	{name: "container", run: runContainer},
	{name: "kustomize-fn-run", tool: kustomizeTool, run: func(t *testing.T, tool, dir string) (string, error) {
		// The config's function annotation says exec: {path: istio-gitops}.
		return command(t, dir, []string{"PATH=" + filepath.Dir(binary) + ":" + os.Getenv("PATH")},
			tool, "fn", "run", dir, "--enable-exec")
	}},
	{name: "kustomize-fn-run-exec-path", tool: kustomizeTool, run: func(t *testing.T, tool, dir string) (string, error) {
		// The function is named on the command line; it finds its config
		// among the resources.
		return command(t, dir, nil, tool, "fn", "run", dir, "--enable-exec", "--exec-path", binary)
	}},
	{name: "kpt-fn-eval", tool: kptTool, run: func(t *testing.T, tool, dir string) (string, error) {
		return command(t, dir, nil, tool, "fn", "eval", dir, "--exec", binary)
	}},
	{name: "kpt-fn-render", tool: kptTool, run: func(t *testing.T, tool, dir string) (string, error) {
		kptfile(t, dir, "exec: "+binary)
		return command(t, dir, nil, tool, "fn", "render", dir, "--allow-exec")
	}},
	// The image (image_test.go), as users run it.
	{name: "kpt-fn-eval-image", tool: withEngine(kptTool), run: runKptEvalImage},
	{name: "kpt-fn-render-image", tool: withEngine(kptTool), run: runKptRenderImage},
	{name: "kustomize-fn-run-container", tool: withEngine(kustomizeTool), run: runKustomizeContainer},
}

// kptfile writes the Kptfile whose pipeline runs the function fn (exec:
// or image:) with the tree's config, replacing another runner's.
func kptfile(t *testing.T, dir, fn string) {
	treetest.Write(t, filepath.Join(dir, "Kptfile"), []byte(fmt.Sprintf(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: mesh
  annotations:
    config.kubernetes.io/local-config: "true"
pipeline:
  mutators:
  - %s
    configPath: istio-gitops.yaml
`, fn)))
}

func command(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runContainer runs the binary as the image does: as user 65532, the
// ResourceList on stdin and out on stdout; reading and writing the folder
// is the orchestrator's part, done here with kyaml as kustomize does.
func runContainer(t *testing.T, _, dir string) (string, error) {
	rw := &kio.LocalPackageReadWriter{PackagePath: dir, MatchFilesGlob: kio.MatchAll}
	items, err := rw.Read()
	if err != nil {
		return "", err
	}
	var in bytes.Buffer
	if err := (kio.ByteWriter{Writer: &in, WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion,
		KeepReaderAnnotations: true}).Write(items); err != nil {
		return "", err
	}
	cmd := exec.Command(binary)
	cmd.Dir = "/"
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	}
	if err := cmd.Run(); err != nil {
		return stderr.String(), err
	}
	nodes, err := (&kio.ByteReader{Reader: &out, PreserveSeqIndent: true}).Read()
	if err != nil {
		return "", err
	}
	if err := kioutil.DefaultPathAndIndexAnnotation("", nodes); err != nil {
		return "", err
	}
	return stderr.String(), rw.Write(nodes)
}

// errMissing is a tool that is not installed; required says CI must have
// it.
type errMissing struct {
	msg      string
	required bool
}

func (e errMissing) Error() string { return e.msg }

// skipOrFail skips the test for a missing tool, or fails it in CI when the
// tool is one `make test` installs.
func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if m, ok := err.(errMissing); ok && m.required && os.Getenv("CI") != "" {
		t.Fatalf("%v: it must be installed in CI", err)
	}
	t.Skip(err)
}

func kustomizeTool() (string, error) {
	if p := os.Getenv("KUSTOMIZE"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("kustomize"); err == nil {
		return p, nil
	}
	return "", errMissing{"kustomize not found: `make test` installs the pinned version", true}
}

func kptTool() (string, error) {
	p, err := exec.LookPath("kpt")
	if err != nil {
		return "", errMissing{"kpt not found on PATH: kpt end-to-end tests skipped", false}
	}
	return p, nil
}

var golden = filepath.Join(repo, "testdata/golden")

// TestRunners writes the bundled examples with every orchestrator: the
// bootstrap of 1-30, then the upgrade that adds 1-31 (which reads the
// bootstrap's tree and writes 1-31's beside it). Each must give the golden
// trees byte for byte and change nothing when run again. The binary alone
// runs both steps; the orchestrators, whose runs take seconds each, the
// upgrade over the binary's bootstrap tree.
func TestRunners(t *testing.T) {
	for i, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			tool := r.need(t)
			dir := t.TempDir()
			steps := []struct{ example, want string }{
				{"bootstrap", "bootstrap"},
				{"upgrade", "add-1-31"},
			}
			if i > 0 {
				treetest.Copy(t, filepath.Join(golden, "bootstrap", "want"), dir)
				steps = steps[1:]
			}
			for _, s := range steps {
				treetest.Copy(t, filepath.Join(repo, "examples", s.example), dir)
				if out, err := r.run(t, tool, dir); err != nil {
					t.Fatalf("%s: %v\n%s", s.example, err, out)
				}
				compare(t, dir, filepath.Join(golden, s.want, "want"))
				before := treetest.Files(t, dir)
				if out, err := r.run(t, tool, dir); err != nil {
					t.Fatalf("%s again: %v\n%s", s.example, err, out)
				}
				if d := treetest.Diff(treetest.Files(t, dir), before); d != "" {
					t.Errorf("%s: second run changed the tree:\n%s", s.example, d)
				}
			}
		})
	}
}

// compare checks a tree against a golden one, leaving out the Kptfile a
// kpt pipeline needs.
func compare(t *testing.T, dir, want string) {
	t.Helper()
	got := treetest.Files(t, dir)
	delete(got, "Kptfile")
	if d := treetest.Diff(got, treetest.Files(t, want)); d != "" {
		t.Errorf("tree differs from %s:\n%s", want, d)
	}
}

// TestRunnersFailAtomically: a bad config fails every orchestrator with a
// message naming the field, and nothing is written.
func TestRunnersFailAtomically(t *testing.T) {
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			tool := r.need(t)
			dir := t.TempDir()
			treetest.Copy(t, filepath.Join(repo, "examples/bootstrap"), dir)
			cfg := filepath.Join(dir, "istio-gitops.yaml")
			b, _ := os.ReadFile(cfg)
			treetest.Write(t, cfg, bytes.Replace(b, []byte("- name: 1-30"), []byte("- name: \"1.30\""), 1))
			before := treetest.Files(t, dir)
			out, err := r.run(t, tool, dir)
			if err == nil {
				t.Fatalf("run succeeded on a bad config:\n%s", out)
			}
			if !strings.Contains(out, `spec.revisions[0].name:`) || !strings.Contains(out, `must not contain a dot`) {
				t.Errorf("message does not name the field:\n%s", out)
			}
			after := treetest.Files(t, dir)
			delete(after, "Kptfile")
			if d := treetest.Diff(after, before); d != "" {
				t.Errorf("a failed run wrote:\n%s", d)
			}
		})
	}
}

// TestMakeDemo: the README's first command works and writes the upgrade's
// golden tree.
func TestMakeDemo(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not found")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	out, err := command(t, repo, nil, "make", "demo", "DEMO="+dir)
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, out)
	}
	for _, want := range []string{"1-31/generated: 23 files added", "1-30         1.30.2     *       *"} {
		if !strings.Contains(out, want) {
			t.Errorf("make demo does not say %q:\n%s", want, out)
		}
	}
	compare(t, dir, filepath.Join(golden, "add-1-31", "want"))
}

// TestSubcommands drives the binary's other commands on real trees:
// status in both formats, migrate with a report, patch import.
func TestSubcommands(t *testing.T) {
	story := filepath.Join(golden, "story", "2-add-1-31")
	out, err := command(t, ".", nil, binary, "status", story)
	if err != nil || !regexp.MustCompile(`(?m)^1-31 +1\.31\.0 +prod-canary +0 +0$`).MatchString(out) {
		t.Errorf("status: %v\n%s", err, out)
	}
	out, err = command(t, ".", nil, binary, "status", story, "--format", "markdown")
	if err != nil || !strings.Contains(out, "```mermaid") || !strings.Contains(out, "tag_prod_stable([\"tag prod-stable\"]) --> rev_1_30") {
		t.Errorf("status --format markdown: %v\n%s", err, out)
	}

	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(repo, "examples/migrate/sample"), dir)
	report := filepath.Join(t.TempDir(), "payments.md")
	out, err = command(t, ".", nil, binary, "migrate", dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", "payments", "--report", report)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(b), "payments") {
		t.Errorf("migrate report: %v\n%s", err, b)
	}
	changed := treetest.Diff(treetest.Files(t, dir), treetest.Files(t, filepath.Join(repo, "examples/migrate/sample")))
	if !strings.Contains(changed, "payments") || strings.Contains(changed, "search") {
		t.Errorf("migrate --owner payments changed:\n%s", changed)
	}

	out, err = command(t, ".", nil, binary, "patch", "import", filepath.Join(repo, "testdata/patch/1-30/failure-validatingwebhookconfiguration.patch"), "--revision", "1-30")
	if err != nil || !strings.Contains(out, "kind: GitPatch") || !strings.Contains(out, "a/generated/validatingwebhookconfiguration/") {
		t.Errorf("patch import: %v\n%s", err, out)
	}
}

// TestNamespacesElsewhere: Namespace manifests kept outside the tree
// (--namespaces) count for the retire guard and the status, and are never
// written; without them the guard sees the tree alone.
func TestNamespacesElsewhere(t *testing.T) {
	tree := t.TempDir()
	treetest.Copy(t, filepath.Join(golden, "story", "2-add-1-31"), tree)
	teams := t.TempDir()
	ns := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n  labels:\n    istio.io/rev: 1-30\n"
	treetest.Write(t, filepath.Join(teams, "payments", "namespace.yaml"), []byte(ns))

	out, err := command(t, ".", nil, binary, "status", tree, "--namespaces", teams)
	if err != nil || !strings.Contains(out, "istio.io/rev=1-30 -> 1-30: 1 (payments)") || !regexp.MustCompile(`(?m)^1-30 .* 1 +0$`).MatchString(out) {
		t.Errorf("status --namespaces: %v\n%s", err, out)
	}
	retire, err := os.ReadFile(filepath.Join(golden, "story", "7-retire-1-30", "istio-gitops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, filepath.Join(tree, "istio-gitops.yaml"), retire)
	before := treetest.Files(t, tree)
	out, err = command(t, ".", nil, binary, "run", tree, "--namespaces", filepath.Join(teams, "payments", "namespace.yaml"))
	if err == nil || !strings.Contains(out, filepath.Join(teams, "payments", "namespace.yaml")+`: Namespace "payments" still selects revision "1-30"`) {
		t.Errorf("run --namespaces: want the retirement refused, naming the file: %v\n%s", err, out)
	}
	if d := treetest.Diff(treetest.Files(t, tree), before); d != "" {
		t.Errorf("a refused retirement wrote:\n%s", d)
	}
	if _, err := command(t, ".", nil, binary, "run", tree); err != nil {
		t.Errorf("without --namespaces the guard sees the tree alone, where nothing uses 1-30: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(teams, "payments", "namespace.yaml")); err != nil || string(b) != ns {
		t.Errorf("the namespaces kept elsewhere were written: %v\n%s", err, b)
	}
}

// TestFluxExample: the Flux example's config writes a tree whose root
// deploys the root's files and flux/'s Kustomizations, with the example's
// passthroughs; the cluster-side Kustomization of examples/flux points at
// that root through the config's source.
func TestFluxExample(t *testing.T) {
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(repo, "examples/bootstrap"), dir)
	treetest.CopyFile(t, filepath.Join(repo, "examples/flux/istio-gitops.yaml"), filepath.Join(dir, "istio-gitops.yaml"))
	if out, err := command(t, ".", nil, binary, "run", dir); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	files := treetest.Files(t, dir)
	if got, want := string(files["kustomization.yaml"]), "resources:\n- flux\n- istio-system.yaml\n"; !strings.HasSuffix(got, want) {
		t.Errorf("the root must deploy its own files and flux/:\n%s", got)
	}
	for _, f := range []string{"flux/common.yaml", "flux/1-30.yaml"} {
		if s := string(files[f]); !strings.Contains(s, "  timeout: 5m\n") || !strings.Contains(s, "  wait: true\n") {
			t.Errorf("%s lacks the passthroughs:\n%s", f, s)
		}
	}
	b, err := os.ReadFile(filepath.Join(repo, "examples/flux/cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ks struct {
		Kind string `json:"kind"`
		Spec struct {
			Path      string `json:"path"`
			Prune     bool   `json:"prune"`
			SourceRef struct {
				Kind, Name string
			} `json:"sourceRef"`
		} `json:"spec"`
	}
	found := false
	for _, doc := range strings.Split(string(b), "\n---\n") {
		if err := k8syaml.Unmarshal([]byte(doc), &ks); err != nil {
			t.Fatal(err)
		}
		if ks.Kind == "Kustomization" {
			found = true
			if ks.Spec.Path != "./clusters/prod/istio" || !ks.Spec.Prune || ks.Spec.SourceRef.Kind != "GitRepository" || ks.Spec.SourceRef.Name != "flux-system" {
				t.Errorf("examples/flux/cluster.yaml's Kustomization must point at the config's path and source: %+v", ks.Spec)
			}
		}
	}
	if !found {
		t.Error("examples/flux/cluster.yaml holds no Kustomization")
	}
}
