package status_test

import (
	"bytes"
	"os"
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

// statusOf reads the tree at dir, with the extra Namespace manifests and
// workloads, and computes its status.
func statusOf(t *testing.T, dir, extra string) *status.Status {
	t.Helper()
	treetest.Write(t, filepath.Join(dir, "namespaces.yaml"), []byte(extra))
	items, err := disk.ReadObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := status.Of(krm.ConfigsOf(items, config.Kind)[0], items)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// selection finds what selects by label.
func selection(t *testing.T, sels []status.Selection, label string) status.Selection {
	t.Helper()
	for _, s := range sels {
		if s.Label == label {
			return s
		}
	}
	t.Fatalf("no selection %s in %+v", label, sels)
	return status.Selection{}
}

const legacy = `apiVersion: v1
kind: Namespace
metadata:
  name: legacy
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Namespace
metadata:
  name: plain
---
apiVersion: v1
kind: Namespace
metadata:
  name: search
  labels:
    istio.io/rev: 1-31
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: jobs
  namespace: plain
spec:
  template:
    metadata:
      labels:
        sidecar.istio.io/inject: "true"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: crawler
  namespace: search
spec:
  template:
    metadata:
      labels:
        sidecar.istio.io/inject: "true"
`

// TestStatusDefaultInjection: namespaces labelled istio-injection=enabled
// and pods labelled sidecar.istio.io/inject=true (in a namespace without
// a revision label) are counted where the tree's default tag webhook
// points: the active revision without tags.default, tags.default with it.
// A tree without that webhook (one not run since activeRevision renders
// it) reports them as not injected, with a warning naming them and what to
// do.
func TestStatusDefaultInjection(t *testing.T) {
	dir := t.TempDir()
	treetest.Copy(t, "../../testdata/golden/story/2-add-1-31", dir)
	s := statusOf(t, dir, legacy)
	if sel := selection(t, s.Namespaces, "istio-injection=enabled"); sel.Revision != "1-30" || sel.NotInjected {
		t.Errorf("without tags.default, istio-injection=enabled must count on the active revision 1-30: %+v", sel)
	}
	if sel := selection(t, s.Workloads, "sidecar.istio.io/inject=true"); sel.Revision != "1-30" || len(sel.Namespaces) != 1 || sel.Namespaces[0] != "Deployment plain/jobs" {
		t.Errorf("sidecar.istio.io/inject=true in an unlabelled namespace must count on 1-30 (and not the one in a namespace on 1-31): %+v", sel)
	}
	if len(s.Warnings) != 0 {
		t.Errorf("warnings: %q", s.Warnings)
	}

	// The webhook on 1-31 (as a run with tags.default: 1-31 writes it).
	hook := filepath.Join(dir, "common/mutatingwebhookconfiguration/istio-revision-tag-default.yaml")
	b, err := os.ReadFile(hook)
	if err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, hook, bytes.ReplaceAll(b, []byte("istio.io/rev: 1-30"), []byte("istio.io/rev: 1-31")))
	cfg := filepath.Join(dir, "istio-gitops.yaml")
	c, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, cfg, bytes.Replace(c, []byte("  tags:\n"), []byte("  tags:\n    default: 1-31\n"), 1))
	s = statusOf(t, dir, legacy)
	if sel := selection(t, s.Namespaces, "istio-injection=enabled"); sel.Revision != "1-31" {
		t.Errorf("with the default tag on 1-31, istio-injection=enabled must count on 1-31: %+v", sel)
	}

	// No default tag webhook in the tree: not injected, said.
	if err := os.Remove(hook); err != nil {
		t.Fatal(err)
	}
	s = statusOf(t, dir, legacy)
	if sel := selection(t, s.Namespaces, "istio-injection=enabled"); sel.Revision != "" || !sel.NotInjected {
		t.Errorf("without a default tag webhook, istio-injection=enabled must be not injected: %+v", sel)
	}
	var text bytes.Buffer
	s.Text(&text)
	for _, want := range []string{
		"istio-injection=enabled -> not injected: 1 (legacy)",
		"warning: not injected: legacy (istio-injection=enabled): nothing in the tree injects them",
		"warning: not injected: Deployment plain/jobs (sidecar.istio.io/inject=true)",
		"or add `default: 1-31` under spec.tags",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status must say %q:\n%s", want, text.String())
		}
	}
	if got := count(s, "1-30") + count(s, "1-31"); got != 1 {
		t.Errorf("only search may count on a revision, got %d", got)
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
