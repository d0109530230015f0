package status_test

import (
	"bytes"
	"path/filepath"
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

// TestStatusHosts: the hosts each revision's Ingresses publish in DNS, as
// the config assigns them (listed hosts, the others on the live revision),
// in the text, the Markdown and the summary.
func TestStatusHosts(t *testing.T) {
	items, err := disk.ReadObjects("../../testdata/golden/cutover/4-move-api-and-beta")
	if err != nil {
		t.Fatal(err)
	}
	s, err := status.Of(krm.ConfigsOf(items, config.Kind)[0], items)
	if err != nil {
		t.Fatal(err)
	}
	var text, md bytes.Buffer
	s.Text(&text)
	s.Markdown(&md)
	for _, want := range []string{
		"DNS HOSTS BY REVISION (external-dns, spec.gateways.ingress hosts)\n" +
			"  1-30: *.apps.example.com, internal.example.com, www.example.com\n" +
			"  1-31: api.example.com, beta.apps.example.com, shop.example.com\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text must hold %q:\n%s", want, text.String())
		}
	}
	if want := "| `1-31` | `api.example.com`, `beta.apps.example.com`, `shop.example.com` |"; !strings.Contains(md.String(), want) {
		t.Errorf("markdown must hold %q:\n%s", want, md.String())
	}
	sum := s.Summary()
	if got := sum.Revisions[0].Hosts; len(got) != 3 || got[1] != (status.HostRow{Name: "internal.example.com", Ingress: "internal"}) {
		t.Errorf("summary of 1-30's hosts: %+v", got)
	}
	// A tree without hosts says nothing of them.
	items, err = disk.ReadObjects("../../testdata/golden/story/2-add-1-31")
	if err != nil {
		t.Fatal(err)
	}
	s, err = status.Of(krm.ConfigsOf(items, config.Kind)[0], items)
	if err != nil {
		t.Fatal(err)
	}
	text.Reset()
	s.Text(&text)
	if strings.Contains(text.String(), "DNS HOSTS") || s.Summary().Revisions[0].Hosts == nil {
		t.Errorf("a tree without hosts: %q, summary hosts %v (want no section and an empty list)", text.String(), s.Summary().Revisions[0].Hosts)
	}
}
