package gateway

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

const goldenDir = "../../testdata/gateway/golden"

var revisions = []string{"1-30", "1-31"}

// fixture is an istioctl output present for both revisions.
type fixture struct {
	name     string
	path     string // with %s for the revision
	gateways []string
	// kinds of each gateway's objects, sorted.
	kinds []string
}

var fixtures = []fixture{
	{
		name:     "default",
		path:     "../../testdata/istioctl/%s/default.yaml",
		gateways: []string{"istio-ingressgateway"},
		kinds:    []string{KindDeployment, KindHPA, KindRole, KindRoleBinding, KindService, KindServiceAccount},
	},
	{
		name:     "demo",
		path:     "../../testdata/istioctl/%s/demo.yaml",
		gateways: []string{"istio-egressgateway", "istio-ingressgateway"},
		kinds:    []string{KindDeployment, KindRole, KindRoleBinding, KindService, KindServiceAccount},
	},
	{
		name:     "custom",
		path:     "../../testdata/gateway/custom-%s.yaml",
		gateways: []string{"internal-ingress", "public-ingress"},
		kinds:    []string{KindDeployment, KindHPA, KindPDB, KindRole, KindRoleBinding, KindService, KindServiceAccount},
	},
}

func (f fixture) load(t *testing.T, rev string) []*yaml.RNode {
	t.Helper()
	return readObjects(t, fmt.Sprintf(f.path, rev))
}

// parsed caches the fixtures: parsing the istioctl outputs dominates the
// tests' time. Callers get copies they may edit.
var parsed = map[string][]*yaml.RNode{}

func readObjects(t *testing.T, path string) []*yaml.RNode {
	t.Helper()
	if objs, ok := parsed[path]; ok {
		return copyAll(objs)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parsed[path] = parseObjects(t, string(b))
	return copyAll(parsed[path])
}

func parseObjects(t *testing.T, s string) []*yaml.RNode {
	t.Helper()
	objs, err := (&kio.ByteReader{Reader: strings.NewReader(s), OmitReaderAnnotations: true}).Read()
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func mustParse(t *testing.T, s string) *yaml.RNode {
	t.Helper()
	n, err := yaml.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// serialize writes objects the way the tree's files are written.
func serialize(t *testing.T, objs ...*yaml.RNode) string {
	t.Helper()
	var buf bytes.Buffer
	if err := (kio.ByteWriter{Writer: &buf}).Write(objs); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func copyAll(objs []*yaml.RNode) []*yaml.RNode {
	out := make([]*yaml.RNode, len(objs))
	for i, o := range objs {
		out[i] = o.Copy()
	}
	return out
}

// golden compares got with testdata/gateway/golden/name, or rewrites it
// under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	treetest.GoldenFile(t, filepath.Join(goldenDir, name), []byte(got))
}

// lineDiff shows the first differing lines, enough to see what changed.
func lineDiff(want, got string) string { return treetest.LineDiff([]byte(got), []byte(want)) }

func byKindName(objs []*yaml.RNode, kind, name string) *yaml.RNode {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func find(t *testing.T, objs []*yaml.RNode) []Component {
	t.Helper()
	comps, err := Find(objs)
	if err != nil {
		t.Fatal(err)
	}
	return comps
}

// hasRevisionToken reports whether name carries rev as dash-separated
// tokens, the rule that files an object under its revision.
func hasRevisionToken(name, rev string) bool {
	return strings.Contains("-"+name+"-", "-"+rev+"-")
}

// podTemplate is the pod template of a workload of a revision.
type podTemplate struct {
	owner     string
	namespace string
	labels    map[string]string
}

func podTemplates(t *testing.T, objs []*yaml.RNode) []podTemplate {
	t.Helper()
	var out []podTemplate
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job":
		default:
			continue
		}
		l, err := stringMap(o, "spec", "template", "metadata", "labels")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, podTemplate{owner: o.GetKind() + " " + o.GetName(), namespace: o.GetNamespace(), labels: l})
	}
	if len(out) == 0 {
		t.Fatal("no pod templates: the check would prove nothing")
	}
	return out
}

// selected returns the owners of the pod templates an object's selector
// picks: a Service's spec.selector, a PDB's or Deployment's
// spec.selector.matchLabels. It matches on its own rather than with the
// package's matcher, so a matcher bug cannot hide here.
func selected(t *testing.T, o *yaml.RNode, pods []podTemplate) []string {
	t.Helper()
	path := []string{"spec", "selector"}
	if o.GetKind() != KindService {
		if n, _ := o.Pipe(yaml.Lookup("spec", "selector", "matchExpressions")); n != nil {
			t.Fatalf("%s %s: matchExpressions are not used by the fixtures", o.GetKind(), o.GetName())
		}
		path = append(path, "matchLabels")
	}
	sel, err := stringMap(o, path...)
	if err != nil {
		t.Fatal(err)
	}
	if len(sel) == 0 {
		return nil
	}
	var out []string
	for _, p := range pods {
		if p.namespace != o.GetNamespace() {
			continue
		}
		all := true
		for k, v := range sel {
			if lv, ok := p.labels[k]; !ok || lv != v {
				all = false
			}
		}
		if all {
			out = append(out, p.owner)
		}
	}
	return out
}
