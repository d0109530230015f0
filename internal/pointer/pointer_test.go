package pointer_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/pointer"
)

const ns = "istio-system"

// TestDefaultRevisionValidator compares istiod-default-validator with the
// one istioctl renders with --set values.defaultRevision=<rev>.
func TestDefaultRevisionValidator(t *testing.T) {
	for _, rev := range revisions {
		t.Run(rev, func(t *testing.T) {
			got, err := pointer.DefaultRevision(ns, rev, read(t, rev+"/default.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("got %d objects, want 2", len(got))
			}
			want := get(t, read(t, rev+"/default-revision.yaml"), "ValidatingWebhookConfiguration", pointer.DefaultValidatorName)
			// No difference: every field, label and value is istioctl's.
			checkDiff(t, "istiod-default-validator", plain(t, got[1]), plain(t, want), nil)
			// Same bytes too: same field order, same quoting.
			if g, w := string(text(t, got[1])), document(t, rev+"/default-revision.yaml", "ValidatingWebhookConfiguration", pointer.DefaultValidatorName); g != w {
				t.Errorf("istiod-default-validator text differs from istioctl's:\n--- got\n%s--- istioctl\n%s", g, w)
			}
			checkGolden(t, rev+"/default-revision.yaml", text(t, got...))
		})
	}
}

// TestDefaultRevisionService compares the istiod Service with the one
// istioctl renders without a revision (norev/default.yaml), which selects
// the unrevisioned istiod's pods instead.
func TestDefaultRevisionService(t *testing.T) {
	want := plain(t, get(t, read(t, "norev/default.yaml"), "Service", pointer.IstiodServiceName))
	for _, rev := range revisions {
		t.Run(rev, func(t *testing.T) {
			got, err := pointer.DefaultRevision(ns, rev, read(t, rev+"/default.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			svc := plain(t, got[0])
			checkDiff(t, "Service istiod", svc, want, map[string]string{
				".spec.selector.istio":        "norev selects its unrevisioned istiod by istio=pilot, which revisioned istiod pods do not carry (theirs is istio=istiod, on every revision)",
				".spec.selector.istio.io/rev": "selects the active revision's pods",
			})
			sel := svc["spec"].(map[string]any)["selector"]
			if w := map[string]any{"app": "istiod", "istio.io/rev": rev}; fmt.Sprint(sel) != fmt.Sprint(w) {
				t.Errorf("selector = %v, want %v", sel, w)
			}
			// The selector matches the pods of istiod-<rev> and only those.
			dep := get(t, read(t, rev+"/default.yaml"), "Deployment", "istiod-"+rev)
			podLabels, err := dep.Pipe(yaml.Lookup("spec", "template", "metadata", "labels"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range sel.(map[string]any) {
				if got := yaml.GetValue(podLabels.Field(k).Value); got != v {
					t.Errorf("istiod-%s pods: label %s = %q, the Service selects %q", rev, k, got, v)
				}
			}
			// The ports are those of istiod-<rev>, which the webhooks call.
			own := plain(t, get(t, read(t, rev+"/default.yaml"), "Service", "istiod-"+rev))
			if g, w := fmt.Sprint(svc["spec"].(map[string]any)["ports"]), fmt.Sprint(own["spec"].(map[string]any)["ports"]); g != w {
				t.Errorf("ports = %s, istiod-%s has %s", g, rev, w)
			}
		})
	}
}

// TestTag compares tag rendering with istioctl's (values.revisionTags).
func TestTag(t *testing.T) {
	for _, rev := range revisions {
		for _, tc := range []struct {
			tag, fixture string
			webhooks     []string
		}{
			{"prod-stable", "tags.yaml", []string{"rev.namespace.sidecar-injector.istio.io", "rev.object.sidecar-injector.istio.io"}},
			{"default", "tag-default.yaml", []string{"rev.namespace.sidecar-injector.istio.io", "rev.object.sidecar-injector.istio.io",
				"namespace.sidecar-injector.istio.io", "object.sidecar-injector.istio.io"}},
		} {
			t.Run(rev+"/"+tc.tag, func(t *testing.T) {
				got, err := pointer.Tag(ns, tc.tag, rev, read(t, rev+"/default.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 2 {
					t.Fatalf("got %d objects, want 2", len(got))
				}
				istioctl := read(t, rev+"/"+tc.fixture)
				for _, g := range got {
					want := get(t, istioctl, g.GetKind(), g.GetName())
					checkDiff(t, g.GetKind()+" "+g.GetName(), plain(t, g), plain(t, want), nil)
					if gt, wt := string(text(t, g)), document(t, rev+"/"+tc.fixture, g.GetKind(), g.GetName()); gt != wt {
						t.Errorf("%s %s text differs from istioctl's:\n--- got\n%s--- istioctl\n%s", g.GetKind(), g.GetName(), gt, wt)
					}
				}
				if n := got[0].GetName(); n != "istio-revision-tag-"+tc.tag {
					t.Errorf("webhook configuration named %q", n)
				}
				if n := got[1].GetName(); n != "istiod-revision-tag-"+tc.tag {
					t.Errorf("Service named %q", n)
				}
				var names []string
				for _, w := range webhookList(t, got[0]) {
					names = append(names, yaml.GetValue(w.Field("name").Value))
				}
				if !slices.Equal(names, tc.webhooks) {
					t.Errorf("webhooks %q, want %q", names, tc.webhooks)
				}
				checkGolden(t, rev+"/tag-"+tc.tag+".yaml", text(t, got...))
			})
		}
	}
}

// TestTagAutoInject: a revision installed with
// sidecarInjectorWebhook.enableNamespacesByDefault makes the default tag
// inject every unlabelled namespace but the system ones, as the chart does.
func TestTagAutoInject(t *testing.T) {
	objs := read(t, "1-31/default.yaml")
	cm := get(t, objs, "ConfigMap", "values-1-31")
	data := cm.GetDataMap()
	const off, on = `"enableNamespacesByDefault": false`, `"enableNamespacesByDefault": true`
	if strings.Count(data["merged-values"], off) != 1 {
		t.Fatalf("values-1-31 merged-values: want one %s", off)
	}
	data["merged-values"] = strings.Replace(data["merged-values"], off, on, 1)
	cm.SetDataMap(data)

	got, err := pointer.Tag(ns, "default", "1-31", objs)
	if err != nil {
		t.Fatal(err)
	}
	whs := webhookList(t, got[0])
	if len(whs) != 5 {
		t.Fatalf("got %d webhooks, want 5", len(whs))
	}
	auto := whs[4]
	want := `admissionReviewVersions:
- v1
clientConfig:
  service:
    name: istiod-1-31
    namespace: istio-system
    path: /inject
    port: 443
failurePolicy: Fail
name: auto.sidecar-injector.istio.io
namespaceSelector:
  matchExpressions:
  - key: istio-injection
    operator: DoesNotExist
  - key: istio.io/rev
    operator: DoesNotExist
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
    - kube-system
    - kube-public
    - kube-node-lease
    - local-path-storage
objectSelector:
  matchExpressions:
  - key: sidecar.istio.io/inject
    operator: DoesNotExist
  - key: istio.io/rev
    operator: DoesNotExist
reinvocationPolicy: Never
rules:
- apiGroups:
  - ""
  apiVersions:
  - v1
  operations:
  - CREATE
  resources:
  - pods
sideEffects: None
`
	if g := auto.MustString(); g != want {
		t.Errorf("auto webhook:\n%s\nwant:\n%s", g, want)
	}
	// An ordinary tag has no such webhook: it only serves its own label.
	got, err = pointer.Tag(ns, "prod-stable", "1-31", objs)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(webhookList(t, got[0])); n != 2 {
		t.Errorf("prod-stable: got %d webhooks, want 2", n)
	}
}

// TestOtherNamespace: outside istio-system Istio's charts suffix the
// cluster-scoped webhook names with the namespace; tags follow.
func TestOtherNamespace(t *testing.T) {
	const other = "mesh"
	var objs []*yaml.RNode
	for _, o := range read(t, "1-31/default.yaml") {
		o := o.Copy()
		switch {
		case o.GetKind() == "MutatingWebhookConfiguration" && o.GetName() == "istio-sidecar-injector-1-31":
			must(t, o.SetName("istio-sidecar-injector-1-31-"+other))
		case o.GetKind() == "ValidatingWebhookConfiguration" && o.GetName() == "istio-validator-1-31-istio-system":
			must(t, o.SetName("istio-validator-1-31-"+other))
		}
		if o.GetNamespace() == ns {
			must(t, o.SetNamespace(other))
		}
		objs = append(objs, o)
	}
	tag, err := pointer.Tag(other, "prod-stable", "1-31", objs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tag[0].GetName(), "istio-revision-tag-prod-stable-"+other; got != want {
		t.Errorf("tag webhook configuration %q, want %q", got, want)
	}
	if got := tag[1].GetNamespace() + "/" + tag[1].GetName(); got != other+"/istiod-revision-tag-prod-stable" {
		t.Errorf("tag Service %q", got)
	}
	def, err := pointer.DefaultRevision(other, "1-31", objs)
	if err != nil {
		t.Fatal(err)
	}
	if got := def[0].GetNamespace() + "/" + def[0].GetName(); got != other+"/istiod" {
		t.Errorf("Service %q", got)
	}
	if got := def[1].GetName(); got != pointer.DefaultValidatorName {
		t.Errorf("validator %q: there is one per cluster, never suffixed", got)
	}
	// The webhooks keep calling the revision's istiod, here in its own
	// namespace (the charts write global.istioNamespace there).
	for _, o := range []*yaml.RNode{tag[0], def[1]} {
		for _, w := range webhookList(t, o) {
			if n, _ := w.GetString("clientConfig.service.namespace"); n != ns {
				// The fixture was rendered for istio-system; only the names
				// were moved, so the copied clientConfig still says so.
				t.Errorf("%s: clientConfig.service.namespace %q must be copied from the revision", o.GetName(), n)
			}
		}
	}
}

// TestNoReaderAnnotations: objects read from a tree carry kyaml's path and
// index annotations; rendered objects must not inherit them.
func TestNoReaderAnnotations(t *testing.T) {
	objs := read(t, "1-31/default.yaml")
	if len(objs[0].GetAnnotations()) == 0 {
		t.Fatal("the reader set no annotations: the test would prove nothing")
	}
	def, err := pointer.DefaultRevision(ns, "1-31", objs)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := pointer.Tag(ns, "prod-stable", "1-31", objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range append(def, tag...) {
		for k := range o.GetAnnotations() {
			t.Errorf("%s %s: annotation %s", o.GetKind(), o.GetName(), k)
		}
	}
}

// TestDeterministic: input order does not change the output.
func TestDeterministic(t *testing.T) {
	objs := read(t, "1-31/default.yaml")
	rev := slices.Clone(objs)
	slices.Reverse(rev)
	for _, f := range []func([]*yaml.RNode) ([]*yaml.RNode, error){
		func(o []*yaml.RNode) ([]*yaml.RNode, error) { return pointer.DefaultRevision(ns, "1-31", o) },
		func(o []*yaml.RNode) ([]*yaml.RNode, error) { return pointer.Tag(ns, "default", "1-31", o) },
	} {
		a, err := f(objs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f(rev)
		if err != nil {
			t.Fatal(err)
		}
		if string(text(t, a...)) != string(text(t, b...)) {
			t.Errorf("output depends on input order")
		}
	}
}

func TestErrors(t *testing.T) {
	objs := read(t, "1-31/default.yaml")
	without := func(kind, name string) []*yaml.RNode {
		return slices.DeleteFunc(slices.Clone(objs), func(o *yaml.RNode) bool { return o.GetKind() == kind && o.GetName() == name })
	}
	relabel := func(kind, name, rev string) []*yaml.RNode {
		out := slices.Clone(objs)
		for i, o := range out {
			if o.GetKind() == kind && o.GetName() == name {
				o = o.Copy()
				must(t, o.PipeE(yaml.SetLabel("istio.io/rev", rev)))
				out[i] = o
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"no istiod Service", func() error {
			_, err := pointer.DefaultRevision(ns, "1-31", without("Service", "istiod-1-31"))
			return err
		}, `Service istio-system/istiod-1-31 must be in revision "1-31": the istiod Service selects its pods`},
		{"wrong active revision", func() error {
			_, err := pointer.DefaultRevision(ns, "1-30", objs)
			return err
		}, `Service istio-system/istiod-1-30 must be in revision "1-30"`},
		{"no validator", func() error {
			_, err := pointer.DefaultRevision(ns, "1-31", without("ValidatingWebhookConfiguration", "istio-validator-1-31-istio-system"))
			return err
		}, `ValidatingWebhookConfiguration istio-validator-1-31-istio-system must be in revision "1-31": istiod-default-validator is rendered from it`},
		{"validator of another revision", func() error {
			_, err := pointer.DefaultRevision(ns, "1-31", relabel("ValidatingWebhookConfiguration", "istio-validator-1-31-istio-system", "1-30"))
			return err
		}, `ValidatingWebhookConfiguration istio-validator-1-31-istio-system: label istio.io/rev must be "1-31", not "1-30"`},
		{"no injector", func() error {
			_, err := pointer.Tag(ns, "prod-stable", "1-31", without("MutatingWebhookConfiguration", "istio-sidecar-injector-1-31"))
			return err
		}, `MutatingWebhookConfiguration istio-sidecar-injector-1-31 must be in revision "1-31": tag prod-stable's webhooks are rendered from it`},
		{"tag Service missing", func() error {
			_, err := pointer.Tag(ns, "prod-stable", "1-31", without("Service", "istiod-1-31"))
			return err
		}, `Service istio-system/istiod-1-31 must be in revision "1-31": tag prod-stable's Service is rendered from it`},
		{"duplicate", func() error {
			_, err := pointer.Tag(ns, "prod-stable", "1-31", append(slices.Clone(objs), get(t, objs, "Service", "istiod-1-31").Copy()))
			return err
		}, `Service istio-system/istiod-1-31 must be unique in the revision's output`},
		{"bad tag", func() error {
			_, err := pointer.Tag(ns, "Prod", "1-31", objs)
			return err
		}, `tag "Prod" must be a DNS label`},
		{"tag named like its revision", func() error {
			_, err := pointer.Tag(ns, "1-31", "1-31", objs)
			return err
		}, `tag "1-31" must not be named like the revision it points at`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestIsPointer runs over every fixture: exactly the objects istioctl
// renders for a default revision, a tag or an unrevisioned istiod are
// pointers.
func TestIsPointer(t *testing.T) {
	want := map[string][]string{
		"1-30/default-revision.yaml": {"ValidatingWebhookConfiguration istiod-default-validator"},
		"1-31/default-revision.yaml": {"ValidatingWebhookConfiguration istiod-default-validator"},
		"1-30/tags.yaml":             {"MutatingWebhookConfiguration istio-revision-tag-prod-stable", "Service istiod-revision-tag-prod-stable"},
		"1-31/tags.yaml":             {"MutatingWebhookConfiguration istio-revision-tag-prod-stable", "Service istiod-revision-tag-prod-stable"},
		"1-30/tag-default.yaml":      {"MutatingWebhookConfiguration istio-revision-tag-default", "Service istiod-revision-tag-default"},
		"1-31/tag-default.yaml":      {"MutatingWebhookConfiguration istio-revision-tag-default", "Service istiod-revision-tag-default"},
		"norev/default.yaml":         {"Service istiod"},
	}
	files, err := filepath.Glob(filepath.Join(fixtures, "*", "*.yaml"))
	if err != nil || len(files) < 11 {
		t.Fatalf("fixtures: %v, %d files", err, len(files))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(fixtures, f)
		rel = filepath.ToSlash(rel)
		var got []string
		for _, o := range read(t, rel) {
			if pointer.IsPointer(o) {
				got = append(got, o.GetKind()+" "+o.GetName())
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want[rel]) {
			t.Errorf("%s: pointers %q, want %q", rel, got, want[rel])
		}
	}
}

func webhookList(t testing.TB, obj *yaml.RNode) []*yaml.RNode {
	t.Helper()
	list, err := obj.Pipe(yaml.Lookup("webhooks"))
	if err != nil || list == nil {
		t.Fatalf("%s: no webhooks: %v", obj.GetName(), err)
	}
	els, err := list.Elements()
	if err != nil {
		t.Fatal(err)
	}
	return els
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
