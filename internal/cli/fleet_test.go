package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

const golden = repo + "/testdata/golden/story"

// cluster copies a golden step of the story as the tree of cluster name,
// its config's name and spec replaced by edit.
func cluster(t *testing.T, dir, step, name string, edit func(string) string) string {
	t.Helper()
	tree := filepath.Join(dir, name)
	treetest.Copy(t, filepath.Join(golden, step), tree)
	p := filepath.Join(tree, "istio-gitops.yaml")
	s := strings.Replace(string(treetest.Read(t, p)), "name: prod", "name: "+name, 1)
	if edit != nil {
		s = edit(s)
	}
	treetest.Write(t, p, []byte(s))
	return tree
}

func namespace(name, rev string) []byte {
	return []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n  labels:\n    istio.io/rev: " + rev + "\n")
}

// TestStatusTreesApart: `status` over a parent folder says each tree
// apart, each with its own namespaces (its own files, and the folders its
// spec.namespaces.from names) and none of the other's istiod or gateways.
func TestStatusTreesApart(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "clusters")
	cluster(t, dir, "2-add-1-31", "a", nil)
	cluster(t, dir, "2-add-1-31", "b", func(s string) string {
		return s + "  namespaces:\n    from: [../../teams/b]\n"
	})
	treetest.Write(t, filepath.Join(dir, "a", "team.yaml"), namespace("payments", "1-30"))
	treetest.Write(t, filepath.Join(dir, "b", "team.yaml"), namespace("search", "1-31"))
	treetest.Write(t, filepath.Join(top, "teams", "b", "one.yaml"), namespace("orders", "1-31"))
	treetest.Write(t, filepath.Join(top, "teams", "b", "two.yaml"), namespace("billing", "prod-canary"))
	code, out, errOut := call(t, NewRootCommand(), "", "status", dir, "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc StatusOutput
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"a": {1, 0}, "b": {0, 3}}
	if len(doc.Trees) != 2 {
		t.Fatalf("%d trees", len(doc.Trees))
	}
	for _, tr := range doc.Trees {
		var got [2]int
		for i, r := range tr.Revisions {
			got[i] = r.Namespaces
			if r.Workloads != 0 {
				t.Errorf("tree %s counts %d workloads on %s: another tree's?", tr.Config, r.Workloads, r.Name)
			}
		}
		if got != want[tr.Config] {
			t.Errorf("tree %s (%s): namespaces per revision %v, want %v", tr.Config, tr.Path, got, want[tr.Config])
		}
	}
	code, out, _ = call(t, NewRootCommand(), "", "status", dir)
	if code != ExitOK || !strings.Contains(out, `IstioGitOps "a" (a/istio-gitops.yaml)`) || !strings.Contains(out, `IstioGitOps "b" (b/istio-gitops.yaml)`) {
		t.Errorf("exit %d, each tree must be named:\n%s", code, out)
	}
	// A folder of spec.namespaces.from that is not there is an error
	// naming the field.
	if err := os.RemoveAll(filepath.Join(top, "teams")); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = call(t, NewRootCommand(), "", "status", dir)
	if code != ExitUser || !strings.Contains(errOut, `spec.namespaces.from[0]: "../../teams/b": must be a file or folder, and there is none`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// TestFleetCommands: `run` keeps the order, `fleet status` and `fleet
// check` say it, outside Git (a soak of 0 reads the trees as they are).
func TestFleetCommands(t *testing.T) {
	defer func(old func() time.Time) { now = old }(now)
	now = func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) }
	dir := t.TempDir()
	staging := cluster(t, dir, "1-bootstrap", "staging", nil)
	prod := cluster(t, dir, "1-bootstrap", "prod", func(s string) string {
		s = strings.Replace(s, "  - name: 1-30\n", "  - name: 1-30\n  - name: 1-31\n", 1)
		return s + "  promotion:\n    after: [../staging]\n"
	})
	source := func(tree string) {
		treetest.CopyFile(t, filepath.Join(repo, "testdata", "istioctl", "1-31", "default.yaml"), filepath.Join(tree, "1-31", "istioctl-output.yaml"))
	}
	source(prod)

	// prod may not list 1.31.0 before staging does.
	snap := treetest.Files(t, dir)
	code, out, errOut := call(t, NewRootCommand(), "", "run", prod)
	if code != ExitUser || !strings.Contains(out, `spec.revisions[1]: revision "1-31" is Istio 1.31.0, which no cluster this one follows lists: staging (`) ||
		!strings.Contains(errOut, "the order of spec.promotion.after refuses 1 step(s)") {
		t.Errorf("exit %d:\n%s\n%s", code, out, errOut)
	}
	if d := treetest.Diff(treetest.Files(t, dir), snap); d != "" {
		t.Errorf("a refused run wrote:\n%s", d)
	}
	code, out, _ = call(t, NewRootCommand(), "", "fleet", "check", dir)
	if code != ExitUser || !strings.Contains(out, "::error file=prod/istio-gitops.yaml,line=10,title=istio-gitops spec.revisions[1]::") ||
		!strings.Contains(out, "staging (staging): ok") || !strings.Contains(out, "prod (prod): 1 error(s), 0 warning(s)") {
		t.Errorf("fleet check: exit %d:\n%s", code, out)
	}
	code, out, _ = call(t, NewRootCommand(), "", "fleet", "check", dir, "-o", "json")
	var rep fleet.CheckReport
	if err := json.Unmarshal([]byte(out), &rep); code != ExitUser || err != nil || len(rep.Trees) != 2 || rep.Error == "" {
		t.Errorf("fleet check -o json: exit %d, %v:\n%s", code, err, out)
	}
	code, out, _ = call(t, NewRootCommand(), "", "fleet", "status", dir)
	if code != ExitOK || !strings.Contains(out, "prod     after staging  runs 1.30.2, as the clusters it follows do") ||
		!strings.Contains(out, "1-31      1.31.0 (not generated)") {
		t.Errorf("fleet status: exit %d:\n%s", code, out)
	}
	// A fleet that cannot be read is still data: the error, and when.
	code, out, _ = call(t, NewRootCommand(), "", "fleet", "status", filepath.Join(dir, "nowhere"), "-o", "json")
	var srep fleet.Report
	if err := json.Unmarshal([]byte(out), &srep); code != ExitUser || err != nil || srep.Error == "" || !srep.Clock.Equal(now()) || srep.Clusters == nil {
		t.Errorf("fleet status -o json of no fleet: exit %d, %v:\n%s", code, err, out)
	}
	code, out, _ = call(t, NewRootCommand(), "", "fleet", "status", dir, "-o", "markdown")
	if code != ExitOK || !strings.HasPrefix(out, "### Istio fleet\n\n| cluster | revision |") {
		t.Errorf("fleet status -o markdown: exit %d:\n%s", code, out)
	}

	// Once staging lists it, prod may.
	staging131 := strings.Replace(string(treetest.Read(t, filepath.Join(staging, "istio-gitops.yaml"))), "  - name: 1-30\n", "  - name: 1-30\n  - name: 1-31\n", 1)
	treetest.Write(t, filepath.Join(staging, "istio-gitops.yaml"), []byte(staging131))
	source(staging)
	for _, tree := range []string{staging, prod} {
		if code, out, errOut := call(t, NewRootCommand(), "", "run", tree); code != ExitOK {
			t.Fatalf("run %s: exit %d:\n%s\n%s", tree, code, out, errOut)
		}
	}
	if code, out, _ := call(t, NewRootCommand(), "", "fleet", "check", dir); code != ExitOK {
		t.Errorf("fleet check: exit %d:\n%s", code, out)
	}

	// A soak, or --base, needs Git.
	p := filepath.Join(prod, "istio-gitops.yaml")
	treetest.Write(t, p, bytes.Replace(treetest.Read(t, p), []byte("after: [../staging]"), []byte("after: [../staging]\n    soak: 24h"), 1))
	code, out, errOut = call(t, NewRootCommand(), "", "run", prod)
	if code != ExitUser || !strings.Contains(errOut, "spec.promotion.soak: 24h is read from the Git history of the clusters of spec.promotion.after, and the tree is not in a Git repository") {
		t.Errorf("soak outside Git: exit %d:\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := call(t, NewRootCommand(), "", "fleet", "check", dir, "--base", "main"); code != ExitUser || !strings.Contains(errOut, "--base main: ") {
		t.Errorf("--base outside Git: exit %d: %s", code, errOut)
	}
}
