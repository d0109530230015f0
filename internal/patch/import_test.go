package patch

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportCommand(t *testing.T) {
	golden1 := filepath.Join(golden, "1-30", "failure-validatingwebhookconfiguration.patch")
	diff := string(readFile(t, golden1))

	// From stdin, the name comes from the target file.
	out, err := runImport(t, diff, "-", "--revision", "1-30")
	if err != nil {
		t.Fatal(err)
	}
	if p := mustParse(t, readOne(t, out)); p.Name != "validatingwebhookconfiguration-istio-validator-1-30-istio-system" {
		t.Errorf("name from stdin: %q", p.Name)
	}
	// --name wins over the file name.
	out, err = runImport(t, "", golden1, "--revision", "1-30", "--name", "fail-closed")
	if err != nil {
		t.Fatal(err)
	}
	if p := mustParse(t, readOne(t, out)); p.Name != "fail-closed" {
		t.Errorf("--name: %q", p.Name)
	}
	// --shared names the revision the diff was made against.
	out, err = runImport(t, "", golden1, "--revision", "1-30", "--shared")
	if err != nil {
		t.Fatal(err)
	}
	if p := mustParse(t, readOne(t, out)); p.MadeFor != "1-30" || !strings.Contains(string(out), "  revision: 1-30\n") {
		t.Errorf("--shared: spec.revision %q:\n%s", p.MadeFor, out)
	}
	// A format-patch file name loses its sequence number.
	mail := filepath.Join(t.TempDir(), "0001-Validator-fails-closed.patch")
	writeFile(t, mail, []byte(diff))
	out, err = runImport(t, "", mail, "--revision", "1-30")
	if err != nil {
		t.Fatal(err)
	}
	if p := mustParse(t, readOne(t, out)); p.Name != "validator-fails-closed" {
		t.Errorf("format-patch name: %q", p.Name)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{golden1}, `required flag(s) "revision" not set`},
		{[]string{golden1, "--revision", "1.30"}, `revision "1.30" must be a revision name such as "1-31"`},
		{[]string{golden1, "--revision", "1-30", "--name", "Fail_Closed"}, `name "Fail_Closed" must be a DNS-1123 subdomain`},
		{[]string{filepath.Join(t.TempDir(), "missing.patch"), "--revision", "1-30"}, "missing.patch: no such file"},
		{[]string{"-", "--revision", "1-31"}, `file "1-30/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml" must target a file under 1-31/generated/`},
		{[]string{golden1, golden1, "--revision", "1-30"}, "accepts 1 arg(s), received 2"},
	} {
		out, err := runImport(t, diff, tc.args...)
		mustContain(t, err, tc.want)
		if len(out) != 0 {
			t.Errorf("%q: printed %q on error", tc.args, out)
		}
	}
	_, err = Import(strings.NewReader("\n\n"), "1-30", "")
	mustContain(t, err, "the diff must not be empty")
}

func TestNameFromFile(t *testing.T) {
	for in, want := range map[string]string{
		"failure-validatingwebhookconfiguration.patch": "failure-validatingwebhookconfiguration",
		"dir/0001-Fail_closed on validation.patch":     "fail-closed-on-validation",
		"Sidecar.Template.diff":                        "sidecar-template",
		"0001-.patch":                                  "",
		"2024-fix.patch":                               "fix",
		"-":                                            "",
	} {
		if got := NameFromFile(in); got != want {
			t.Errorf("NameFromFile(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestImportWhitespace: a diff keeps its meaning when its blanks are
// dropped to fit a literal block scalar, and still round-trips when they
// cannot be.
func TestImportWhitespace(t *testing.T) {
	file := "apiVersion: v1\ndata:\n  script: |\n    one\n\n    two\nkind: ConfigMap\nmetadata:\n  name: x\n"
	// git writes the empty line of the block scalar as a context line " ".
	diff := "diff --git a/generated/configmap/x.yaml b/generated/configmap/x.yaml\n--- a/generated/configmap/x.yaml\n+++ b/generated/configmap/x.yaml\n" +
		"@@ -3,5 +3,5 @@ data:\n   script: |\n     one\n \n-    two\n+    three\n kind: ConfigMap\n"
	files := map[string][]byte{"1-31/generated/configmap/x.yaml": []byte(file)}
	node, err := Import(strings.NewReader(diff), "1-31", "script")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := FileBytes(node)
	if !strings.Contains(string(b), "  diff: |\n") || strings.Contains(string(b), " \n") {
		t.Errorf("spec.diff must be a literal block without trailing blanks:\n%s", b)
	}
	changes, err := mustParse(t, readOne(t, b)).Apply("1-31", files)
	if err != nil || !strings.Contains(string(changes[0].Content), "    one\n\n    three\n") {
		t.Errorf("the imported patch must apply: %v", err)
	}

	// A hunk line ending in a blank is content: kept, spec.diff is written
	// double-quoted, and reads back the same.
	trailing := strings.Replace(diff, "+    three\n", "+    three \n", 1)
	node, err = Import(strings.NewReader(trailing), "1-31", "script")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = FileBytes(node)
	p := mustParse(t, readOne(t, b))
	if !strings.Contains(string(b), `  diff: "diff --git`) || !strings.Contains(p.Diff, "+    three \n") {
		t.Errorf("spec.diff must keep the blank:\n%s", b)
	}
	changes, err = p.Apply("1-31", files)
	if err != nil || !strings.Contains(string(changes[0].Content), "    three \n") {
		t.Errorf("the imported patch must apply: %v", err)
	}
}

// TestCheckNotRendered: import refuses a patch of a file that holds an
// object rendered from the config, as read where the command runs, and
// takes one whose files are not there or not rendered.
func TestCheckNotRendered(t *testing.T) {
	node, err := Import(strings.NewReader(string(readFile(t, filepath.Join(golden, "1-30", "failure-validatingwebhookconfiguration.patch")))), "1-30", "fail-closed")
	if err != nil {
		t.Fatal(err)
	}
	target := "1-30/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml"
	read := func(body string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if p != target {
				return nil, fmt.Errorf("no file %s", p)
			}
			return []byte(body), nil
		}
	}
	for _, body := range []string{"", "metadata:\n  name: istio-validator-1-30-istio-system\n"} {
		if err := checkNotRendered(node, "1-30", read(body)); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
	rendered := "metadata:\n  annotations:\n    fn.istio-gitops.dev/rendered-from: \"spec.gateways.ingress\"\n"
	err = checkNotRendered(node, "1-30", read(rendered))
	if want := `file "` + target + `" is rendered from the config (spec.gateways.ingress), not generated from istioctl output`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}
