package gateway

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

func TestStableServices(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			sets := perRevisionSets(t, f)
			var outs []string
			for i, s := range sets {
				other := sets[1-i]
				stable, err := StableServices(s.after, s.rev)
				if err != nil {
					t.Fatal(err)
				}
				out := serialize(t, stable...)
				golden(t, fmt.Sprintf("stable-%s-live-%s.yaml", f.name, s.rev), out)
				outs = append(outs, out)

				// One per gateway Service, with its original name.
				origs := Objects(find(t, s.before))
				var wantNames, names []string
				for _, o := range origs {
					if o.GetKind() == KindService {
						wantNames = append(wantNames, o.GetName())
					}
				}
				for _, st := range stable {
					names = append(names, st.GetName())
				}
				if !slices.Equal(names, wantNames) || len(names) == 0 {
					t.Fatalf("stable Services %q, want %q", names, wantNames)
				}

				livePods := podTemplates(t, s.after)
				otherPods := podTemplates(t, other.after)
				for _, st := range stable {
					orig := byKindName(s.before, KindService, st.GetName())
					renamed := byKindName(s.after, KindService, st.GetName()+"-"+s.rev)
					// It selects the live gateway's pods, and no other.
					if got, want := selected(t, st, livePods), selected(t, renamed, livePods); !slices.Equal(got, want) || len(got) != 1 {
						t.Errorf("%s selects %q of the live revision, want %q", st.GetName(), got, want)
					}
					if got := selected(t, st, otherPods); len(got) > 0 {
						t.Errorf("%s selects %q of %s, which is not live", st.GetName(), got, other.rev)
					}
					if got := object.Scalar(st, "spec", "selector", api.RevisionLabel); got != s.rev {
						t.Errorf("%s: selector %s = %q, want %q", st.GetName(), api.RevisionLabel, got, s.rev)
					}
					// Same type and ports as the gateway's own Service.
					for _, field := range []string{"type", "ports"} {
						if a, b := fieldString(t, st, "spec", field), fieldString(t, orig, "spec", field); a != b {
							t.Errorf("%s: spec.%s = %s, want %s", st.GetName(), field, a, b)
						}
					}
					if got := st.GetAnnotations()[api.LiveRevisionAnnotation]; got != s.rev {
						t.Errorf("%s: %s = %q", st.GetName(), api.LiveRevisionAnnotation, got)
					}
					if _, ok := st.GetLabels()[api.RevisionLabel]; ok {
						t.Errorf("%s: must not carry the %s label: it would change with the live revision", st.GetName(), api.RevisionLabel)
					}
				}
				// The live revision's objects are not touched.
				if again := serialize(t, s.after...); again != serialize(t, perRevisionCopy(t, f, s.rev)...) {
					t.Error("StableServices changed the live revision's objects")
				}
			}
			// Switching live between the revisions touches only selectors
			// and annotations.
			if outs[0] == outs[1] {
				t.Fatal("the stable Services must differ between live revisions")
			}
			if a, b := withoutLiveBits(t, outs[0]), withoutLiveBits(t, outs[1]); a != b {
				t.Errorf("switching live changes more than selectors and annotations:\n%s", lineDiff(a, b))
			}
		})
	}
}

func perRevisionCopy(t *testing.T, f fixture, rev string) []*yaml.RNode {
	t.Helper()
	objs := f.load(t, rev)
	if err := PerRevision(objs, rev); err != nil {
		t.Fatal(err)
	}
	return objs
}

func fieldString(t *testing.T, n *yaml.RNode, path ...string) string {
	t.Helper()
	v, err := n.Pipe(yaml.Lookup(path...))
	if err != nil || v == nil {
		t.Fatalf("%s %s: %s: %v", n.GetKind(), n.GetName(), strings.Join(path, "."), err)
	}
	return v.MustString()
}

// withoutLiveBits drops the fields a live switch may change: the selectors'
// revision and the annotations.
func withoutLiveBits(t *testing.T, s string) string {
	t.Helper()
	objs := parseObjects(t, s)
	for _, o := range objs {
		if _, err := o.Pipe(yaml.Lookup("spec", "selector"), yaml.Clear(api.RevisionLabel)); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Pipe(yaml.Lookup("metadata"), yaml.Clear("annotations")); err != nil {
			t.Fatal(err)
		}
	}
	return serialize(t, objs...)
}

func TestStableServicesErrors(t *testing.T) {
	f := fixtures[0]
	t.Run("not renamed", func(t *testing.T) {
		_, err := StableServices(f.load(t, "1-30"), "1-30")
		want := `Service istio-system/istio-ingressgateway: a gateway Service of the live revision "1-30" must be named <gateway>-1-30`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error = %v, want %q", err, want)
		}
	})
	t.Run("renamed for another revision", func(t *testing.T) {
		_, err := StableServices(perRevisionCopy(t, f, "1-30"), "1-31")
		if err == nil || !strings.Contains(err.Error(), `must be named <gateway>-1-31`) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("selector not pinned to the revision", func(t *testing.T) {
		objs := perRevisionCopy(t, f, "1-30")
		svc := byKindName(objs, KindService, "istio-ingressgateway-1-30")
		if _, err := svc.Pipe(yaml.Lookup("spec", "selector"), yaml.Clear(api.RevisionLabel)); err != nil {
			t.Fatal(err)
		}
		_, err := StableServices(objs, "1-30")
		want := `Service istio-system/istio-ingressgateway-1-30: spec.selector["istio.io/rev"] is "": it must select the live revision "1-30"'s pods`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error = %v, want %q", err, want)
		}
	})
}

// Values the cluster allocates per Service are not copied onto the stable
// one, and file annotations do not follow it out of the revision's folder.
func TestStableServicesDropsAllocatedFields(t *testing.T) {
	objs := perRevisionCopy(t, fixtures[0], "1-31")
	svc := byKindName(objs, KindService, "istio-ingressgateway-1-31")
	for _, kv := range [][2]string{{"clusterIP", "10.0.0.10"}, {"healthCheckNodePort", "30000"}} {
		if err := svc.PipeE(yaml.Lookup("spec"), yaml.SetField(kv[0], yaml.NewScalarRNode(kv[1]))); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.PipeE(yaml.SetAnnotation("config.kubernetes.io/path", "1-31/generated/service/istio-ingressgateway-1-31.yaml")); err != nil {
		t.Fatal(err)
	}
	stable, err := StableServices(objs, "1-31")
	if err != nil {
		t.Fatal(err)
	}
	out := serialize(t, stable...)
	for _, bad := range []string{"clusterIP", "healthCheckNodePort", "config.kubernetes.io/path"} {
		if strings.Contains(out, bad) {
			t.Errorf("stable Service carries %s:\n%s", bad, out)
		}
	}
	if !strings.Contains(serialize(t, svc), "clusterIP: 10.0.0.10") {
		t.Error("the revision's Service lost its clusterIP")
	}
}
