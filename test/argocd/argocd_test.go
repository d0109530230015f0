// Package argocd_test deploys the trees of the Argo CD story
// (testdata/stories/argocd.yaml) with Argo CD's own code, against a real
// kube-apiserver: gitops-engine's sync (sync.NewSyncContext, through its
// engine) applies each Application's folder as Argo CD's controller does
// (server-side apply as argocd-controller, tracking annotations, waves,
// pruning, the resources finalizer), and Argo CD's diff
// (util/argo/diff.StateDiffs) compares Git with the cluster in its four
// modes after istiod's own webhook edits.
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
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/argo"
	argodiff "github.com/argoproj/argo-cd/v3/util/argo/diff"
	"github.com/argoproj/argo-cd/v3/util/argo/normalizers"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
	"github.com/argoproj/gitops-engine/pkg/cache"
	"github.com/argoproj/gitops-engine/pkg/diff"
	"github.com/argoproj/gitops-engine/pkg/engine"
	gosync "github.com/argoproj/gitops-engine/pkg/sync"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
	"github.com/argoproj/gitops-engine/pkg/utils/tracing"
	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
// CD's CRDs and its argocd-cm (examples/argocd/argocd-cm.yaml: the
// Application health check), and syncs a cluster cache as Argo CD's
// controller keeps one.
func startCluster(t *testing.T) *cluster {
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
	ctx := context.Background()
	crds := argoCRDs(t)
	argoCM := readObjects(t, filepath.Join(repo, "examples/argocd/argocd-cm.yaml"))
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": argoNamespace}}}
	for _, o := range append(append(crds, ns), argoCM...) {
		c.apply(t, o, "argocd-install")
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sm := settings.NewSettingsManager(ctx, clientset, argoNamespace)
	if c.overrides, err = sm.GetResourceOverrides(); err != nil {
		t.Fatal(err)
	}
	if c.compare, err = sm.GetResourceCompareOptions(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.overrides["argoproj.io/Application"]; !ok {
		t.Fatalf("argocd-cm has no Application health check: %v", c.overrides)
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

// build is what Argo CD's repo-server makes of an Application's path:
// `kustomize build` of the folder.
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := exec.Command(kustomizeBin, "build", dir).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr)
	}
	objs, err := kube.SplitYAML(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// app is an Application of a tree, as Argo CD's controller sees it.
type app struct {
	name string
	// folder is its path in the tree ("" for the root).
	folder   string
	destNs   string
	wave     string
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
		p := a.Spec.Source.Path
		folder, ok := strings.CutPrefix(p+"/", treePath+"/")
		if !ok {
			t.Fatalf("%s: path %q is not in the tree", f, p)
		}
		if a.Spec.SyncPolicy == nil || a.Spec.SyncPolicy.Automated == nil || !a.Spec.SyncPolicy.SyncOptions.HasOption(synccommon.SyncOptionServerSideApply) ||
			!a.Spec.SyncPolicy.Automated.Prune {
			t.Errorf("%s: want automated sync with pruning by server-side apply: %+v", f, a.Spec.SyncPolicy)
		}
		if len(a.Spec.IgnoreDifferences) > 0 {
			t.Errorf("%s: ignoreDifferences: %v", f, a.Spec.IgnoreDifferences)
		}
		out[a.Name] = app{
			name: a.Name, folder: strings.TrimSuffix(folder, "/"), destNs: a.Spec.Destination.Namespace,
			wave: a.Annotations[synccommon.AnnotationSyncWave], finalize: slices.Contains(a.Finalizers, "resources-finalizer.argocd.argoproj.io"),
		}
	}
	if _, ok := out[appOfApps]; !ok {
		t.Fatalf("%s: no app-of-apps %q", tree, appOfApps)
	}
	return out
}

// targets are an Application's objects in Git, tracked to it as Argo
// CD's controller tracks them.
func targets(t *testing.T, tree string, a app) []*unstructured.Unstructured {
	t.Helper()
	objs := build(t, filepath.Join(tree, a.folder))
	for _, o := range objs {
		if err := tracker.SetAppInstance(o, common.LabelKeyAppInstance, a.name, a.destNs, trackingMethod, ""); err != nil {
			t.Fatal(err)
		}
	}
	return objs
}

func isManagedBy(name string) func(r *cache.Resource) bool {
	return func(r *cache.Resource) bool { return r.Info == name }
}

// sync syncs an Application as Argo CD's controller does with its sync
// options (ServerSideApply=true, automated with prune): gitops-engine's
// sync context, server-side apply as argocd-controller, Argo CD's health
// checks (the argocd-cm ones included).
func (c *cluster) sync(ctx context.Context, tree string, a app, objs []*unstructured.Unstructured) ([]synccommon.ResourceSyncResult, error) {
	eng := engine.NewEngine(c.cfg, c.cache, engine.WithKubectl(c.kubectl), engine.WithLogr(logr.Discard()))
	return eng.Sync(ctx, objs, isManagedBy(a.name), "HEAD", a.destNs,
		gosync.WithLogr(logr.Discard()),
		gosync.WithHealthOverride(lua.ResourceHealthOverrides(c.overrides)),
		gosync.WithOperationSettings(false, true, false, false),
		gosync.WithManifestValidation(true),
		gosync.WithServerSideApply(true),
		gosync.WithServerSideApplyManager(common.ArgoCDSSAManager),
		gosync.WithPruneLast(false),
	)
}

// deployed records what one Argo CD pass did.
type deployed struct {
	// order lists the Applications synced, in order; deleted the objects
	// the resources finalizer deleted, by Application.
	order   []string
	deleted map[string][]string
}

// deploy syncs a tree as Argo CD does: the app-of-apps (applied once by
// hand) syncs the root, whose Applications it creates in their waves;
// Argo CD's controller syncs each Application it finds, then reports it
// Healthy (the health check of argocd-cm lets the app-of-apps go on to
// the next wave only then); an Application pruned from Git is deleted
// through its resources finalizer, which deletes its objects but those
// marked Delete=false.
func (c *cluster) deploy(t *testing.T, tree string) deployed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	all := apps(t, tree)
	root := all[appOfApps]
	var (
		mu      sync.Mutex
		rootErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		res, err := c.sync(ctx, tree, root, targets(t, tree, root))
		mu.Lock()
		defer mu.Unlock()
		rootErr = syncError(res, err)
	}()
	d := deployed{deleted: map[string][]string{}}
	synced := map[string]bool{}
	for {
		finished := false
		select {
		case <-done:
			finished = true
		case <-time.After(100 * time.Millisecond):
		}
		list, err := c.dyn.Resource(appGVR).Namespace(argoNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(list.Items, func(a, b unstructured.Unstructured) int { return strings.Compare(a.GetName(), b.GetName()) })
		for _, live := range list.Items {
			name := live.GetName()
			switch {
			case live.GetDeletionTimestamp() != nil:
				d.deleted[name] = c.finalize(t, ctx, &live)
			case !synced[name]:
				a, ok := all[name]
				if !ok {
					// Pruned, once the app-of-apps gets to it.
					continue
				}
				res, err := c.sync(ctx, tree, a, targets(t, tree, a))
				if err := syncError(res, err); err != nil {
					t.Fatalf("sync %s: %v", name, err)
				}
				synced[name] = true
				d.order = append(d.order, name)
				c.setHealthy(t, ctx, name)
			}
		}
		if finished {
			break
		}
	}
	if rootErr != nil {
		t.Fatalf("sync %s: %v", appOfApps, rootErr)
	}
	for name := range all {
		if name != appOfApps && !synced[name] {
			t.Errorf("Application %s was never created", name)
		}
	}
	return d
}

// syncError is the error of a sync, or of the first resource that failed.
func syncError(res []synccommon.ResourceSyncResult, err error) error {
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Status == synccommon.ResultCodeSyncFailed {
			return fmt.Errorf("%s %s/%s: %s", r.ResourceKey.Kind, r.ResourceKey.Namespace, r.ResourceKey.Name, r.Message)
		}
	}
	return nil
}

// setHealthy reports an Application Synced and Healthy, as Argo CD's
// controller does once its sync is done and its objects are healthy.
func (c *cluster) setHealthy(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	patch := []byte(`{"status":{"health":{"status":"Healthy"},"sync":{"status":"Synced"}}}`)
	if _, err := c.dyn.Resource(appGVR).Namespace(argoNamespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "argocd-application-controller"}); err != nil {
		t.Fatal(err)
	}
}

// finalize is Argo CD's resources finalizer: it deletes every live object
// of the Application but those whose sync options say Delete=false, then
// removes itself. It returns the objects deleted.
func (c *cluster) finalize(t *testing.T, ctx context.Context, live *unstructured.Unstructured) []string {
	t.Helper()
	var deleted []string
	for _, r := range c.cache.FindResources("", isManagedBy(live.GetName())) {
		o := r.Resource
		if o == nil || hasSyncOption(o, synccommon.SyncOptionDisableDeletion) {
			continue
		}
		if err := c.resource(t, o).Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		deleted = append(deleted, id(o))
	}
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := c.dyn.Resource(appGVR).Namespace(argoNamespace).Patch(ctx, live.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	slices.Sort(deleted)
	return deleted
}

func hasSyncOption(o *unstructured.Unstructured, opt string) bool {
	for _, v := range strings.Split(o.GetAnnotations()[synccommon.AnnotationSyncOptions], ",") {
		if strings.TrimSpace(v) == opt {
			return true
		}
	}
	return false
}

func id(o *unstructured.Unstructured) string {
	return path.Join(o.GroupVersionKind().GroupKind().String(), o.GetNamespace(), o.GetName())
}

// versions are the resourceVersions of every object an Application of
// Argo CD manages.
func (c *cluster) versions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range c.cache.FindResources("", func(r *cache.Resource) bool { return r.Info != nil && r.Info != "" }) {
		if r.Resource != nil {
			out[id(r.Resource)] = r.Resource.GetResourceVersion()
		}
	}
	return out
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

// outOfSync is, per diff mode, the objects Argo CD's diff finds modified
// between Git and the cluster, for every Application of the tree, as its
// controller computes them (controller/state.go CompareAppState): no
// ignoreDifferences, argocd-cm's overrides and compare options.
func (c *cluster) outOfSync(t *testing.T, tree string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range modes {
		var modified []string
		for _, a := range apps(t, tree) {
			objs := targets(t, tree, a)
			live, err := c.cache.GetManagedLiveObjs(objs, isManagedBy(a.name))
			if err != nil {
				t.Fatal(err)
			}
			rec := gosync.Reconcile(objs, live, a.destNs, c.cache)
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
			if m.serverSide {
				applier, cleanup, err := kube.ManageServerSideDiffDryRuns(c.cfg, c.cache.GetOpenAPISchema(), tracing.NopTracer{}, logr.Discard(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer cleanup()
				b.WithServerSideDryRunner(diff.NewK8sServerSideDryRunner(applier))
			}
			cfg, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			res, err := argodiff.StateDiffs(rec.Live, rec.Target, cfg)
			if err != nil {
				t.Fatalf("%s: %s: %v", m.name, a.name, err)
			}
			for i, r := range res.Diffs {
				o := rec.Target[i]
				if o == nil {
					o = rec.Live[i]
				}
				if r.Modified || rec.Live[i] == nil || rec.Target[i] == nil {
					modified = append(modified, id(o))
					t.Logf("%s: %s: %s OutOfSync:\n%s", m.name, a.name, id(o), lineDiff(r.NormalizedLive, r.PredictedLive))
				}
			}
		}
		slices.Sort(modified)
		out[m.name] = modified
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
