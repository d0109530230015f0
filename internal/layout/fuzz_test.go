package layout_test

import (
	"fmt"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fuzztest"
	"github.com/istio-gitops/istio-gitops/internal/layout"
)

const controlPlane = "istio-system"

// folders are those the pipeline lays objects out in.
var folders = []string{"1-31/generated", "common", "1-31/generated/node-agents"}

// identity is what a path must tell apart: the kind's folder is its lower
// case (two kinds differing in case only share it, as do two groups'
// kinds of one name: the pipeline refuses both in one tree), and the
// control-plane namespace is the folder's own.
type identity struct{ kind, namespace, name string }

func identityOf(kind, ns, name string) identity {
	if ns == controlPlane {
		ns = ""
	}
	return identity{strings.ToLower(kind), ns, name}
}

// newObject sets the fields as strings, whatever they hold.
func newObject(kind, ns, name string) (*yaml.RNode, error) {
	o := yaml.NewMapRNode(nil)
	for _, kv := range [][]string{{"v1", "apiVersion"}, {kind, "kind"}, {name, "metadata", "name"}, {ns, "metadata", "namespace"}} {
		if kv[0] == "" {
			continue
		}
		p := kv[1:]
		if err := o.PipeE(yaml.LookupCreate(yaml.MappingNode, p[:len(p)-1]...), yaml.SetField(p[len(p)-1], yaml.NewStringRNode(kv[0]))); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// FuzzObjectFile: every kind, namespace and name CheckIdentity accepts
// gets a clean path under its folder, whose segments a file system takes
// and that the tree writer accepts; two identities never share a path;
// Parse reads the kind's folder and the namespace back.
func FuzzObjectFile(f *testing.F) {
	// The longest names Segment keeps whole: a file name of 255 bytes.
	long := strings.Repeat("a", layout.MaxSegment-len(".yaml"))
	for _, s := range [][6]string{
		{"Deployment", "istio-system", "istiod-1-31", "Service", "istio-system", "istiod-1-31"},
		{"ClusterRole", "", "istiod-clusterrole-1-31-istio-system", "ClusterRole", "", "istiod-clusterrole-1-31-istio-system-"},
		{"RoleBinding", "kube-system", "x", "RoleBinding", "", "x"},
		{"ConfigMap", "", "ok.name:with-colon@x", "ConfigMap", "istio-system", "ok.name:with-colon@x"},
		{"ConfigMap", "", "../x", "Config/Map", "", "x"},
		{"ConfigMap", "a/b", "x", "ConfigMap", "..", "x"},
		{"ConfigMap", "", long, "ConfigMap", "", long[:249] + "b"},
		{"ConfigMap", "", long[:249], "ConfigMap", "", long},
		{strings.Repeat("K", 300), "", "x", strings.Repeat("K", 299) + "L", "", "x"},
		{"Secret", strings.Repeat("n", 63), long, "Secret", strings.Repeat("n", 64), long},
		{"A", "", "kustomization", "State", "", "state"},
		{"Kind", "", "x.tmp", "Kind", "", ".istio-gitops-journal"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	f.Fuzz(func(t *testing.T, kind, ns, name, kind2, ns2, name2 string) {
		fuzztest.Run(t, fuzztest.Limit, nil, func() error {
			for _, folder := range folders {
				if err := checkObjectFile(folder, kind, ns, name, kind2, ns2, name2); err != nil {
					return err
				}
			}
			for _, s := range []string{kind, ns, name} {
				for _, suffix := range []string{"", ".yaml"} {
					seg := layout.Segment(s, suffix)
					if len(seg) > layout.MaxSegment || !strings.HasSuffix(seg, suffix) {
						return fmt.Errorf("Segment(%q, %q) = %q: %d bytes", s, suffix, seg, len(seg))
					}
					if len(s)+len(suffix) < layout.MaxSegment && seg != s+suffix {
						return fmt.Errorf("Segment(%q, %q) = %q: a short name must be kept", s, suffix, seg)
					}
				}
			}
			return nil
		})
	})
}

func checkObjectFile(folder, kind, ns, name, kind2, ns2, name2 string) error {
	// A YAML document holds UTF-8 only (yaml writes other bytes !!binary).
	for _, s := range []string{kind, ns, name, kind2, ns2, name2} {
		if !utf8.ValidString(s) {
			return nil
		}
	}
	o, err := newObject(kind, ns, name)
	if err != nil {
		return nil
	}
	if o.GetKind() != kind || o.GetNamespace() != ns || o.GetName() != name {
		return fmt.Errorf("object %q reads %q %q %q", o.MustString(), o.GetKind(), o.GetNamespace(), o.GetName())
	}
	if layout.CheckIdentity(o) != nil {
		return nil
	}
	p := layout.ObjectFile(folder, o, controlPlane)
	if again := layout.ObjectFile(folder, o, controlPlane); again != p {
		return fmt.Errorf("ObjectFile gives %q, then %q", p, again)
	}
	rel, ok := strings.CutPrefix(p, folder+"/")
	if !ok || path.Clean(p) != p || path.IsAbs(p) {
		return fmt.Errorf("%s %s/%s: %q must be a clean path under %s/", kind, ns, name, p, folder)
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > layout.MaxSegment {
			return fmt.Errorf("%s %s/%s: %q: segment %q (%d bytes) must be a file name of at most %d bytes", kind, ns, name, p, seg, len(seg), layout.MaxSegment)
		}
	}
	if err := disk.CheckPath(p); err != nil {
		return fmt.Errorf("%s %s/%s: the tree writer refuses %q: %v", kind, ns, name, p, err)
	}
	kf, pns, file, ok := layout.Parse(rel)
	id := identityOf(kind, ns, name)
	switch {
	case !ok:
		return fmt.Errorf("Parse(%q) refuses what ObjectFile made", rel)
	case kf != layout.Segment(id.kind, ""):
		return fmt.Errorf("Parse(%q): kind folder %q, want %q", rel, kf, layout.Segment(id.kind, ""))
	case pns != id.namespace:
		return fmt.Errorf("Parse(%q): namespace %q, want %q", rel, pns, id.namespace)
	case file != layout.Segment(name, ".yaml"):
		return fmt.Errorf("Parse(%q): file %q, want %q", rel, file, layout.Segment(name, ".yaml"))
	}

	// A second identity, fuzzed, and the one whose untouched name is what
	// Segment cut this one's to: each must get its own path.
	others := [][3]string{{kind2, ns2, name2}}
	if cut := strings.TrimSuffix(file, ".yaml"); cut != name {
		others = append(others, [3]string{kind, ns, cut})
	}
	for _, other := range others {
		o2, err := newObject(other[0], other[1], other[2])
		if err != nil || layout.CheckIdentity(o2) != nil {
			continue
		}
		id2 := identityOf(other[0], other[1], other[2])
		if p2 := layout.ObjectFile(folder, o2, controlPlane); p2 == p && id2 != id {
			return fmt.Errorf("%s %s/%s and %s %s/%s share the path %q", kind, ns, name, other[0], other[1], other[2], p)
		}
	}
	return nil
}
