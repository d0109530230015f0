package pointer_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/pointer"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

const fakeCA = "Y2EtYnVuZGxl"

// withCABundle is a copy of a webhook configuration as istiod leaves it in a
// cluster: every webhook carries a caBundle.
func withCABundle(t testing.TB, obj *yaml.RNode) *yaml.RNode {
	t.Helper()
	obj = obj.Copy()
	for _, w := range webhookList(t, obj) {
		must(t, w.PipeE(yaml.LookupCreate(yaml.MappingNode, "clientConfig"), yaml.SetField("caBundle", yaml.NewStringRNode(fakeCA))))
	}
	return obj
}

// TestDriftGuardsFixtures runs DriftGuards on every webhook configuration of
// every fixture, each given a caBundle first, and checks each webhook
// against what istiod patches.
func TestDriftGuardsFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures: %v", err)
	}
	guarded := map[string]int{}
	for _, f := range files {
		rel, _ := filepath.Rel(fixtures, f)
		for _, o := range read(t, filepath.ToSlash(rel)) {
			kind := o.GetKind()
			if kind != "MutatingWebhookConfiguration" && kind != "ValidatingWebhookConfiguration" {
				continue
			}
			before := withCABundle(t, o)
			after := before.Copy()
			must(t, webhook.DriftGuards(after))

			bw, aw := webhookList(t, before), webhookList(t, after)
			if len(aw) != len(bw) {
				t.Fatalf("%s %s: %d webhooks, had %d", kind, o.GetName(), len(aw), len(bw))
			}
			// Every fixture configuration is labelled istio.io/rev, so istiod
			// patches all of them.
			if o.GetLabels()["istio.io/rev"] == "" {
				t.Fatalf("%s %s: fixture without istio.io/rev", kind, o.GetName())
			}
			for i := range aw {
				name := yaml.GetValue(aw[i].Field("name").Value)
				what := rel + ": " + kind + " " + o.GetName() + " webhook " + name
				ca, _ := aw[i].GetString("clientConfig.caBundle")
				wantCA := ""
				if kind == "MutatingWebhookConfiguration" && !strings.HasSuffix(name, "sidecar-injector.istio.io") {
					wantCA = fakeCA
				}
				if ca != wantCA {
					t.Errorf("%s: caBundle %q, want %q", what, ca, wantCA)
				}
				fp, _ := aw[i].GetString("failurePolicy")
				if kind == "ValidatingWebhookConfiguration" && fp != "Fail" {
					t.Errorf("%s: failurePolicy %q, want Fail", what, fp)
				}
				if kind == "MutatingWebhookConfiguration" {
					if ofp, _ := bw[i].GetString("failurePolicy"); fp != ofp {
						t.Errorf("%s: failurePolicy %q changed from %q: istiod does not touch it on injectors", what, fp, ofp)
					}
				}
				// Nothing else changed.
				b, a := plainNode(t, bw[i]), plainNode(t, aw[i])
				for _, m := range []map[string]any{a, b} {
					delete(m["clientConfig"].(map[string]any), "caBundle")
					delete(m, "failurePolicy")
				}
				if !reflect.DeepEqual(a, b) {
					t.Errorf("%s: changed beyond caBundle and failurePolicy:\n%v\n%v", what, a, b)
				}
				if ca == "" {
					guarded[kind]++
				}
			}
			again := after.Copy()
			must(t, webhook.DriftGuards(again))
			if again.MustString() != after.MustString() {
				t.Errorf("%s %s: DriftGuards is not idempotent", kind, o.GetName())
			}
		}
	}
	// The fixtures hold both kinds; a run that guarded none proves nothing.
	if guarded["MutatingWebhookConfiguration"] < 20 || guarded["ValidatingWebhookConfiguration"] < 10 {
		t.Errorf("guarded %v webhooks: the fixtures hold more", guarded)
	}
}

// TestDriftGuardsPointers: the rendered default validator and tag webhooks
// are istiod's too (labelled with their revision), so they are guarded.
func TestDriftGuardsPointers(t *testing.T) {
	objs := read(t, "1-31/default.yaml")
	def, err := pointer.DefaultRevision(ns, "1-31", objs)
	must(t, err)
	tag, err := pointer.Tag(ns, "default", "1-31", objs)
	must(t, err)
	for _, o := range []*yaml.RNode{def[1], tag[0]} {
		o = withCABundle(t, o)
		must(t, webhook.DriftGuards(o))
		for _, w := range webhookList(t, o) {
			if ca, _ := w.GetString("clientConfig.caBundle"); ca != "" {
				t.Errorf("%s: caBundle kept", o.GetName())
			}
		}
	}
	if fp, _ := webhookList(t, def[1])[0].GetString("failurePolicy"); fp != "Ignore" {
		t.Fatalf("the copy was guarded, not def[1]: %q", fp)
	}
	must(t, webhook.DriftGuards(def[1]))
	if fp, _ := webhookList(t, def[1])[0].GetString("failurePolicy"); fp != "Fail" {
		t.Errorf("istiod-default-validator: failurePolicy %q, want Fail", fp)
	}
}

// TestDriftGuardsLeavesOthers: configurations istiod does not patch, and
// every other kind, are left alone.
func TestDriftGuardsLeavesOthers(t *testing.T) {
	objs := read(t, "1-31/default.yaml")
	for _, o := range []*yaml.RNode{
		get(t, objs, "ValidatingWebhookConfiguration", "istio-validator-1-31-istio-system"),
		get(t, objs, "MutatingWebhookConfiguration", "istio-sidecar-injector-1-31"),
	} {
		o = withCABundle(t, o)
		must(t, o.PipeE(yaml.Lookup("metadata", "labels"), yaml.Clear("istio.io/rev")))
		before := o.MustString()
		must(t, webhook.DriftGuards(o))
		if o.MustString() != before {
			t.Errorf("%s %s without istio.io/rev: changed, but no istiod patches it", o.GetKind(), o.GetName())
		}
	}
	// istiod's cert patcher only fills in webhooks named *sidecar-injector.istio.io.
	mwc := withCABundle(t, get(t, objs, "MutatingWebhookConfiguration", "istio-sidecar-injector-1-31"))
	other := webhookList(t, mwc)[0].Copy()
	must(t, other.PipeE(yaml.SetField("name", yaml.NewStringRNode("audit.example.com"))))
	must(t, mwc.PipeE(yaml.Lookup("webhooks"), yaml.Append(other.YNode())))
	must(t, webhook.DriftGuards(mwc))
	whs := webhookList(t, mwc)
	if ca, _ := whs[2].GetString("clientConfig.caBundle"); ca != fakeCA {
		t.Errorf("webhook audit.example.com: caBundle %q, want it kept", ca)
	}
	if ca, _ := whs[0].GetString("clientConfig.caBundle"); ca != "" {
		t.Errorf("webhook %s: caBundle kept", yaml.GetValue(whs[0].Field("name").Value))
	}

	svc := get(t, objs, "Service", "istiod-1-31").Copy()
	before := svc.MustString()
	must(t, webhook.DriftGuards(svc))
	if svc.MustString() != before {
		t.Error("Service changed")
	}
}

func plainNode(t testing.TB, n *yaml.RNode) map[string]any {
	t.Helper()
	m, err := n.Map()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
