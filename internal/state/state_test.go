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

// TestSeal: a rendered object carries the digest of its own file; any
// edit of the file (a value, a comment, the digest, a second digest line
// from a bad merge) no longer matches it, and a file without one says so.
func TestSeal(t *testing.T) {
	o := yaml.MustParse("apiVersion: v1\nkind: Service\nmetadata:\n  name: istiod\n  annotations:\n    fn.istio-gitops.dev/points-at: 1-31\nspec:\n  selector:\n    istio.io/rev: 1-31\n")
	b, err := state.Seal(o, func(n *yaml.RNode) ([]byte, error) { return []byte(n.MustString()), nil })
	if err != nil {
		t.Fatal(err)
	}
	recorded, now, ok := state.Sealed(b)
	if !ok || recorded != now || !strings.HasPrefix(recorded, "sha256:") || strings.Contains(recorded, "00000000000000") {
		t.Fatalf("sealed %q, digest %q, now %q, ok %v", b, recorded, now, ok)
	}
	if got := o.GetAnnotations()["fn.istio-gitops.dev/rendered-digest"]; got != recorded {
		t.Errorf("the object's annotation %q, the file's %q", got, recorded)
	}
	if string(state.WithoutDigest(b)) == string(b) || strings.Contains(string(state.WithoutDigest(b)), "rendered-digest") {
		t.Errorf("WithoutDigest kept the digest:\n%s", state.WithoutDigest(b))
	}
	line := "    fn.istio-gitops.dev/rendered-digest: '" + recorded + "'\n"
	for name, edited := range map[string]string{
		"value":         strings.Replace(string(b), "istio.io/rev: 1-31", "istio.io/rev: 1-30", 1),
		"comment":       strings.Replace(string(b), "spec:\n", "spec: # mine\n", 1),
		"digest":        strings.Replace(string(b), recorded[len(recorded)-4:], "abcd", 1),
		"merged record": strings.Replace(string(b), line, line+line, 1),
	} {
		if edited == string(b) {
			t.Fatalf("%s: the edit did not apply to\n%s", name, b)
		}
		if r, n, ok := state.Sealed([]byte(edited)); !ok || r == n {
			t.Errorf("%s: an edited file matches its digest (%v)", name, ok)
		}
	}
	if _, _, ok := state.Sealed([]byte("apiVersion: v1\nkind: Service\n")); ok {
		t.Error("a file without a digest is sealed")
	}
}

// TestEqual: two records are equal when they say the same, whatever the
// order their files were added in; a file, a digest, a patch or the
// version that differs makes them differ.
func TestEqual(t *testing.T) {
	rec := func(edit func(*state.State)) *state.State {
		st := state.New(state.Kind, "1-31")
		st.Spec.Version = "1.31.0"
		st.Spec.Files["generated/a.yaml"] = state.Digest([]byte("a"))
		st.Spec.Files["generated/b.yaml"] = state.Digest([]byte("b"))
		st.Spec.Patches = []state.Patch{{Name: "fix", Digest: "sha256:00"}}
		if edit != nil {
			edit(st)
		}
		return st
	}
	base := rec(nil)
	if !base.Equal(rec(func(s *state.State) {
		s.Spec.Files = map[string]string{"generated/b.yaml": state.Digest([]byte("b")), "generated/a.yaml": state.Digest([]byte("a"))}
	})) {
		t.Error("records that say the same differ")
	}
	for name, edit := range map[string]func(*state.State){
		"a file more":     func(s *state.State) { s.Spec.Files["generated/c.yaml"] = state.Digest([]byte("c")) },
		"a file less":     func(s *state.State) { delete(s.Spec.Files, "generated/b.yaml") },
		"another digest":  func(s *state.State) { s.Spec.Files["generated/a.yaml"] = state.Digest([]byte("A")) },
		"another patch":   func(s *state.State) { s.Spec.Patches[0].Digest = "sha256:01" },
		"another version": func(s *state.State) { s.Spec.Version = "1.31.1" },
		"another name":    func(s *state.State) { s.Metadata.Name = "1-30" },
	} {
		if base.Equal(rec(edit)) {
			t.Errorf("%s: the records must differ", name)
		}
	}
}
