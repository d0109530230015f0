package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// TestVersionStamped builds the binary as `make build` does, with a
// version stamped through -ldflags, and asks it its version every way.
func TestVersionStamped(t *testing.T) {
	// `make test` passes the binary `make build` stamped, and the version
	// it stamped; else one is built here the same way.
	v, bin := os.Getenv("ISTIO_GITOPS_VERSION"), binary
	if v == "" || os.Getenv("ISTIO_GITOPS") == "" {
		v, bin = "v9.8.7-e2e", filepath.Join(t.TempDir(), "istio-gitops")
		if err := build(bin, "-trimpath", "-ldflags", "-X github.com/istio-gitops/istio-gitops/internal/version.Version="+v); err != nil {
			t.Fatal(err)
		}
	}
	line, err := command(t, ".", nil, bin, "version")
	if err != nil || !strings.HasPrefix(line, "istio-gitops "+v+" (") || !strings.HasSuffix(line, ")\n") {
		t.Errorf("version: %v: %q", err, line)
	}
	flag, err := command(t, ".", nil, bin, "--version")
	if err != nil || flag != line {
		t.Errorf("--version: %v: %q, want %q", err, flag, line)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Version, Go, Platform, Revision string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	if info.Version != v || !strings.HasPrefix(info.Go, "go1.") || info.Platform == "" {
		t.Errorf("version -o json: %+v", info)
	}
	// Where the go command records the commit (not -buildvcs=false), it is shown.
	if info.Revision != "" && !strings.Contains(line, "revision "+info.Revision) {
		t.Errorf("version does not show the revision %s: %q", info.Revision, line)
	}
}

// result is one result of --output json.
type result struct {
	Severity, Message, File string
	Object                  *struct{ APIVersion, Kind, Namespace, Name string }
	Field                   *struct {
		Path                        string
		CurrentValue, ProposedValue any
	}
	Tags map[string]string
}

// jsonOut runs the binary and decodes its stdout, which must be one JSON
// document whatever the exit code.
func jsonOut(t *testing.T, v any, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%q: stdout is not the JSON document: %v\n%s", args, err, stdout.String())
	}
	return code, stderr.String()
}

// TestOutputJSON: run, status and migrate print their results as JSON for
// CI, on success and on failure.
func TestOutputJSON(t *testing.T) {
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(repo, "examples/bootstrap"), dir)
	var run struct {
		Results []result
		Error   string
	}
	if code, stderr := jsonOut(t, &run, "run", dir, "-o", "json"); code != 0 || run.Error != "" {
		t.Fatalf("run: exit %d, %s %s", code, run.Error, stderr)
	}
	written := false
	for _, r := range run.Results {
		if r.Severity == "" || r.Message == "" {
			t.Errorf("result without severity or message: %+v", r)
		}
		if strings.Contains(r.Message, "files added, from") {
			written = true
		}
	}
	if !written {
		t.Errorf("run results do not say what was written: %+v", run.Results)
	}

	var status struct {
		Trees []struct {
			Config, Path string
			Revisions    []struct {
				Name, Version                       string
				Generated, Active, Live, NodeAgents bool
				Agents, Tags                        []string
				Hosts                               []struct{ Name, Ingress string }
				Namespaces, Workloads               int
			}
			Tags                 []struct{ Name, Revision string }
			Selectors, Workloads []struct {
				Label, Selects, Revision string
				NotInjected              bool
				Namespaces               []string
			}
			Warnings []string
		}
		Error string
	}
	tree := t.TempDir()
	treetest.Copy(t, filepath.Join(golden, "story/2-add-1-31"), tree)
	treetest.Write(t, filepath.Join(tree, "namespaces.yaml"), []byte(`apiVersion: v1
kind: Namespace
metadata:
  name: payments
  labels:
    istio.io/rev: prod-stable
---
apiVersion: v1
kind: Namespace
metadata:
  name: search
  labels:
    istio.io/rev: 1-30
---
apiVersion: v1
kind: Namespace
metadata:
  name: checkout
  labels:
    istio.io/rev: prod-canary
`))
	if code, stderr := jsonOut(t, &status, "status", tree, "-o", "json"); code != 0 {
		t.Fatalf("status: exit %d, %s", code, stderr)
	}
	if len(status.Trees) != 1 || len(status.Trees[0].Revisions) != 2 {
		t.Fatalf("status: %+v", status)
	}
	r0, r1 := status.Trees[0].Revisions[0], status.Trees[0].Revisions[1]
	if r0.Name != "1-30" || r0.Version != "1.30.2" || !r0.Active || !r0.Live || r0.Namespaces != 2 || strings.Join(r0.Tags, ",") != "prod-stable" ||
		r1.Name != "1-31" || r1.Version != "1.31.0" || r1.Active || strings.Join(r1.Tags, ",") != "prod-canary" || r1.Namespaces != 1 {
		t.Errorf("status rows: %+v", status.Trees[0].Revisions)
	}
	if r0.Hosts == nil || len(r0.Hosts) != 0 {
		t.Errorf("status hosts of a tree without DNS hosts: %+v, want []", r0.Hosts)
	}
	if sel := status.Trees[0].Selectors; len(sel) != 3 || sel[0].Label != "istio.io/rev=1-30" || sel[0].Revision != "1-30" || strings.Join(sel[0].Namespaces, ",") != "search" {
		t.Errorf("status selectors: %+v", sel)
	}

	mdir := t.TempDir()
	treetest.Copy(t, filepath.Join(repo, "examples/migrate/sample"), mdir)
	var mig struct {
		From, To                        string
		NamespacesMoved, WorkloadsMoved int
		Files                           []string
		Report                          string
		Results                         []result
		Error                           string
	}
	if code, stderr := jsonOut(t, &mig, "migrate", mdir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", "payments", "-o", "json"); code != 0 {
		t.Fatalf("migrate: exit %d, %s %s", code, mig.Error, stderr)
	}
	if mig.From != "1-30" || mig.To != "1-31" || mig.NamespacesMoved == 0 || len(mig.Files) == 0 || len(mig.Results) == 0 {
		t.Errorf("migrate: %+v", mig)
	}
	for _, r := range mig.Results {
		if r.Object != nil && r.Object.Kind == "Namespace" && r.File != "" && r.Tags["action"] == "moved" && r.Field != nil && r.Field.Path == "metadata.labels" {
			return
		}
	}
	t.Errorf("no moved Namespace among the migrate results: %+v", mig.Results)
}

// TestOutputJSONOnError: a failed run still prints the JSON document, with
// the error, and exits 1.
func TestOutputJSONOnError(t *testing.T) {
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(repo, "examples/bootstrap"), dir)
	cfg := filepath.Join(dir, "istio-gitops.yaml")
	b, _ := os.ReadFile(cfg)
	treetest.Write(t, cfg, bytes.Replace(b, []byte("- name: 1-30"), []byte("- name: \"1.30\""), 1))
	var run struct {
		Results []result
		Error   string
	}
	code, stderr := jsonOut(t, &run, "run", dir, "-o", "json")
	if code != 1 || !strings.Contains(run.Error, "spec.revisions[0].name") || !strings.Contains(stderr, "must not contain a dot") {
		t.Errorf("exit %d, error %q, stderr %s", code, run.Error, stderr)
	}
}
