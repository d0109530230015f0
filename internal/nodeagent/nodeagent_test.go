package nodeagent_test

import (
	"os"
	"slices"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/istio-gitops/istio-gitops/internal/nodeagent"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// TestSplit: in istioctl's ambient output and in Istio's cni and ztunnel
// charts, each node agent object goes with its agent: istio-cni's
// DaemonSet, account, ConfigMap and roles; ztunnel's DaemonSet and
// account; nothing else.
func TestSplit(t *testing.T) {
	want := map[string][]string{
		"cni":     {"ClusterRole/istio-cni", "ClusterRole/istio-cni-ambient", "ClusterRole/istio-cni-repair-role", "ClusterRoleBinding/istio-cni", "ClusterRoleBinding/istio-cni-ambient", "ClusterRoleBinding/istio-cni-repair-rolebinding", "ConfigMap/istio-cni-config", "DaemonSet/istio-cni-node", "ServiceAccount/istio-cni"},
		"ztunnel": {"DaemonSet/ztunnel", "ServiceAccount/ztunnel"},
	}
	for _, fixture := range []string{"../../testdata/istioctl/1-31/ambient.yaml", "../../testdata/helm/1-31/all.yaml"} {
		f, err := os.Open(fixture)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := (&kio.ByteReader{Reader: f, OmitReaderAnnotations: true}).Read()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		all, err := nodeagent.Find(objs)
		if err != nil {
			t.Fatal(err)
		}
		split, err := nodeagent.Split(objs)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, o := range objs {
			id := object.IDOf(o)
			a, ok := split[id]
			if ok != all[id] {
				t.Errorf("%s: %s is a node agent's (%v) but split says %v", fixture, object.Describe(o), all[id], ok)
			}
			if ok {
				got[string(a)] = append(got[string(a)], o.GetKind()+"/"+o.GetName())
			}
		}
		for a, names := range want {
			g := got[a]
			slices.Sort(g)
			if !slices.Equal(g, names) {
				t.Errorf("%s: %s has %q, want %q", fixture, a, g, names)
			}
		}
	}
}
