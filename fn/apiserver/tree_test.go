package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/fn/apiserver"
	"github.com/istio-gitops/istio-gitops/internal/buildtest"
	"github.com/istio-gitops/istio-gitops/internal/cli"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

const (
	testdata = "../../testdata"
	// treePath is the tree's path in the Git repository Flux reads.
	treePath = "clusters/prod/istio"
)

// namespace is the control plane's Namespace, a user file at the top of
// common/: the function keeps and lists it.
const namespace = `apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
`

// meshConfig is the IstioGitOps of one step of a tree's life.
type meshConfig struct {
	revisions []string
	active    string
	// tags maps tag to revision.
	tags map[string]string
	// carry: the second revision carries the first's patches forward.
	carry bool
	// noDriftGuards sets webhooks.driftGuards: false.
	noDriftGuards bool
	// gateways: stable Services and an Ingress per revision, live = active.
	gateways bool
	// flux renders flux/.
	flux bool
	// spec is more lines of spec, as is.
	spec string
}

func (c meshConfig) String() string {
	var b strings.Builder
	b.WriteString(treetest.ConfigHead)
	for i, r := range c.revisions {
		fmt.Fprintf(&b, "  - name: %s\n", r)
		if c.carry && i == 1 {
			fmt.Fprintf(&b, "    patchesFrom: %s\n", c.revisions[0])
		}
	}
	fmt.Fprintf(&b, "  activeRevision: %s\n", c.active)
	if len(c.tags) > 0 {
		b.WriteString("  tags:\n")
		for _, t := range slices.Sorted(maps.Keys(c.tags)) {
			fmt.Fprintf(&b, "    %s: %s\n", t, c.tags[t])
		}
	}
	if c.noDriftGuards {
		b.WriteString("  webhooks:\n    driftGuards: false\n")
	}
	if c.gateways {
		// ingressClassName, not the deprecated annotation, about which
		// the server would warn.
		fmt.Fprintf(&b, `  gateways:
    live: %s
    stableServices: true
    ingress:
      liveOnlyAnnotations: ["cert-manager.io/*", "external-dns.alpha.kubernetes.io/*"]
      template:
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: public
          annotations:
            cert-manager.io/cluster-issuer: letsencrypt
            external-dns.alpha.kubernetes.io/hostname: www.example.com
        spec:
          ingressClassName: gce
          tls:
          - hosts: [www.example.com]
            secretName: www-example-com-tls
          rules:
          - host: www.example.com
            http:
              paths:
              - path: /
                pathType: Prefix
                backend:
                  service:
                    name: istio-ingressgateway
                    port:
                      name: http2
`, c.active)
	}
	if c.flux {
		fmt.Fprintf(&b, `  flux:
    path: ./%s
    sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
    interval: 10m
`, treePath)
	}
	b.WriteString(c.spec)
	return b.String()
}

// stableTree writes, in a folder of its own, the tree of 1-30 alone with
// its prod-stable tag, with or without drift guards: what the tests of
// istiod's and Flux's writes to the webhooks apply.
func stableTree(t *testing.T, guards bool) (string, meshConfig) {
	t.Helper()
	dir := t.TempDir()
	treetest.Write(t, filepath.Join(dir, "common", "istio-system.yaml"), []byte(namespace))
	cfg := meshConfig{revisions: only130, active: "1-30", tags: map[string]string{"prod-stable": "1-30"}, noDriftGuards: !guards}
	writeTree(t, dir, cfg, map[string]string{"1-30": "istioctl/1-30/default.yaml"})
	return dir, cfg
}

// writeTree writes cfg into the tree at dir, with fresh output for the
// revisions in sources (revision -> file under testdata), and runs the
// function over it; the run must succeed without a warning.
func writeTree(t *testing.T, dir string, cfg meshConfig, sources map[string]string) {
	t.Helper()
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg.String()))
	for _, rev := range slices.Sorted(maps.Keys(sources)) {
		treetest.CopyFile(t, filepath.Join(testdata, sources[rev]), filepath.Join(dir, rev, "istioctl-output.yaml"))
	}
	runTree(t, dir)
}

// runTree runs the function over the tree at dir.
func runTree(t *testing.T, dir string) {
	t.Helper()
	results, err := cli.Processors().RunDir(dir)
	if err != nil {
		t.Fatalf("run %s: %v\n%v", dir, err, results)
	}
	for _, r := range results {
		// Istio's base chart renders istiod-default-validator, which
		// spec.activeRevision renders: documented, and said. A retirement
		// without spec.namespaces.from says that namespaces kept elsewhere
		// went unchecked (these trees keep none elsewhere).
		expected := strings.HasPrefix(r.Message, "dropped: gives way to the object rendered from") ||
			strings.HasPrefix(r.Message, "retiring [") && strings.Contains(r.Message, ": no namespace source is configured")
		if (r.Severity == framework.Warning || r.Severity == framework.Error) && !expected {
			t.Errorf("the run warns: %s", r.Message)
		}
	}
}

// upstreamWarnings are the server's warnings about fields Istio's own
// output sets, not of our making: istio-cni's AppArmor annotation.
var upstreamWarnings = []string{"container.apparmor.security.beta.kubernetes.io/"}

// fluxKustomization is one Kustomization that deploys a folder of the tree.
type fluxKustomization struct {
	name, namespace string
	// folder is relative to the tree's root.
	folder    string
	dependsOn []string
}

// rootKustomization deploys the whole tree, as one Kustomization pointed
// at the tree's root does.
var rootKustomization = []fluxKustomization{{name: "istio", namespace: "flux-system", folder: "."}}

// fluxKustomizations reads the Kustomizations of the tree's flux/, in the
// order dependsOn allows.
func fluxKustomizations(t *testing.T, dir string) []fluxKustomization {
	t.Helper()
	objs := build(t, dir, "flux")
	var ks []fluxKustomization
	for _, o := range objs {
		p, _, _ := unstructured.NestedString(o.Object, "spec", "path")
		rel, ok := strings.CutPrefix(path.Clean(p), treePath+"/")
		if !ok {
			t.Fatalf("flux/: Kustomization %s: path %q is not in %s", o.GetName(), p, treePath)
		}
		k := fluxKustomization{name: o.GetName(), namespace: o.GetNamespace(), folder: rel}
		deps, _, _ := unstructured.NestedSlice(o.Object, "spec", "dependsOn")
		for _, d := range deps {
			k.dependsOn = append(k.dependsOn, d.(map[string]any)["name"].(string))
		}
		ks = append(ks, k)
	}
	// Dependencies first: kustomize-controller waits for them to be ready.
	var ordered []fluxKustomization
	done := map[string]bool{}
	for len(ordered) < len(ks) {
		n := len(ordered)
		for _, k := range ks {
			if !done[k.name] && !slices.ContainsFunc(k.dependsOn, func(d string) bool { return !done[d] }) {
				ordered = append(ordered, k)
				done[k.name] = true
			}
		}
		if len(ordered) == n {
			t.Fatalf("flux/: dependsOn cannot be satisfied: %+v", ks)
		}
	}
	return ordered
}

// build builds a folder of the tree as kustomize-controller does.
func build(t *testing.T, dir, folder string) []*unstructured.Unstructured {
	t.Helper()
	b := buildtest.FluxYAML(t, dir, folder)
	if b == nil {
		t.FailNow()
	}
	objs, err := apiserver.ReadObjects(b)
	if err != nil {
		t.Fatalf("build %s: %v", folder, err)
	}
	return objs
}

// cluster is a tree deployed on a server as Flux deploys it, step by step.
type cluster struct {
	srv  *apiserver.Server
	flux *apiserver.Flux
	// viaFlux: the Kustomizations of flux/ deploy the tree, one per folder;
	// else one Kustomization deploys its root.
	viaFlux bool
	ks      map[string]*apiserver.Kustomization
	// built is the last build of each Kustomization, by object ID.
	built map[string]map[string]*unstructured.Unstructured
}

func newCluster(srv *apiserver.Server, viaFlux bool) *cluster {
	return &cluster{srv: srv, flux: apiserver.NewFlux(srv.Client), viaFlux: viaFlux,
		ks: map[string]*apiserver.Kustomization{}, built: map[string]map[string]*unstructured.Unstructured{}}
}

// deployed is what deploying one step did, over all Kustomizations.
type deployed struct {
	// by action, object descriptions ("Kind/namespace/name"), sorted
	created, configured, unchanged, deleted, kept []string
	// objects is how many objects the builds hold.
	objects int
	// wall times
	build, apply, prune, diff, total time.Duration
}

// deploy builds the tree at dir as kustomize-controller does and applies
// it, then checks what the server did:
//   - it accepted every object, and sent no warning;
//   - an object is created when new, configured when its build changed,
//     and unchanged, its resourceVersion kept, when its build did not;
//   - what a build no longer holds is deleted, except what is annotated
//     prune: disabled; a deleted object is gone;
//   - a second apply, dry-run, would change nothing.
func (c *cluster) deploy(t *testing.T, dir string) deployed {
	t.Helper()
	ctx := context.Background()
	begin := time.Now()
	kss := rootKustomization
	if c.viaFlux {
		kss = fluxKustomizations(t, dir)
	}
	var d deployed
	listed := map[string]bool{}
	builds := map[string][]*unstructured.Unstructured{}
	for _, fk := range kss {
		listed[fk.name] = true
		builds[fk.name] = build(t, dir, fk.folder)
	}
	d.build = time.Since(begin)
	for _, fk := range kss {
		k := c.ks[fk.name]
		if k == nil {
			k = &apiserver.Kustomization{Name: fk.name, Namespace: fk.namespace}
			c.ks[fk.name] = k
		}
		prev := c.built[fk.name]
		before := c.resourceVersions(t, prev)
		objs := builds[fk.name]
		res, err := c.flux.Reconcile(ctx, k, objs)
		if err != nil {
			t.Fatalf("Flux's apply of %s failed: %v", fk.folder, err)
		}
		d.apply += res.ApplyTime
		d.prune += res.PruneTime
		now := map[string]*unstructured.Unstructured{}
		for _, o := range objs {
			now[idOf(o)] = o.DeepCopy()
		}
		c.built[fk.name] = now
		d.objects += len(objs)
		c.checkApplied(t, fk.name, res.Applied, prev, now, before)
		c.checkPruned(t, fk.name, res.Pruned, prev, now, &d)
		for _, e := range res.Applied.Entries {
			s := describe(e.ObjMetadata)
			switch e.Action {
			case ssa.CreatedAction:
				d.created = append(d.created, s)
			case ssa.ConfiguredAction:
				d.configured = append(d.configured, s)
			case ssa.UnchangedAction:
				d.unchanged = append(d.unchanged, s)
			}
		}
	}
	// A Kustomization gone from flux/ is deleted by its parent, and its
	// finalizer deletes what it applied (prune: true).
	for _, name := range slices.Sorted(maps.Keys(c.ks)) {
		if !listed[name] {
			c.finalize(t, name, &d)
		}
	}
	start := time.Now()
	for _, fk := range kss {
		changes, err := c.flux.Diff(ctx, c.ks[fk.name], builds[fk.name])
		if err != nil {
			t.Fatalf("dry-run of %s: %v", fk.folder, err)
		}
		for _, e := range changes {
			t.Errorf("a second apply would change %s: %s", describe(e.ObjMetadata), e.Action)
		}
	}
	d.diff = time.Since(start)
	for _, w := range c.srv.Warnings() {
		if slices.ContainsFunc(upstreamWarnings, func(u string) bool { return strings.Contains(w, u) }) {
			t.Logf("the server warned of Istio's output: %s", w)
			continue
		}
		t.Errorf("the server warned: %s", w)
	}
	d.total = time.Since(begin)
	for _, l := range [][]string{d.created, d.configured, d.unchanged, d.deleted, d.kept} {
		slices.Sort(l)
	}
	return d
}

// remove deletes every Kustomization, as removing the tree from Flux
// does, and checks that each finalizer deleted what it applied but what
// has prune disabled.
func (c *cluster) remove(t *testing.T) deployed {
	t.Helper()
	var d deployed
	for _, name := range slices.Sorted(maps.Keys(c.ks)) {
		c.finalize(t, name, &d)
	}
	for _, l := range [][]string{d.deleted, d.kept} {
		slices.Sort(l)
	}
	return d
}

// finalize runs the finalizer of Kustomization name, deleted.
func (c *cluster) finalize(t *testing.T, name string, d *deployed) {
	t.Helper()
	prev := c.built[name]
	start := time.Now()
	cs, err := c.flux.Finalize(context.Background(), c.ks[name])
	d.prune += time.Since(start)
	if err != nil {
		t.Fatalf("the server refused to delete: %v", err)
	}
	c.checkPruned(t, name, cs, prev, nil, d)
	delete(c.ks, name)
	delete(c.built, name)
}

// checkApplied: each object's action follows from its builds, and an
// unchanged object keeps its resourceVersion.
func (c *cluster) checkApplied(t *testing.T, k string, cs *ssa.ChangeSet, prev, now map[string]*unstructured.Unstructured, before map[string]string) {
	t.Helper()
	if len(cs.Entries) != len(now) {
		t.Errorf("%s: %d objects built, %d applied", k, len(now), len(cs.Entries))
	}
	after := c.resourceVersions(t, now)
	for _, e := range cs.Entries {
		id := e.ObjMetadata.String()
		old, had := prev[id]
		want := ssa.CreatedAction
		if had {
			want = ssa.ConfiguredAction
			if sameJSON(t, old, now[id]) {
				want = ssa.UnchangedAction
			}
		}
		if e.Action != want {
			t.Errorf("%s: %s was %s, want %s", k, describe(e.ObjMetadata), e.Action, want)
		}
		if want == ssa.UnchangedAction && before[id] != after[id] {
			t.Errorf("%s: %s did not change, but its resourceVersion moved from %s to %s", k, describe(e.ObjMetadata), before[id], after[id])
		}
	}
}

// checkPruned: the objects the new build lacks are deleted, and gone,
// unless prune is disabled on them; no other object is deleted.
func (c *cluster) checkPruned(t *testing.T, k string, cs *ssa.ChangeSet, prev, now map[string]*unstructured.Unstructured, d *deployed) {
	t.Helper()
	var want []string
	for id := range prev {
		if _, ok := now[id]; !ok {
			want = append(want, id)
		}
	}
	var got []string
	for _, e := range cs.Entries {
		id := e.ObjMetadata.String()
		got = append(got, id)
		o := prev[id]
		if o == nil {
			t.Errorf("%s: pruned %s, which it never applied", k, describe(e.ObjMetadata))
			continue
		}
		disabled := o.GetAnnotations()["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
		switch {
		case e.Action == ssa.DeletedAction && !disabled:
			d.deleted = append(d.deleted, describe(e.ObjMetadata))
			// A Namespace stays Terminating: no controller empties it.
			if live := c.get(t, o); live != nil && live.GetDeletionTimestamp() == nil {
				t.Errorf("%s: %s was deleted but is still there", k, describe(e.ObjMetadata))
			}
		case e.Action == ssa.SkippedAction && disabled:
			d.kept = append(d.kept, describe(e.ObjMetadata))
			if !c.exists(t, o) {
				t.Errorf("%s: %s has prune disabled but is gone", k, describe(e.ObjMetadata))
			}
		default:
			t.Errorf("%s: %s (prune disabled: %t) was %s", k, describe(e.ObjMetadata), disabled, e.Action)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: pruned %q, want %q", k, got, want)
	}
}

// resourceVersions reads each object's resourceVersion from the server;
// "" for an object that is not there.
func (c *cluster) resourceVersions(t *testing.T, objs map[string]*unstructured.Unstructured) map[string]string {
	t.Helper()
	ids := slices.Sorted(maps.Keys(objs))
	rvs := make([]string, len(ids))
	var g errgroup.Group
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(objs[id].GroupVersionKind())
			err := c.srv.Client.Get(context.Background(), client.ObjectKeyFromObject(objs[id]), live)
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return fmt.Errorf("get %s: %w", describeObj(objs[id]), err)
			default:
				rvs[i] = live.GetResourceVersion()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	rv := map[string]string{}
	for i, id := range ids {
		if rvs[i] != "" {
			rv[id] = rvs[i]
		}
	}
	return rv
}

// get reads o from the server; nil when it is not there.
func (c *cluster) get(t *testing.T, o *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	err := c.srv.Client.Get(context.Background(), client.ObjectKeyFromObject(o), live)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		t.Fatalf("get %s: %v", describeObj(o), err)
	}
	return live
}

func (c *cluster) exists(t *testing.T, o *unstructured.Unstructured) bool {
	t.Helper()
	return c.get(t, o) != nil
}

// summary is one line of figures for a step.
func (d deployed) summary() string {
	return fmt.Sprintf("%d objects: %d created, %d configured, %d unchanged; %d deleted, %d kept (prune disabled); "+
		"build %.2fs, apply %.2fs, prune %.2fs, dry-run %.2fs, deploy with checks %.2fs",
		d.objects, len(d.created), len(d.configured), len(d.unchanged), len(d.deleted), len(d.kept),
		d.build.Seconds(), d.apply.Seconds(), d.prune.Seconds(), d.diff.Seconds(), d.total.Seconds())
}

func idOf(o *unstructured.Unstructured) string {
	return object.UnstructuredToObjMetadata(o).String()
}

// describe is "Kind/name" or "Kind/namespace/name".
func describe(m object.ObjMetadata) string {
	if m.Namespace == "" {
		return m.GroupKind.Kind + "/" + m.Name
	}
	return m.GroupKind.Kind + "/" + m.Namespace + "/" + m.Name
}

func describeObj(o *unstructured.Unstructured) string {
	return describe(object.UnstructuredToObjMetadata(o))
}

func sameJSON(t *testing.T, a, b *unstructured.Unstructured) bool {
	t.Helper()
	ja, err := json.Marshal(a.Object)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b.Object)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// editFile replaces old, which must occur count times, in the file.
func editFile(t *testing.T, file, old, new string, count int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != count {
		t.Fatalf("%s: %q occurs %d times, want %d", file, old, n, count)
	}
	treetest.Write(t, file, []byte(strings.ReplaceAll(string(b), old, new)))
}
