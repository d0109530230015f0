package status_test

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
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

// TestStatusNodeAgents: the revision each node agent runs from is marked,
// istio-cni and ztunnel apart, and only once it has node agents.
func TestStatusNodeAgents(t *testing.T) {
	for _, c := range []struct {
		step string
		want map[string][]string
		text string
	}{
		{"2-add-1-31", map[string][]string{"1-30": {"istio-cni", "ztunnel"}}, "1-30         1.30.2     *       *     *         "},
		{"3-move-istio-cni", map[string][]string{"1-30": {"ztunnel"}, "1-31": {"istio-cni"}}, "1-31         1.31.0                   istio-cni "},
		{"4-move-ztunnel", map[string][]string{"1-31": {"istio-cni", "ztunnel"}}, "1-31         1.31.0                   *         "},
	} {
		items, err := disk.ReadObjects(filepath.Join("../../testdata/golden/ambient", c.step))
		if err != nil {
			t.Fatal(err)
		}
		s, err := status.Of(krm.ConfigsOf(items, config.Kind)[0], items)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s.Revisions {
			if !slices.Equal(r.Agents, c.want[r.Name]) || r.NodeAgents != (len(c.want[r.Name]) > 0) {
				t.Errorf("%s: revision %s runs node agents %q (%v), want %q", c.step, r.Name, r.Agents, r.NodeAgents, c.want[r.Name])
			}
		}
		var b strings.Builder
		s.Text(&b)
		if !strings.Contains(b.String(), c.text) {
			t.Errorf("%s: the table must hold %q:\n%s", c.step, c.text, b.String())
		}
	}
}
