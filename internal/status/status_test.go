package status_test

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/status"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// TestStatus reads the story's tree after 1-31 was added, with Namespace
// manifests on a revision, on tags, on istio-injection and on a revision
// the tree does not have, and checks both formats against golden files.
func TestStatus(t *testing.T) {
	dir := t.TempDir()
	treetest.Copy(t, "../../testdata/golden/story/2-add-1-31", dir)
	treetest.CopyFile(t, "../../testdata/status/namespaces.yaml", filepath.Join(dir, "namespaces.yaml"))
	items, err := disk.ReadObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfgs := krm.ConfigsOf(items, config.Kind)
	if len(cfgs) != 1 {
		t.Fatalf("%d configs", len(cfgs))
	}
	s, err := status.Of(cfgs[0], items)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		file  string
		write func(*bytes.Buffer)
	}{
		{"want.txt", func(b *bytes.Buffer) { s.Text(b) }},
		{"want.md", func(b *bytes.Buffer) { s.Markdown(b) }},
	} {
		var b bytes.Buffer
		f.write(&b)
		treetest.GoldenFile(t, filepath.Join("../../testdata/status", f.file), b.Bytes())
	}
	// 1-30: checkout and payments via prod-stable, legacy via
	// istio-injection; batch has injection disabled; old-team is on a
	// revision the tree does not hold.
	if got := []int{count(s, "1-30"), count(s, "1-31")}; got[0] != 3 || got[1] != 1 {
		t.Errorf("namespaces per revision %v, want [3 1]", got)
	}
}

func count(s *status.Status, rev string) int {
	n := 0
	for _, sel := range s.Namespaces {
		if sel.Revision == rev {
			n += len(sel.Namespaces)
		}
	}
	return n
}

// TestStatusNodeAgents: the revision whose node agents run is marked, and
// only once it has node agents.
func TestStatusNodeAgents(t *testing.T) {
	for step, want := range map[string]string{"3-promote": "1-30", "4-move-node-agents": "1-31"} {
		items, err := disk.ReadObjects(filepath.Join("../../testdata/golden/ambient", step))
		if err != nil {
			t.Fatal(err)
		}
		s, err := status.Of(krm.ConfigsOf(items, config.Kind)[0], items)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s.Revisions {
			if r.NodeAgents != (r.Name == want) {
				t.Errorf("%s: revision %s node agents %v, want them on %s", step, r.Name, r.NodeAgents, want)
			}
		}
	}
}

// TestStatusList: Namespaces and workloads inside a List (`kubectl get ns
// -o yaml`) count like documents of their own.
func TestStatusList(t *testing.T) {
	dir := t.TempDir()
	treetest.Copy(t, "../../testdata/golden/story/2-add-1-31", dir)
	treetest.CopyFile(t, "../../testdata/migrate/kubectl-list.yaml", filepath.Join(dir, "teams.yaml"))
	items, err := disk.ReadObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := status.Of(krm.ConfigsOf(items, config.Kind)[0], items)
	if err != nil {
		t.Fatal(err)
	}
	sum := s.Summary()
	if len(sum.Selectors) != 1 || sum.Selectors[0].Label != "istio.io/rev=1-30" || !slices.Equal(sum.Selectors[0].Namespaces, []string{"payments", "search"}) {
		t.Errorf("selectors %+v, want payments and search on istio.io/rev=1-30", sum.Selectors)
	}
	if len(sum.Workloads) != 1 || !slices.Equal(sum.Workloads[0].Namespaces, []string{"Deployment payments/api"}) {
		t.Errorf("workloads %+v, want Deployment payments/api", sum.Workloads)
	}
}
