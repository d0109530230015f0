package generate_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/generate"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// manifests is what the stub prints for manifest generate: two objects.
const manifests = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: istiod-1-31
  namespace: istio-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod-1-31
  namespace: istio-system
`

const operator = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  profile: default
`

// stub is a fake istioctl: a shell script printing version as its
// clientVersion.version, and for manifest generate printing output and
// stderr, then exiting with code. It records the folder it ran in and its
// arguments in its file "called".
type stub struct {
	version, output, stderr string
	code                    int
	// versionJSON replaces the whole output of istioctl version.
	versionJSON string
	// before are shell commands run first for version and for manifest.
	beforeVersion, beforeManifest string
}

// write writes the stub into a folder of its own and returns its path.
func (s stub) write(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
dir=$(dirname "$0")
case "$1" in
version)
	%s
	cat "$dir/version.json" ;;
manifest)
	%s
	pwd -P > "$dir/called"
	echo "$@" >> "$dir/called"
	cat "$dir/stderr" >&2
	cat "$dir/output"
	exit %d ;;
*)
	echo "stub istioctl: unexpected $*" >&2
	exit 2 ;;
esac
`, s.beforeVersion, s.beforeManifest, s.code)
	vj := s.versionJSON
	if vj == "" {
		vj = fmt.Sprintf(`{"clientVersion": {"version": %q, "revision": "unknown"}}`+"\n", s.version)
	}
	for name, data := range map[string]string{"version.json": vj, "output": s.output, "stderr": s.stderr} {
		treetest.Write(t, filepath.Join(dir, name), []byte(data))
	}
	p := filepath.Join(dir, "istioctl")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// called is what the stub at p recorded: the folder it ran manifest
// generate in and its arguments; "" when it was not asked to generate.
func called(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(p), "called"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// config is an IstioGitOps listing revs (YAML list items, indented).
func config(revs string) string {
	return treetest.ConfigHead + revs
}

// tree writes files into a new folder.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		treetest.Write(t, filepath.Join(dir, name), []byte(data))
	}
	return dir
}

// oneRevision is a tree listing 1-30 and 1-31, with 1-31's IstioOperator.
func oneRevision(t *testing.T) string {
	return tree(t, map[string]string{
		"istio-gitops.yaml":        config("  - name: 1-30\n  - name: 1-31\n"),
		"1-31/istio-operator.yaml": operator,
	})
}

func run(t *testing.T, dir, rev, istioctl string) (framework.Results, string, error) {
	t.Helper()
	var stderr bytes.Buffer
	res, err := generate.Run(context.Background(), generate.Options{
		Dir: dir, Revision: rev, Istioctl: generate.Exec{Path: istioctl}, Stderr: &stderr,
	})
	return res, stderr.String(), err
}

func mustContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s must contain %q:\n%s", what, p, s)
		}
	}
}

// unchanged fails unless the tree at dir holds exactly before.
func unchanged(t *testing.T, dir string, before map[string][]byte) {
	t.Helper()
	if d := treetest.Diff(treetest.Files(t, dir), before); d != "" {
		t.Errorf("the tree must be left as it was:\n%s", d)
	}
}

// TestGenerate: istioctl runs in the tree's root on the revision's
// IstioOperator, its messages are shown, and its output replaces the
// revision's source.
func TestGenerate(t *testing.T) {
	dir := oneRevision(t)
	treetest.Write(t, filepath.Join(dir, "1-31/istioctl-output.yaml"), []byte("# an earlier output\n"))
	ic := stub{version: "1.31.0", output: manifests, stderr: "a warning of istioctl\n"}.write(t)
	res, stderr, err := run(t, dir, "1-31", ic)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "1-31/istioctl-output.yaml"))
	if err != nil || string(got) != manifests {
		t.Errorf("1-31/istioctl-output.yaml must hold istioctl's output, it holds %q (%v)", got, err)
	}
	root, _ := filepath.EvalSymlinks(dir)
	if c := called(t, ic); c != root+"\nmanifest generate -f 1-31/istio-operator.yaml --set revision=1-31\n" {
		t.Errorf("istioctl must run in the tree's root as manifest generate -f 1-31/istio-operator.yaml --set revision=1-31, it ran:\n%s", c)
	}
	mustContain(t, "stderr", stderr, "a warning of istioctl")
	if len(res) != 1 || res[0].Severity != framework.Info || res[0].File == nil || res[0].File.Path != "1-31/istioctl-output.yaml" {
		t.Fatalf("want one info result about 1-31/istioctl-output.yaml, got %v", res)
	}
	mustContain(t, "the result", res[0].Message, "written: 2 objects by istioctl manifest generate -f 1-31/istio-operator.yaml --set revision=1-31 ("+ic+", version 1.31.0)")
	if left, _ := filepath.Glob(filepath.Join(dir, "1-31", ".istio-gitops-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestGenerateSource: the revision's source may be elsewhere, and the
// config in a folder below the one given: paths are the tree's, results
// name files from the folder given.
func TestGenerateSource(t *testing.T) {
	dir := tree(t, map[string]string{
		"prod/istio/istio-gitops.yaml":        config("  - name: 1-31\n    source: sources/1-31.yaml\n"),
		"prod/istio/1-31/istio-operator.yaml": operator,
	})
	ic := stub{version: "1.31.2", output: manifests}.write(t)
	// A relative path to istioctl is taken from here, not from the tree.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, ic)
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := run(t, dir, "1-31", rel)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "prod/istio/sources/1-31.yaml")); err != nil || string(b) != manifests {
		t.Errorf("prod/istio/sources/1-31.yaml must hold istioctl's output: %q %v", b, err)
	}
	if res[0].File.Path != "prod/istio/sources/1-31.yaml" {
		t.Errorf("the result must name prod/istio/sources/1-31.yaml, it names %s", res[0].File.Path)
	}
}

// TestGenerateRefused: each failure writes nothing and says why; where
// istioctl ran, its messages are shown.
func TestGenerateRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // replaces oneRevision's tree
		rev   string
		stub  stub
		// ran: manifest generate was run (the version check passed)
		ran    bool
		want   []string
		stderr string
	}{
		{name: "istioctl fails", rev: "1-31", ran: true,
			stub:   stub{version: "1.31.0", output: "apiVersion: v1\n", stderr: "Error: unknown field \"spec.foo\"\n", code: 1},
			want:   []string{"manifest generate -f 1-31/istio-operator.yaml --set revision=1-31 failed with exit status 1", "nothing was written"},
			stderr: `Error: unknown field "spec.foo"`},
		{name: "istioctl exits 3", rev: "1-31", ran: true,
			stub: stub{version: "1.31.0", output: manifests, code: 3},
			want: []string{"exit status 3", "nothing was written"}},
		{name: "empty output", rev: "1-31", ran: true,
			stub: stub{version: "1.31.0", output: ""},
			want: []string{"printed no objects", "must not replace 1-31/istioctl-output.yaml", "nothing was written"}},
		{name: "only separators", rev: "1-31", ran: true,
			stub: stub{version: "1.31.0", output: "---\n---\n"},
			want: []string{"printed no objects"}},
		{name: "no istiod", rev: "1-31", ran: true,
			stub: stub{version: "1.31.0", output: strings.SplitAfter(manifests, "---\n")[0]},
			want: []string{"manifest generate -f 1-31/istio-operator.yaml --set revision=1-31 printed no Deployment istio-system/istiod-1-31", `revision "1-31"'s output must hold its control plane`, "nothing was written"}},
		{name: "istiod in another namespace", rev: "1-31", ran: true,
			stub: stub{version: "1.31.0", output: strings.ReplaceAll(manifests, "istio-system", "mesh")},
			want: []string{"printed no Deployment istio-system/istiod-1-31"}},
		{name: "another revision's objects", rev: "1-31", ran: true,
			stub: stub{version: "1.31.0", output: manifests + "---\n" + strings.ReplaceAll(manifests, "1-31", "1-30") +
				"  labels:\n    istio.io/rev: 1-30\n"},
			want: []string{"printed Deployment istio-system/istiod-1-30, labelled istio.io/rev=1-30", `revision "1-31"'s output must hold only its own objects`, "nothing was written"}},
		{name: "another revision's objects in a List", rev: "1-31", ran: true,
			stub: stub{version: "1.31.0", output: manifests + "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: istiod-1-30, namespace: istio-system, labels: {istio.io/rev: 1-30}}}\n"},
			want: []string{"printed Service istio-system/istiod-1-30, labelled istio.io/rev=1-30"}},
		{name: "not YAML", rev: "1-31", ran: true,
			stub: stub{version: "1.31.0", output: "Usage: istioctl [flags]\n\tfoo: [\n"},
			want: []string{"must print YAML manifests", "nothing was written"}},
		{name: "a 1.30 istioctl for 1-31", rev: "1-31",
			stub: stub{version: "1.30.2", output: manifests},
			want: []string{`istioctl `, ` is Istio 1.30.2, but revision "1-31" is Istio 1.31 (from its name)`,
				"generating 1-31 with a 1.30 istioctl", "the istioctl must be 1.31", "--istioctl PATH"}},
		{name: "a 1.32 istioctl for 1-31", rev: "1-31",
			stub: stub{version: "1.32.0", output: manifests},
			want: []string{"is Istio 1.32.0", "is Istio 1.31 (from its name)"}},
		{name: "the config's version", rev: "1-31",
			files: map[string]string{
				"istio-gitops.yaml":        config("  - name: 1-31\n    version: 1.31.0\n"),
				"1-31/istio-operator.yaml": operator,
			},
			stub: stub{version: "1.31.1", output: manifests},
			want: []string{"is Istio 1.31.1", `revision "1-31" is Istio 1.31.0 (spec.revisions[0].version)`,
				"to move 1-31 to 1.31.1 on purpose, set spec.revisions[0].version: 1.31.1"}},
		{name: "the recorded version", rev: "1-31",
			files: map[string]string{
				"istio-gitops.yaml":         config("  - name: 1-31\n"),
				"1-31/istio-operator.yaml":  operator,
				"1-31/generated/state.yaml": state("1-31", "1.31.0"),
			},
			stub: stub{version: "1.30.2", output: manifests},
			want: []string{`revision "1-31" is Istio 1.31.0 (recorded in 1-31/generated/state.yaml)`, "the istioctl must be 1.31.0"}},
		{name: "a version that is not one", rev: "1-31",
			stub: stub{versionJSON: "istioctl version 1.31.0\n"},
			want: []string{"must print a JSON document with clientVersion.version", "istioctl version 1.31.0"}},
		{name: "no operator file", rev: "1-30",
			stub: stub{version: "1.30.2", output: manifests},
			want: []string{"1-30/istio-operator.yaml must exist", `revision "1-30" is generated from its IstioOperator there`}},
		{name: "revision not listed", rev: "1-32",
			stub: stub{version: "1.32.0", output: manifests},
			want: []string{`--revision: "1-32" must be listed in spec.revisions of IstioGitOps "prod" (istio-gitops.yaml), which lists ["1-30" "1-31"]`}},
		{name: "no config", rev: "1-31",
			files: map[string]string{"1-31/istio-operator.yaml": operator},
			stub:  stub{version: "1.31.0", output: manifests},
			want:  []string{"no IstioGitOps config found"}},
		{name: "two configs", rev: "1-31",
			files: map[string]string{
				"a/istio-gitops.yaml": config("  - name: 1-31\n"),
				"b/istio-gitops.yaml": config("  - name: 1-31\n"),
			},
			stub: stub{version: "1.31.0", output: manifests},
			want: []string{"must hold one IstioGitOps config, not 2 (a/istio-gitops.yaml, b/istio-gitops.yaml)"}},
		{name: "a bad config", rev: "1-31",
			files: map[string]string{"istio-gitops.yaml": config("  - name: 1-31\n    versoin: 1.31.0\n")},
			stub:  stub{version: "1.31.0", output: manifests},
			want:  []string{"istio-gitops.yaml", "spec.revisions[0].versoin"}},
		{name: "a symlinked operator file", rev: "1-31",
			files: map[string]string{"istio-gitops.yaml": config("  - name: 1-31\n"), "op.yaml": operator},
			stub:  stub{version: "1.31.0", output: manifests},
			want:  []string{"1-31/istio-operator.yaml is a symbolic link"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := oneRevision(t)
			if tc.files != nil {
				dir = tree(t, tc.files)
			}
			if tc.name == "a symlinked operator file" {
				if err := os.MkdirAll(filepath.Join(dir, "1-31"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("../op.yaml", filepath.Join(dir, "1-31/istio-operator.yaml")); err != nil {
					t.Fatal(err)
				}
			}
			before := treetest.Files(t, dir)
			ic := tc.stub.write(t)
			_, stderr, err := run(t, dir, tc.rev, ic)
			if err == nil {
				t.Fatal("must fail")
			}
			mustContain(t, "the error", err.Error(), tc.want...)
			mustContain(t, "stderr", stderr, tc.stderr)
			if ran := called(t, ic) != ""; ran != tc.ran {
				t.Errorf("manifest generate run: %v, want %v", ran, tc.ran)
			}
			unchanged(t, dir, before)
		})
	}
}

func state(rev, version string) string {
	return fmt.Sprintf(`apiVersion: fn.istio-gitops.dev/v1alpha1
kind: RevisionState
metadata:
  name: %s
  annotations:
    config.kubernetes.io/local-config: "true"
spec:
  version: %s
  files: {}
`, rev, version)
}

// TestGenerateVersions: which istioctl versions generate which revision.
func TestGenerateVersions(t *testing.T) {
	for _, tc := range []struct {
		name, revs, state, istioctl string
		ok                          bool
		warning                     string
	}{
		{name: "the name's minor, any patch", revs: "  - name: 1-31\n", istioctl: "1.31.4", ok: true},
		{name: "the name's minor, with a patch in the name", revs: "  - name: 1-31-2\n", istioctl: "1.31.0", ok: true},
		{name: "the config's version", revs: "  - name: 1-31\n    version: 1.31.1\n", istioctl: "1.31.1", ok: true},
		{name: "the config's version before the record's", revs: "  - name: 1-31\n    version: 1.31.1\n", state: "1.31.0", istioctl: "1.31.1", ok: true},
		{name: "the config's version before the name's", revs: "  - name: 1-31\n    version: 1.30.2\n", istioctl: "1.30.2", ok: true},
		{name: "a major.minor version", revs: "  - name: 1-31\n    version: \"1.31\"\n", istioctl: "1.31.7", ok: true},
		{name: "the record's version", revs: "  - name: 1-31\n", state: "1.31.0", istioctl: "1.31.0", ok: true},
		{name: "a patch upgrade in place must be asked for", revs: "  - name: 1-31\n", state: "1.31.0", istioctl: "1.31.1"},
		{name: "the record's version before the name's", revs: "  - name: 1-31\n", state: "1.30.2", istioctl: "1.31.0"},
		{name: "a build from source", revs: "  - name: 1-31\n", istioctl: "unknown", ok: true,
			warning: `reports its version as "unknown" (a build from source without a version stamp): it was not checked against revision "1-31"'s Istio 1.31 (from its name); make sure it is an istioctl 1.31`},
		{name: "a build from source, the config's version", revs: "  - name: 1-31\n    version: 1.31.0\n", istioctl: "unknown", ok: true,
			warning: `it was not checked against revision "1-31"'s Istio 1.31.0 (spec.revisions[0].version)`},
		{name: "a name without a version", revs: "  - name: canary\n", istioctl: "1.31.0", ok: true,
			warning: `revision "canary" names no Istio version (set spec.revisions[0].version to have the istioctl checked)`},
		{name: "a name without a version, the config's", revs: "  - name: canary\n    version: 1.31.0\n", istioctl: "1.30.2"},
		{name: "a dev build", revs: "  - name: 1-31\n", istioctl: "1.31-alpha.f00", ok: true},
		{name: "a dev build of another minor", revs: "  - name: 1-31\n", istioctl: "1.32-alpha.f00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(tc.revs, "\n", 2)[0], "  - name:"))
			files := map[string]string{
				"istio-gitops.yaml":          config(tc.revs),
				rev + "/istio-operator.yaml": operator,
			}
			if tc.state != "" {
				files[rev+"/generated/state.yaml"] = state(rev, tc.state)
			}
			dir := tree(t, files)
			res, _, err := run(t, dir, rev, stub{version: tc.istioctl, output: strings.ReplaceAll(manifests, "1-31", rev)}.write(t))
			if tc.ok != (err == nil) {
				t.Fatalf("ok: %v, want %v (%v)", err == nil, tc.ok, err)
			}
			var warnings []string
			for _, r := range res {
				if r.Severity == framework.Warning {
					warnings = append(warnings, r.Message)
				}
			}
			switch {
			case tc.warning == "" && len(warnings) > 0:
				t.Errorf("want no warning, got %q", warnings)
			case tc.warning != "":
				mustContain(t, "the warnings", strings.Join(warnings, "\n"), tc.warning)
			}
			_, statErr := os.Stat(filepath.Join(dir, rev, "istioctl-output.yaml"))
			if written := statErr == nil; written != tc.ok {
				t.Errorf("written: %v, want %v", written, tc.ok)
			}
		})
	}
}

// TestGenerateNoIstioctl: an istioctl that is not there is named, with
// the flag that gives one.
func TestGenerateNoIstioctl(t *testing.T) {
	dir := oneRevision(t)
	t.Setenv("PATH", t.TempDir())
	for _, ic := range []string{"istioctl", filepath.Join(t.TempDir(), "istioctl")} {
		_, _, err := run(t, dir, "1-31", ic)
		if err == nil {
			t.Fatal("must fail")
		}
		mustContain(t, "the error", err.Error(), fmt.Sprintf("istioctl %q was not found: it must be on PATH, or be given with --istioctl PATH", ic))
	}
}

// TestGenerateContained: the source is never written through a link,
// nor outside the tree, whether the link is seen when the tree is read or
// only when it is written (a folder .krmignore hides).
func TestGenerateContained(t *testing.T) {
	for _, tc := range []struct {
		name, link, target string
		krmignore          string
		want               string
	}{
		{name: "a linked source file", link: "1-31/istioctl-output.yaml", target: "outside/secret.yaml",
			want: "1-31/istioctl-output.yaml is a symbolic link"},
		{name: "a linked folder", link: "sources", target: "outside",
			krmignore: "sources\n", want: "sources is a symbolic link: istio-gitops must not write through links (sources/1-31.yaml)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outside := t.TempDir()
			treetest.Write(t, filepath.Join(outside, "outside/secret.yaml"), []byte("kept: true\n"))
			source := ""
			if tc.link == "sources" {
				source = "    source: sources/1-31.yaml\n"
			}
			dir := tree(t, map[string]string{
				"istio-gitops.yaml":        config("  - name: 1-31\n" + source),
				"1-31/istio-operator.yaml": operator,
			})
			if tc.krmignore != "" {
				treetest.Write(t, filepath.Join(dir, ".krmignore"), []byte(tc.krmignore))
			}
			if err := os.Symlink(filepath.Join(outside, tc.target), filepath.Join(dir, tc.link)); err != nil {
				t.Fatal(err)
			}
			before := treetest.Files(t, outside)
			_, _, err := run(t, dir, "1-31", stub{version: "1.31.0", output: manifests}.write(t))
			if err == nil {
				t.Fatal("must fail")
			}
			mustContain(t, "the error", err.Error(), tc.want)
			unchanged(t, outside, before)
			if left, _ := filepath.Glob(filepath.Join(outside, "outside", ".istio-gitops-*")); len(left) > 0 {
				t.Errorf("temporary files left outside the tree: %v", left)
			}
		})
	}
}

// TestGenerateTimeout: a hung istioctl, or a process it started that
// holds its output after it exited, never hangs generate: past the
// timeout, or once istioctl exited, its whole process group is killed, and
// nothing is written.
func TestGenerateTimeout(t *testing.T) {
	t.Parallel()
	// The stub starts a sleep in the background, records its id, and
	// waits for it (hung) or exits leaving it with the output (holding).
	const hung = `sleep 600 & echo $! > "$dir/pids"; wait`
	const holding = `sleep 600 & echo $! > "$dir/pids"`
	for _, tc := range []struct {
		name    string
		stub    stub
		timeout time.Duration
		want    string
	}{
		{name: "hung manifest generate", timeout: 2 * time.Second,
			stub: stub{version: "1.31.0", output: manifests, beforeManifest: hung},
			want: "manifest generate -f 1-31/istio-operator.yaml --set revision=1-31 did not finish within 2s (--timeout): it was killed, with every process it started; nothing was written"},
		{name: "hung version", timeout: 2 * time.Second,
			stub: stub{version: "1.31.0", output: manifests, beforeVersion: hung},
			want: "version --remote=false -o json did not finish within 2s (--timeout): it was killed, with every process it started"},
		{name: "output held after exit", timeout: time.Minute,
			stub: stub{version: "1.31.0", output: manifests, beforeManifest: holding},
			want: "manifest generate -f 1-31/istio-operator.yaml --set revision=1-31 exited, but a process it started still held its output 2s later: it was killed; nothing was written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := oneRevision(t)
			before := treetest.Files(t, dir)
			ic := tc.stub.write(t)
			start := time.Now()
			_, err := generate.Run(context.Background(), generate.Options{
				Dir: dir, Revision: "1-31", Istioctl: generate.Exec{Path: ic}, Stderr: io.Discard, Timeout: tc.timeout,
			})
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("took %v", took)
			}
			if err == nil {
				t.Fatal("must fail")
			}
			mustContain(t, "the error", err.Error(), tc.want)
			unchanged(t, dir, before)
			b, err := os.ReadFile(filepath.Join(filepath.Dir(ic), "pids"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			// Killed: gone, or a zombie until init reaps it.
			deadline := time.Now().Add(10 * time.Second)
			for {
				stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				if err != nil || strings.Contains(string(stat), ") Z ") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the sleep istioctl started (pid %d) still runs: %s", pid, stat)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
