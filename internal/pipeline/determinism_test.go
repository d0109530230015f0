package pipeline_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
)

// TestDeterministic runs the function on the same ResourceList with its
// items shuffled, and wants the same bytes out each time.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	dir := setup(t, goldenCases[1]) // add-1-31: a tree and fresh output
	items, err := disk.ReadObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for seed := range uint64(4) {
		shuffled := make([]*yaml.RNode, len(items))
		for i, it := range items {
			shuffled[i] = it.Copy()
		}
		if seed > 0 {
			r := rand.New(rand.NewPCG(seed, seed))
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		}
		var in, out bytes.Buffer
		if err := (kio.ByteWriter{Writer: &in, KeepReaderAnnotations: true,
			WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion}).Write(shuffled); err != nil {
			t.Fatal(err)
		}
		rw := &kio.ByteReadWriter{Reader: &in, Writer: &out, KeepReaderAnnotations: true}
		if err := framework.Execute(processors, rw); err != nil {
			t.Fatal(err)
		}
		if seed == 0 {
			want = out.Bytes()
			if len(want) < 100000 {
				t.Fatalf("output is only %d bytes", len(want))
			}
			continue
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("shuffle %d: output differs from the unshuffled run:\n%s", seed, firstDiff(out.Bytes(), want))
		}
	}
}

func firstDiff(a, b []byte) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			lo := max(0, i-300)
			return string(a[lo:min(len(a), i+200)]) + "\n=====\n" + string(b[lo:min(len(b), i+200)])
		}
	}
	return "lengths differ"
}
