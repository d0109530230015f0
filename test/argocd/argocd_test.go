// Package argocd_test deploys the trees of the Argo CD story
// (testdata/stories/argocd.yaml) with Argo CD's own code, against a real
// kube-apiserver. Argo CD's application controller cannot run here (it
// needs its repo-server, Redis and its settings' secrets): appController
// (controller_test.go) does what it does for each Application, with its
// code where it is exported: gitops-engine's cluster cache, its sync
// (sync.NewSyncContext, one Sync per reconcile, resumed with
// WithInitialState as controller/sync.go resumes it), Argo CD's diff
// (util/argo/diff.StateDiffs) and health checks (gitops-engine's and
// argocd-cm's Lua ones, the Application one included).
//
// It is a module of its own: Argo CD v3.2.12 pins the Kubernetes libraries
// to v0.34, which the main module (v0.37) cannot link. The control plane
// is the main module's (fn/apiserver/controlplane): run the test binary
// as `controlplane run -- argocd.test`, as `make argocd-test` does.
package argocd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/argo"
	argodiff "github.com/argoproj/argo-cd/v3/util/argo/diff"
	"github.com/argoproj/argo-cd/v3/util/argo/normalizers"
	"github.com/argoproj/argo-cd/v3/util/settings"
	"github.com/argoproj/gitops-engine/pkg/cache"
	"github.com/argoproj/gitops-engine/pkg/diff"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
	"github.com/argoproj/gitops-engine/pkg/utils/tracing"
	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

const (
	repo = "../.."
	// argoNamespace is where the Applications live (spec.argocd's
	// default).
	argoNamespace = "argocd"
	// treePath is the trees' path in the repository (the story's
	// spec.argocd.path).
	treePath = "clusters/prod/istio"
	// appOfApps is the app-of-apps' name (spec.argocd.name's default).
	appOfApps = "istio"
	// pilotDiscovery is istiod's field manager.
	pilotDiscovery = "pilot-discovery"
	// istiodCA stands for the CA bundle istiod writes (base64 of a PEM).
	istiodCA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmVENDQVNPZ0F3SUJBZ0lVZmFrZQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg=="
)

// tracking is Argo CD's default resource tracking (v3: the annotation).
var (
	tracker        = argo.NewResourceTracking()
	trackingMethod = v1alpha1.TrackingMethodAnnotation
	appGVR         = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
)

// The environment `make argocd-test` sets: the control plane command,
// kustomize (Argo CD's repo-server builds each path with it) and the
// istio-gitops binary.
var (
	controlPlane = os.Getenv("ISTIO_GITOPS_CONTROL_PLANE")
	kustomizeBin = os.Getenv("KUSTOMIZE")
	istioGitOps  = os.Getenv("ISTIO_GITOPS")
)

func requireEnv(t *testing.T) {
	t.Helper()
	var missing []string
	for _, e := range []struct{ name, v string }{{"ISTIO_GITOPS_CONTROL_PLANE", controlPlane}, {"KUSTOMIZE", kustomizeBin}, {"ISTIO_GITOPS", istioGitOps}} {
		if e.v == "" {
			missing = append(missing, e.name)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("%q not set: run the Argo CD tests with `make argocd-test` (it builds them, kustomize, the binary and the control plane)", missing)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// cluster is a running kube-apiserver with what Argo CD's controller
// keeps of it.
type cluster struct {
	cfg       *rest.Config
	dyn       dynamic.Interface
	disco     discovery.DiscoveryInterface
	kubectl   *kube.KubectlCmd
	cache     cache.ClusterCache
	overrides map[string]v1alpha1.ResourceOverride
	compare   settings.ArgoCDDiffOptions
}

// startCluster starts a control plane (controlplane serve), installs Argo
// CD's CRDs and its argocd-cm, and syncs a cluster cache as Argo CD's
// controller keeps one. With healthCheck, argocd-cm is the README's
// (examples/argocd/argocd-cm.yaml: the Application health check); without,
// it is Argo CD's default, which has none.
func startCluster(t *testing.T, healthCheck bool) *cluster {
	t.Helper()
	requireEnv(t)
	dir := t.TempDir()
	cmd := exec.Command(controlPlane, "serve", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// Closing its stdin stops it; its PID if it does not.
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-exited
		}
	})
	kubeconfig := filepath.Join(dir, "kubeconfig")
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(kubeconfig); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("controlplane serve: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("controlplane serve: not ready in 3 minutes\n%s", logs.String())
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	c := &cluster{cfg: cfg, kubectl: &kube.KubectlCmd{Log: logr.Discard(), Tracer: tracing.NopTracer{}}}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if c.disco, err = discovery.NewDiscoveryClientForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	// The settings manager's informers watch until ctx ends: kube-apiserver
	// waits for them before it stops.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	crds := argoCRDs(t)
	argoCM := readObjects(t, filepath.Join(repo, "examples/argocd/argocd-cm.yaml"))
	if !healthCheck {
		unstructured.RemoveNestedField(argoCM[0].Object, "data")
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": argoNamespace}}}
	for _, o := range append(append(crds, ns), argoCM...) {
		c.apply(t, o, "argocd-install")
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Argo CD's controller starts once its CRDs are installed: its
	// cluster cache reads their schemas (the structured merge diff of an
	// Application needs them) when it syncs, and kube-apiserver publishes
	// a new CRD's schema a moment after creating it.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		_, parser, err := c.kubectl.LoadOpenAPISchema(cfg)
		if err == nil && parser != nil && parser.Type(appGVR.GroupVersion().WithKind("Application")) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver does not publish the schema of Argo CD's Application in a minute: %v", err)
		}
	}
	sm := settings.NewSettingsManager(ctx, clientset, argoNamespace)
	if c.overrides, err = sm.GetResourceOverrides(); err != nil {
		t.Fatal(err)
	}
	if c.compare, err = sm.GetResourceCompareOptions(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.overrides["argoproj.io/Application"]; ok != healthCheck {
		t.Fatalf("argocd-cm: Application health check %v, want %v: %v", ok, healthCheck, c.overrides)
	}
	c.cache = cache.NewClusterCache(cfg,
		cache.SetKubectl(c.kubectl),
		cache.SetLogr(logr.Discard()),
		cache.SetPopulateResourceInfoHandler(func(un *unstructured.Unstructured, _ bool) (any, bool) {
			app := tracker.GetAppName(un, common.LabelKeyAppInstance, trackingMethod, "")
			return app, app != ""
		}))
	if err := c.cache.EnsureSynced(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cache.Invalidate() })
	return c
}

// argoCRDs are Argo CD v3.2.12's CRDs, from its module.
func argoCRDs(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-cd/v3").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/argoproj/argo-cd/v3: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "manifests", "crds")
	var objs []*unstructured.Unstructured
	for _, f := range []string{"application-crd.yaml", "appproject-crd.yaml"} {
		objs = append(objs, readObjects(t, filepath.Join(dir, f))...)
	}
	return objs
}

func readObjects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kube.SplitYAML(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return objs
}

// resource is the client of o's resource.
func (c *cluster) resource(t *testing.T, o *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := o.GroupVersionKind()
	var api *metav1.APIResource
	var err error
	// A CRD just created takes a moment to be served.
	for range 100 {
		if api, err = kube.ServerResourceForGroupVersionKind(c.disco, gvk, "get"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s: %v", gvk, err)
	}
	r := c.dyn.Resource(gvk.GroupVersion().WithResource(api.Name))
	if api.Namespaced {
		return r.Namespace(o.GetNamespace())
	}
	return r
}

// apply server-side applies o as manager (setting up the cluster, not as
// Argo CD).
func (c *cluster) apply(t *testing.T, o *unstructured.Unstructured, manager string) {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	force := true
	if _, err := c.resource(t, o).Patch(context.Background(), o.GetName(), types.ApplyPatchType, b, metav1.PatchOptions{FieldManager: manager, Force: &force}); err != nil {
		t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

// builds caches what Argo CD's repo-server makes of a path at a commit
// (here: a folder of a step's tree): `kustomize build` of the folder.
var builds = struct {
	sync.Mutex
	out map[string][]*unstructured.Unstructured
}{out: map[string][]*unstructured.Unstructured{}}

// build returns a copy of `kustomize build dir`, built once.
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	objs, ok := builds.out[dir]
	if !ok {
		out, err := exec.Command(kustomizeBin, "build", dir).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr)
		}
		if objs, err = kube.SplitYAML(out); err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		builds.out[dir] = objs
	}
	cp := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		cp[i] = o.DeepCopy()
	}
	return cp
}

// app is an Application of a tree, as Git says it.
type app struct {
	name string
	// folder is its path in the tree ("" for the root).
	folder   string
	destNs   string
	wave     int
	finalize bool
}

// apps reads the Applications of a tree's argocd/ folder, each strictly
// as Argo CD's v1alpha1.Application, and checks what every one must say.
func apps(t *testing.T, tree string) map[string]app {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(tree, "argocd", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]app{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var a v1alpha1.Application
		if err := yaml.UnmarshalStrict(b, &a); err != nil {
			t.Fatalf("%s is not an Argo CD Application: %v", f, err)
		}
		folder, err := appFolder(&a)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if a.Spec.SyncPolicy == nil || a.Spec.SyncPolicy.Automated == nil || !a.Spec.SyncPolicy.SyncOptions.HasOption(synccommon.SyncOptionServerSideApply) ||
			!a.Spec.SyncPolicy.Automated.Prune || !a.Spec.SyncPolicy.Automated.SelfHeal {
			t.Errorf("%s: want automated sync with pruning and self-heal by server-side apply: %+v", f, a.Spec.SyncPolicy)
		}
		if len(a.Spec.IgnoreDifferences) > 0 {
			t.Errorf("%s: ignoreDifferences: %v", f, a.Spec.IgnoreDifferences)
		}
		out[a.Name] = app{
			name: a.Name, folder: folder, destNs: a.Spec.Destination.Namespace,
			wave: wave(a.Annotations), finalize: slices.Contains(a.Finalizers, resourcesFinalizer),
		}
	}
	if _, ok := out[appOfApps]; !ok {
		t.Fatalf("%s: no app-of-apps %q", tree, appOfApps)
	}
	return out
}

// appFolder is an Application's folder in the tree ("" for the root).
func appFolder(a *v1alpha1.Application) (string, error) {
	p := a.Spec.Source.Path
	folder, ok := strings.CutPrefix(p+"/", treePath+"/")
	if !ok {
		return "", fmt.Errorf("Application %s: path %q is not in the tree %q", a.Name, p, treePath)
	}
	return strings.TrimSuffix(folder, "/"), nil
}

func wave(annotations map[string]string) int {
	w, err := strconv.Atoi(annotations[synccommon.AnnotationSyncWave])
	if err != nil {
		return 0
	}
	return w
}

// gitObjects are an Application's objects in Git: what the repo-server
// returns for its path (`kustomize build`), tracked to it as the
// repo-server tracks them (the annotation, with its destination
// namespace).
func gitObjects(t *testing.T, tree, folder, name, destNs string) []*unstructured.Unstructured {
	t.Helper()
	objs := build(t, filepath.Join(tree, folder))
	for _, o := range objs {
		if err := tracker.SetAppInstance(o, common.LabelKeyAppInstance, name, destNs, trackingMethod, ""); err != nil {
			t.Fatal(err)
		}
	}
	return objs
}

// istiodEdits does what each revision's istiod does to its webhook
// configurations (a JSON patch as pilot-discovery): its CA bundle into
// every sidecar-injector webhook of a MutatingWebhookConfiguration and
// every webhook of a ValidatingWebhookConfiguration labelled with its
// revision, and each validator's failurePolicy flipped to Fail. It
// returns the validators flipped.
func (c *cluster) istiodEdits(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var flipped []string
	for _, kind := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		gvr := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: kind}
		list, err := c.dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: "istio.io/rev"})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			var ops []map[string]any
			whs, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for i, w := range whs {
				w := w.(map[string]any)
				if kind == "mutatingwebhookconfigurations" && !strings.HasSuffix(w["name"].(string), "sidecar-injector.istio.io") {
					continue
				}
				ops = append(ops, map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": istiodCA})
				if kind == "validatingwebhookconfigurations" && w["failurePolicy"] == "Ignore" {
					ops = append(ops, map[string]any{"op": "replace", "path": fmt.Sprintf("/webhooks/%d/failurePolicy", i), "value": "Fail"})
					flipped = append(flipped, o.GetName())
				}
			}
			if len(ops) == 0 {
				continue
			}
			patch, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.dyn.Resource(gvr).Patch(ctx, o.GetName(), types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: pilotDiscovery}); err != nil {
				t.Fatalf("istiod's patch of %s %s: %v", kind, o.GetName(), err)
			}
		}
	}
	// Let the cache see the edits.
	time.Sleep(time.Second)
	return slices.Compact(slices.Sorted(slices.Values(flipped)))
}

// A diff mode of Argo CD's controller.
type mode struct {
	name string
	// structured is what ServerSideApply=true turns on; serverSide the
	// compare option ServerSideDiff=true; mutationWebhook the compare
	// option IncludeMutationWebhook=true.
	structured, serverSide, mutationWebhook bool
}

var modes = []mode{
	{name: "legacy-three-way"},
	{name: "structured-merge", structured: true},
	{name: "server-side-diff", structured: true, serverSide: true},
	{name: "server-side-diff-mutation-webhook", structured: true, serverSide: true, mutationWebhook: true},
}

// diffConfig is the diff configuration Argo CD's controller builds for an
// Application (controller/state.go CompareAppState) in mode m: no
// ignoreDifferences, argocd-cm's overrides and compare options, annotation
// tracking, its server-side apply manager. Call the returned cleanup once
// done.
func (c *cluster) diffConfig(t *testing.T, m mode) (argodiff.DiffConfig, func()) {
	t.Helper()
	b := argodiff.NewDiffConfigBuilder().
		WithDiffSettings(nil, c.overrides, c.compare.IgnoreAggregatedRoles, normalizers.IgnoreNormalizerOpts{}).
		WithTracking(common.LabelKeyAppInstance, string(trackingMethod)).
		WithNoCache().
		WithLogger(logr.Discard()).
		WithGVKParser(c.cache.GetGVKParser()).
		WithManager(common.ArgoCDSSAManager).
		WithServerSideDiff(m.serverSide).
		WithStructuredMergeDiff(m.structured)
	if m.mutationWebhook {
		b.WithIgnoreMutationWebhook(false)
	}
	cleanup := func() {}
	if m.serverSide {
		applier, done, err := kube.ManageServerSideDiffDryRuns(c.cfg, c.cache.GetOpenAPISchema(), tracing.NopTracer{}, logr.Discard(), nil)
		if err != nil {
			t.Fatal(err)
		}
		cleanup = done
		b.WithServerSideDryRunner(diff.NewK8sServerSideDryRunner(applier))
	}
	cfg, err := b.Build()
	if err != nil {
		cleanup()
		t.Fatal(err)
	}
	return cfg, cleanup
}

// drift is an object Argo CD's diff finds OutOfSync, with what differs.
type drift struct {
	id, diff string
}

// outOfSync is, per diff mode, the objects Argo CD's diff finds OutOfSync
// (modified, missing or extra) for the Applications of the tree, as its
// controller compares them.
func (ac *appController) outOfSync(t *testing.T) map[string][]drift {
	t.Helper()
	out := map[string][]drift{}
	for _, m := range modes {
		var drifts []drift
		for _, name := range slices.Sorted(maps.Keys(apps(t, ac.tree))) {
			a := ac.live(t, name)
			if a == nil {
				t.Fatalf("Application %s is not in the cluster", name)
			}
			cmp := ac.compare(t, a, m)
			drifts = append(drifts, cmp.drifts...)
		}
		slices.SortFunc(drifts, func(a, b drift) int { return strings.Compare(a.id, b.id) })
		out[m.name] = drifts
	}
	return out
}

// lineDiff shows the lines of two JSON documents that differ.
func lineDiff(live, predicted []byte) string {
	l, p := indent(live), indent(predicted)
	var out []string
	for _, s := range l {
		if !slices.Contains(p, s) {
			out = append(out, "- "+s)
		}
	}
	for _, s := range p {
		if !slices.Contains(l, s) {
			out = append(out, "+ "+s)
		}
	}
	return strings.Join(out, "\n")
}

func indent(b []byte) []string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return []string{string(b)}
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return strings.Split(string(out), "\n")
}

func hasSyncOption(o *unstructured.Unstructured, opt string) bool {
	for _, v := range strings.Split(o.GetAnnotations()[synccommon.AnnotationSyncOptions], ",") {
		if strings.TrimSpace(v) == opt {
			return true
		}
	}
	return false
}

// id names an object: Kind.group/namespace/name.
func id(o *unstructured.Unstructured) string {
	return path.Join(o.GroupVersionKind().GroupKind().String(), o.GetNamespace(), o.GetName())
}

// ids names objects, sorted; a namespaced object without a namespace gets
// ns, as Argo CD's sync gives it the Application's destination namespace.
func (c *cluster) ids(objs []*unstructured.Unstructured, ns string) []string {
	var out []string
	for _, o := range objs {
		if o.GetNamespace() == "" && kube.IsNamespacedOrUnknown(c.cache, o.GroupVersionKind().GroupKind()) {
			o = o.DeepCopy()
			o.SetNamespace(ns)
		}
		out = append(out, id(o))
	}
	slices.Sort(out)
	return out
}

// versions are the resourceVersions of every object an Application of
// Argo CD manages, by id.
func (c *cluster) versions() map[string]string {
	out := map[string]string{}
	for _, r := range c.cache.FindResources("", func(r *cache.Resource) bool { return r.Resource != nil }) {
		out[id(r.Resource)] = r.Resource.GetResourceVersion()
	}
	return out
}
