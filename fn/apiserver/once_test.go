package apiserver_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// onceCases are inputs whose tree is applied once each, on a server of
// its own, with the checks of every deploy (cluster.deploy). Adding an
// input kind (the ambient profile, Istio's Helm charts) is one line here:
// its file under testdata and, if it needs them, its spec lines.
var onceCases = []struct {
	name string
	// source is revision 1-31's input, relative to testdata.
	source string
	// tags, spec: more of the config than revision 1-31 alone.
	tags map[string]string
	spec string
	// files are more files of the tree, such as a Namespace.
	files map[string]string
	// istiod: TestIstiodOnce runs istiod against the tree too.
	istiod bool
}{
	{name: "tag-default", source: "istioctl/1-31/default.yaml", tags: map[string]string{"default": "1-31"}},
	{name: "ambient", source: "istioctl/1-31/ambient.yaml", spec: "  nodeAgents:\n    revision: 1-31\n", istiod: true},
	// Istio's charts install the gateway in a namespace of its own.
	{name: "helm", source: "helm/1-31/all.yaml",
		files: map[string]string{"common/istio-ingress.yaml": strings.Replace(namespace, "istio-system", "istio-ingress", 1)}, istiod: true},
}

// TestApplyOnce applies the tree of each of onceCases once, then removes
// it from Flux: the Kustomization's finalizer deletes every object but
// the CRDs (prune: disabled), so no Istio resource of the cluster goes
// with them.
func TestApplyOnce(t *testing.T) {
	t.Parallel()
	for _, oc := range onceCases {
		t.Run(oc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			c := newCluster(srv, false)
			dir := t.TempDir()
			treetest.Write(t, filepath.Join(dir, "common", "istio-system.yaml"), []byte(namespace))
			for f, content := range oc.files {
				treetest.Write(t, filepath.Join(dir, f), []byte(content))
			}
			cfg := meshConfig{revisions: only131, active: "1-31", tags: oc.tags, spec: oc.spec}
			writeTree(t, dir, cfg, map[string]string{"1-31": oc.source})
			d := c.deploy(t, dir)
			t.Logf("%s", d.summary())
			if len(d.created) != d.objects {
				t.Errorf("created %d of %d objects", len(d.created), d.objects)
			}
			// Removing the tree from Flux deletes all but the CRDs.
			r := c.remove(t)
			t.Logf("removed: %d deleted, %d kept (prune disabled), in %.2fs", len(r.deleted), len(r.kept), r.prune.Seconds())
			var crds []string
			for _, o := range d.created {
				if strings.HasPrefix(o, "CustomResourceDefinition/") {
					crds = append(crds, o)
				}
			}
			if !slices.Equal(r.kept, crds) || len(r.deleted)+len(r.kept) != d.objects {
				t.Errorf("removing the tree deleted %q and kept %q; want every CRD kept, %q, and all else deleted", r.deleted, r.kept, crds)
			}
		})
	}
}
