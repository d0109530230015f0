package state_test

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/state"
)

// TestRoundTrip: a record read back from a ResourceList item and written
// again says the same and drops what readers added.
func TestRoundTrip(t *testing.T) {
	st := state.New(state.Kind, "1-31")
	st.Spec.Version = "1.31.0"
	st.Spec.Files["generated/b.yaml"] = state.Digest([]byte("b"))
	st.Spec.Files["generated/a.yaml"] = state.Digest([]byte("a"))
	st.Spec.Patches = []state.Patch{{Name: "fix", Digest: "sha256:00"}}
	n, err := st.Node()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PipeE(yaml.SetAnnotation("internal.config.kubernetes.io/path", "1-31/generated/state.yaml")); err != nil {
		t.Fatal(err)
	}
	back, err := state.Read(n)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(st) {
		t.Errorf("read back %+v, want %+v", back, st)
	}
	out, _ := back.Node()
	s := out.MustString()
	if strings.Contains(s, "internal.config") {
		t.Errorf("reader annotation written back:\n%s", s)
	}
	if strings.Index(s, "generated/a.yaml") > strings.Index(s, "generated/b.yaml") {
		t.Errorf("files not sorted:\n%s", s)
	}
	if !state.Is(out, state.Kind) {
		t.Error("Is(record) = false")
	}
	c := back.Clone()
	c.Spec.Files["generated/c.yaml"] = "x"
	c.Spec.Patches[0].Name = "other"
	if !back.Equal(st) {
		t.Error("changing a clone changed the original")
	}
}
