package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// generateTree is a tree listing revision 1-31 only, with its
// IstioOperator: the default profile, as the istioctl fixtures were made.
func generateTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(treetest.Config("1-31")))
	treetest.Write(t, filepath.Join(dir, "1-31/istio-operator.yaml"), []byte(`apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  profile: default
  hub: docker.io/istio
  tag: 1.31.0
`))
	return dir
}

// stubIstioctl is a fake istioctl 1.31.0 whose manifest generate prints
// the file output, then stderr on its stderr, and exits with code.
func stubIstioctl(t *testing.T, output, stderr string, code int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "istioctl")
	script := fmt.Sprintf(`#!/bin/sh
case "$1" in
version) echo '{"clientVersion": {"version": "1.31.0"}}' ;;
manifest) cat %q; printf '%%s\n' %q >&2; exit %d ;;
*) exit 2 ;;
esac
`, output, stderr, code)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// hungIstioctl is a fake istioctl 1.31.0 whose manifest generate never
// ends.
func hungIstioctl(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "istioctl")
	script := "#!/bin/sh\ncase \"$1\" in\nversion) echo '{\"clientVersion\": {\"version\": \"1.31.0\"}}' ;;\n*) exec sleep 600 ;;\nesac\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGenerateCommand: generate prints its results as run does, shows
// istioctl's messages, runs the tree with --run, and on failure exits 1
// with nothing written, in text and in JSON.
func TestGenerateCommand(t *testing.T) {
	fixture, err := filepath.Abs(filepath.Join(repo, "testdata/istioctl/1-31/default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ok := stubIstioctl(t, fixture, "a note of istioctl", 0)

	t.Run("writes the source", func(t *testing.T) {
		dir := generateTree(t)
		code, out, errOut := call(t, NewRootCommand(), "", "generate", dir, "--revision", "1-31", "--istioctl", ok)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		want := fmt.Sprintf("info    1-31/istioctl-output.yaml: written: 39 objects by istioctl manifest generate -f 1-31/istio-operator.yaml --set revision=1-31 (%s, version 1.31.0)\n"+
			"info    next: istio-gitops run %s\n", ok, dir)
		if out != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
		}
		if errOut != "a note of istioctl\n" {
			t.Errorf("stderr must show istioctl's, it is %q", errOut)
		}
		sameFile(t, filepath.Join(dir, "1-31/istioctl-output.yaml"), fixture)
	})

	t.Run("--run", func(t *testing.T) {
		dir := generateTree(t)
		code, out, errOut := call(t, NewRootCommand(), "", "generate", dir, "--revision", "1-31", "--istioctl", ok, "--run", "-o", "json")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var doc RunOutput
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("stdout must be one JSON document: %v\n%s", err, out)
		}
		var msgs []string
		for _, r := range doc.Results {
			msgs = append(msgs, r.File+": "+r.Message)
		}
		mustHave(t, "the results", strings.Join(msgs, "\n"),
			"1-31/istioctl-output.yaml: written: 39 objects",
			": 1-31/generated: 23 files added, from 1-31/istioctl-output.yaml")
		if _, err := os.Stat(filepath.Join(dir, "1-31/generated/deployment/istiod-1-31.yaml")); err != nil {
			t.Errorf("the run must write 1-31/generated: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "1-31/istioctl-output.yaml")); !os.IsNotExist(err) {
			t.Errorf("the run must consume 1-31/istioctl-output.yaml: %v", err)
		}
	})

	t.Run("istioctl fails", func(t *testing.T) {
		dir := generateTree(t)
		before := treetest.Files(t, dir)
		bad := stubIstioctl(t, fixture, `Error: unknown field "spec.profil"`, 1)
		for _, format := range []string{"text", "json"} {
			code, out, errOut := call(t, NewRootCommand(), "", "generate", dir, "--revision", "1-31", "--istioctl", bad, "--run", "-o", format)
			msg := "manifest generate -f 1-31/istio-operator.yaml --set revision=1-31 failed with exit status 1; nothing was written"
			if code != ExitUser {
				t.Errorf("%s: exit %d, want 1", format, code)
			}
			mustHave(t, "stderr", errOut, `Error: unknown field "spec.profil"`+"\n", "error: "+bad+" "+msg)
			if format == "json" {
				var doc RunOutput
				if err := json.Unmarshal([]byte(out), &doc); err != nil || !strings.Contains(doc.Error, msg) {
					t.Errorf("stdout must be JSON with the error: %v\n%s", err, out)
				}
			} else if out != "" {
				t.Errorf("stdout must be empty, it is %q", out)
			}
			if d := treetest.Diff(treetest.Files(t, dir), before); d != "" {
				t.Errorf("nothing must be written:\n%s", d)
			}
		}
	})

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"generate", generateTree(t)}, `required flag(s) "revision" not set`},
		{[]string{"generate", "--revision", "1-31"}, "accepts 1 arg(s)"},
		{[]string{"generate", generateTree(t), "--revision", "1-31", "--istioctl", ok, "-o", "yaml"}, `--output: "yaml" must be one of text, json`},
		{[]string{"generate", generateTree(t), "--revision", "1-30", "--istioctl", ok}, `--revision: "1-30" must be listed in spec.revisions`},
		{[]string{"generate", generateTree(t), "--revision", "1-31", "--istioctl", ok, "--timeout", "0s"}, `--timeout: 0s must be more than 0`},
		{[]string{"generate", generateTree(t), "--revision", "1-31", "--istioctl", ok, "--timeout", "soon"}, `invalid argument "soon" for "--timeout"`},
		{[]string{"generate", generateTree(t), "--revision", "1-31", "--istioctl", hungIstioctl(t), "--timeout", "1s"},
			"manifest generate -f 1-31/istio-operator.yaml --set revision=1-31 did not finish within 1s (--timeout)"},
	} {
		code, _, errOut := call(t, NewRootCommand(), "", c.args...)
		if code != ExitUser || !strings.Contains(errOut, c.msg) {
			t.Errorf("%q: exit %d, want 1; stderr %q must contain %q", c.args, code, errOut, c.msg)
		}
	}
}

func sameFile(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s must equal %s:\n%s", got, want, treetest.LineDiff(g, w))
	}
}

func mustHave(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s must contain %q:\n%s", what, p, s)
		}
	}
}

// realIstioctl is the istioctl 1.31.0 `make test` passes ($ISTIOCTL).
func realIstioctl(t *testing.T) string {
	t.Helper()
	p := os.Getenv("ISTIOCTL")
	if p == "" {
		t.Skip("$ISTIOCTL is not set: `make istioctl` builds istioctl 1.31.0 into bin/tools, and `make test` passes it")
	}
	return p
}

// TestGenerateIstioctl: the real istioctl 1.31.0 on a minimal IstioOperator
// gives the fixture testdata/istioctl/1-31/default.yaml byte for byte
// (made with --set hub and tag, the same values), and --run lays it out.
func TestGenerateIstioctl(t *testing.T) {
	ic := realIstioctl(t)
	dir := generateTree(t)
	code, _, errOut := call(t, NewRootCommand(), "", "generate", dir, "--revision", "1-31", "--istioctl", ic)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	source := filepath.Join(dir, "1-31/istioctl-output.yaml")
	f, err := disk.ReadFile(source)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := f.Objects()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range objs {
		found = found || o.GetKind() == "Deployment" && o.GetNamespace() == "istio-system" && o.GetName() == "istiod-1-31"
	}
	if !found {
		t.Errorf("the output must hold Deployment istio-system/istiod-1-31")
	}
	sameFile(t, source, filepath.Join(repo, "testdata/istioctl/1-31/default.yaml"))

	code, out, errOut := call(t, NewRootCommand(), "", "generate", dir, "--revision", "1-31", "--istioctl", ic, "--run")
	if code != ExitOK {
		t.Fatalf("--run: exit %d: %s", code, errOut)
	}
	mustHave(t, "stdout", out, "1-31/generated: 23 files added, from 1-31/istioctl-output.yaml")
	deployment, err := os.ReadFile(filepath.Join(dir, "1-31/generated/deployment/istiod-1-31.yaml"))
	if err != nil || !strings.Contains(string(deployment), "kind: Deployment") {
		t.Errorf("--run must write 1-31/generated/deployment/istiod-1-31.yaml: %v", err)
	}

	// The examples' sources are istioctl's output of their IstioOperators.
	generatesExample(t, ic, "upgrade", "1-31")
}

// generatesExample: istioctl ic generates revision rev of an example as
// the example holds it.
func generatesExample(t *testing.T, ic, example, rev string) {
	t.Helper()
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(repo, "examples", example), dir)
	if code, _, errOut := call(t, NewRootCommand(), "", "generate", dir, "--revision", rev, "--istioctl", ic); code != ExitOK {
		t.Fatalf("examples/%s: exit %d: %s", example, code, errOut)
	}
	source := filepath.Join(rev, "istioctl-output.yaml")
	sameFile(t, filepath.Join(dir, source), filepath.Join(repo, "examples", example, source))
}

// TestGenerateIstioctlMismatch: the real istioctl 1.30.2 refuses to
// generate 1-31, and generates the bootstrap example's 1-30 as committed.
func TestGenerateIstioctlMismatch(t *testing.T) {
	old := filepath.Join(filepath.Dir(realIstioctl(t)), "istioctl-1.30.2")
	if _, err := os.Stat(old); err != nil {
		t.Skipf("%s is not there: `make fixtures` builds it", old)
	}
	dir := generateTree(t)
	before := treetest.Files(t, dir)
	code, _, errOut := call(t, NewRootCommand(), "", "generate", dir, "--revision", "1-31", "--istioctl", old)
	if code != ExitUser {
		t.Errorf("exit %d, want 1", code)
	}
	mustHave(t, "stderr", errOut, "error: istioctl "+old+` is Istio 1.30.2, but revision "1-31" is Istio 1.31 (from its name): generating 1-31 with a 1.30 istioctl`,
		"the istioctl must be 1.31: give one with --istioctl PATH")
	if d := treetest.Diff(treetest.Files(t, dir), before); d != "" {
		t.Errorf("nothing must be written:\n%s", d)
	}

	generatesExample(t, old, "bootstrap", "1-30")
}
