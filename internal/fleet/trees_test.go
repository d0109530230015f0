package fleet_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

const golden = "../../testdata/golden/story"

// TestTreesSideBySide: three clusters' trees under one folder, two side by
// side and one nested in another, all on revisions 1-30 and 1-31. Run from
// the parent, each tree is its own: one retires 1-30 while the others
// still run it (their istiod, gateways and Namespaces are not its), each
// result names its tree.
func TestTreesSideBySide(t *testing.T) {
	dir := t.TempDir()
	a, b, edge := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "a", "edge")
	treetest.Copy(t, filepath.Join(golden, "6-promote-again"), a)
	treetest.Copy(t, filepath.Join(golden, "6-promote-again"), b)
	treetest.Copy(t, filepath.Join(golden, "6-promote-again"), edge)
	rename := func(tree, name string) {
		p := filepath.Join(tree, "istio-gitops.yaml")
		treetest.Write(t, p, bytes.Replace(treetest.Read(t, p), []byte("name: prod"), []byte("name: "+name), 1))
	}
	rename(b, "b")
	rename(edge, "edge")
	ns := func(name, rev string) []byte {
		return []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n  labels:\n    istio.io/rev: " + rev + "\n")
	}
	// b's team is still on 1-30; a Namespace of no tree is on 1-31.
	treetest.Write(t, filepath.Join(b, "payments.yaml"), ns("payments", "1-30"))
	treetest.Write(t, filepath.Join(dir, "shared.yaml"), ns("shared", "1-31"))

	run := func() (framework.Results, error) {
		return krm.Processors{config.Kind: fleet.Processor{Root: dir}}.RunDir(dir)
	}
	// Nothing to do: each tree as its golden.
	if res, err := run(); err != nil {
		t.Fatalf("%v\n%v", err, res)
	}
	before := treetest.Files(t, dir)

	// a retires 1-30; edge (nested in a) and b keep it.
	treetest.CopyFile(t, filepath.Join(golden, "7-retire-1-30", "istio-gitops.yaml"), filepath.Join(a, "istio-gitops.yaml"))
	res, err := run()
	if err != nil {
		t.Fatalf("retiring 1-30 in a: %v\n%v", err, res)
	}
	got := treetest.Files(t, dir)
	retired := 0
	for p := range before {
		inA := strings.HasPrefix(p, "a/") && !strings.HasPrefix(p, "a/edge/")
		_, kept := got[p]
		if inA && strings.HasPrefix(p, "a/1-30/") {
			retired++
		}
		switch {
		case inA && strings.HasPrefix(p, "a/1-30/") && kept:
			t.Errorf("%s: a retired 1-30", p)
		case !inA && (!kept || !bytes.Equal(got[p], before[p])):
			t.Errorf("%s: another tree's file changed", p)
		}
	}
	if retired == 0 {
		t.Error("a held no file of 1-30 to retire")
	}
	said := map[string]bool{}
	for _, r := range res {
		said[r.Tags[krm.TreeTag]] = true
		if strings.Contains(r.Message, "retired revision") && r.Tags[krm.TreeTag] != "a" {
			t.Errorf("the retirement must be a's: %v", r)
		}
	}
	for _, tree := range []string{"a", "a/edge", "b"} {
		if !said[tree] {
			t.Errorf("no result names tree %s: %v", tree, res)
		}
	}

	// b cannot: its own team is still on 1-30.
	treetest.CopyFile(t, filepath.Join(golden, "7-retire-1-30", "istio-gitops.yaml"), filepath.Join(b, "istio-gitops.yaml"))
	rename(b, "b")
	snap := treetest.Files(t, dir)
	if _, err := run(); err == nil || !strings.Contains(err.Error(), `tree b (IstioGitOps "b")`) ||
		!strings.Contains(err.Error(), `b/payments.yaml: Namespace "payments" still selects revision "1-30"`) {
		t.Fatalf("retiring 1-30 in b: %v", err)
	}
	if d := treetest.Diff(treetest.Files(t, dir), snap); d != "" {
		t.Errorf("a failed run wrote:\n%s", d)
	}
}
