package object_test

import (
	"bytes"
	"fmt"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fuzztest"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// FuzzCheckShape: CheckShape answers for any YAML document without a
// panic or a hang, the same each time; a document it accepts survives
// every accessor and setter a stage may call on it, still passes after
// them, and is written as a file that reads back as one object.
func FuzzCheckShape(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: b\n  labels: {x: y}\n  annotations: {p: q}\ndata: {k: v}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: null\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: null\n  annotations: ~\n",
		"metadata: [a]\n",
		"metadata:\n  labels: [a]\n",
		"metadata:\n  labels: {a: [b]}\n",
		"metadata:\n  annotations: {[a]: b}\n",
		"metadata:\n  name: {a: b}\n",
		"kind: [a]\n",
		"apiVersion: &v v1\nkind: *v\nmetadata: &m\n  name: a\nspec: *m\n",
		"metadata:\n  <<: {labels: [a]}\n  name: a\n",
		"metadata: !!map\n  name: !!int 3\n  namespace: !!null\n",
		"a: 1\na: 2\n",
		"metadata:\n  labels:\n    a: 1\n    a: 2\n",
		"a: &a [*a]\n",
		"- a\n",
		"x\n",
		"? [a]\n: b\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    config.kubernetes.io/path: x.yaml\n    internal.config.kubernetes.io/path: y.yaml\n    config.kubernetes.io/index: '0'\n",
		"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzztest.Run(t, fuzztest.Limit, nil, func() error {
			for _, n := range fuzztest.Documents(b, 4) {
				if err := checkShape(n); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

func checkShape(n *yaml.RNode) error {
	err := object.CheckShape(n)
	if again := object.CheckShape(n); fmt.Sprint(again) != fmt.Sprint(err) {
		return fmt.Errorf("CheckShape answers %v, then %v", err, again)
	}
	_ = object.CheckNoAliases(n)
	_ = disk.Fingerprint(n.YNode())
	if err != nil {
		_ = err.Error()
		return nil
	}
	// What every stage reads.
	_, _, _, _ = n.GetKind(), n.GetName(), n.GetNamespace(), n.GetApiVersion()
	_, _ = n.GetLabels(), n.GetAnnotations()
	_ = object.Describe(n)
	_, _, _ = object.IsLocalConfig(n), object.IsOurs(n), object.Scalar(n, "metadata", "name")
	_ = layout.CheckIdentity(n)
	// What the decoder and the stages write.
	if err := kioutil.CopyLegacyAnnotations(n); err != nil {
		return nil
	}
	for _, set := range []func() error{
		func() error { return object.SetPath(n, "1-31/generated/configmap/a.yaml", 0) },
		func() error { return object.SetLabel(n, "istio.io/rev", "1-31") },
		func() error { return object.SetAnnotation(n, "example.com/a", "true") },
		func() error { return layout.ClearReaderAnnotations(n) },
	} {
		if err := set(); err != nil {
			_ = err.Error()
			return nil
		}
		if err := object.CheckShape(n); err != nil {
			return fmt.Errorf("a setter broke the shape it relies on: %v", err)
		}
	}
	data, err := disk.FileBytes([]*yaml.RNode{n})
	if err != nil {
		return nil
	}
	var back []*yaml.RNode
	if err := disk.Decode(bytes.NewReader(data), "a.yaml", func(o *yaml.RNode) error {
		back = append(back, o)
		return nil
	}); err != nil || len(back) != 1 {
		return fmt.Errorf("written as %q, reads back as %d objects: %v", data, len(back), err)
	}
	return nil
}
