package argocd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/argo"
	argodiff "github.com/argoproj/argo-cd/v3/util/argo/diff"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/gitops-engine/pkg/cache"
	"github.com/argoproj/gitops-engine/pkg/diff"
	"github.com/argoproj/gitops-engine/pkg/health"
	gosync "github.com/argoproj/gitops-engine/pkg/sync"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"github.com/argoproj/gitops-engine/pkg/sync/syncwaves"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

const (
	resourcesFinalizer = "resources-finalizer.argocd.argoproj.io"
	// waveDelay is Argo CD's pause after each sync wave but the last
	// (controller/sync.go delayBetweenSyncWaves, ARGOCD_SYNC_WAVE_DELAY's
	// default).
	waveDelay = 2 * time.Second
	// selfHealAfter is how long an Application may stay OutOfSync after a
	// sync of the same revision before it is self-healed: the cluster
	// cache sees the sync's writes a moment later (Argo CD waits too, by
	// its self-heal backoff).
	selfHealAfter = 3 * time.Second
	// roundPause is the pause between two rounds of reconciles.
	roundPause = 200 * time.Millisecond
	// controllerManager is the field manager of Argo CD's controller when
	// it writes an Application's status.
	controllerManager = "argocd-application-controller"
)

// operation is an Application's sync operation, as Argo CD's controller
// keeps it in the Application's status.operationState between reconciles.
type operation struct {
	// revision is the tree synced (the commit).
	revision string
	selfHeal bool
	prune    bool
	// auto says the operation is an automated sync: Argo CD retries a
	// failed one (autoSync's Retry{Limit: 5}, backed off from 5s),
	// retries times so far, the next at retryAt.
	auto    bool
	retries int64
	retryAt time.Time
	// seen says the cluster cache has seen what the finished operation
	// wrote (see cacheSeen).
	seen     bool
	phase    synccommon.OperationPhase
	message  string
	results  []synccommon.ResourceSyncResult
	started  metav1.Time
	finished time.Time
}

// waveStep is one Sync of an operation that applied Applications (the
// app-of-apps'): which, the health of every Application as that Sync saw
// it (its health checks over the cluster cache's copy), and how many CRDs
// were established then.
type waveStep struct {
	applied []string
	health  map[string]health.HealthStatusCode
	crds    int
}

// record is what the controller did while converging.
type record struct {
	// syncs are the sync operations started, in order: the Application's
	// name, with " (self-heal)" for a self-heal.
	syncs []string
	// ops are the operations finished, by Application.
	ops   map[string][]*operation
	waves []waveStep
	// deleted are the objects the resources finalizer deleted, pruned
	// those a sync pruned, by Application.
	deleted, pruned map[string][]string
	// retries are the failed attempts of automated syncs Argo CD
	// retried, with why they failed.
	retries []string
}

// appController does for each Application what Argo CD's application
// controller (controller/appcontroller.go, state.go, sync.go) does, round
// after round:
//   - it compares Git (`kustomize build` of the Application's path in the
//     tree of the current step, tracked to it) with the live objects of
//     the cluster cache (CompareAppState): Argo CD's diff in the mode the
//     Application asks for (ServerSideApply=true: the structured merge),
//     and the Application's health as setApplicationHealth aggregates its
//     resources' health (gitops-engine's health checks and argocd-cm's
//     Lua ones);
//   - it syncs an automated Application found OutOfSync, and self-heals
//     one OutOfSync again after a sync of the same revision;
//   - it goes on with a running sync operation as SyncAppState does on
//     each reconcile: a new sync context (sync.NewSyncContext) over the
//     live objects as they are now, resumed from the state the last one
//     reached (WithInitialState), one Sync(), with SyncAppState's
//     options (its wave delay included);
//   - it retries a failed automated sync as processRequestedAppOperation
//     does (5 attempts, backed off from 5 s), afresh;
//   - it records a path missing from Git as a comparison error, and
//     syncs nothing;
//   - it runs the resources finalizer of a deleted Application
//     (finalizeApplicationDeletion);
//   - it writes each Application's status.sync and status.health, which
//     the Application health check of argocd-cm reads.
//
// The Applications are reconciled one after another in name order, a
// round at a time (Argo CD runs them in parallel); after a sync, an
// Application is compared again once the cluster cache has seen the
// sync's writes (cacheSeen).
type appController struct {
	c *cluster
	// tree is Git at the current step.
	tree string
	// paused, when set, says which Applications not to reconcile (their
	// controller is stopped).
	paused func(name string) bool
	// edit, when set, changes what Git says of an Application.
	edit map[string]func([]*unstructured.Unstructured) []*unstructured.Unstructured
	ops  map[string]*operation
	rec  *record
}

func newController(c *cluster) *appController {
	return &appController{c: c, ops: map[string]*operation{}, edit: map[string]func([]*unstructured.Unstructured) []*unstructured.Unstructured{}, rec: newRecord()}
}

func newRecord() *record {
	return &record{ops: map[string][]*operation{}, deleted: map[string][]string{}, pruned: map[string][]string{}}
}

// list is every Application in Argo CD's namespace, by name.
func (ac *appController) list(t *testing.T) []*v1alpha1.Application {
	t.Helper()
	l, err := ac.c.dyn.Resource(appGVR).Namespace(argoNamespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*v1alpha1.Application
	for i := range l.Items {
		out = append(out, toApplication(t, &l.Items[i]))
	}
	slices.SortFunc(out, func(a, b *v1alpha1.Application) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// live is the Application name from the API server, nil if there is none.
func (ac *appController) live(t *testing.T, name string) *v1alpha1.Application {
	t.Helper()
	u, err := ac.c.dyn.Resource(appGVR).Namespace(argoNamespace).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return toApplication(t, u)
}

func toApplication(t *testing.T, u *unstructured.Unstructured) *v1alpha1.Application {
	t.Helper()
	var a v1alpha1.Application
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &a); err != nil {
		t.Fatalf("Application %s: %v", u.GetName(), err)
	}
	return &a
}

// comparison is what CompareAppState finds for an Application.
type comparison struct {
	rec    gosync.ReconciliationResult
	diffs  *diff.DiffResultList
	drifts []drift
	health health.HealthStatusCode
	// unhealthy says which resource made the health what it is.
	unhealthy string
	// err is why there is nothing to compare: the Application's path
	// is not in Git (a retired revision's, until the app-of-apps prunes
	// it).
	err string
}

func (cmp comparison) synced() bool { return len(cmp.drifts) == 0 }

// appMode is the diff mode Argo CD's controller compares a with: the
// structured merge when it syncs by server-side apply, the server-side
// diff when its compare options ask for it.
func appMode(a *v1alpha1.Application) mode {
	m := modes[0]
	if a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.SyncOptions.HasOption(synccommon.SyncOptionServerSideApply) {
		m = modes[1]
	}
	opts := a.Annotations[common.AnnotationCompareOptions]
	if strings.Contains(opts, "ServerSideDiff=true") {
		m = modes[2]
		if strings.Contains(opts, "IncludeMutationWebhook=true") {
			m = modes[3]
		}
	}
	return m
}

// compare compares an Application's Git with the cluster in mode m, as
// CompareAppState does.
func (ac *appController) compare(t *testing.T, a *v1alpha1.Application, m mode) comparison {
	t.Helper()
	folder, err := appFolder(a)
	if err != nil {
		t.Fatal(err)
	}
	destNs := a.Spec.Destination.Namespace
	if _, err := os.Stat(filepath.Join(ac.tree, folder)); os.IsNotExist(err) {
		// The repo-server's error (util/app/path): the controller records a
		// ComparisonError and syncs nothing.
		return comparison{err: fmt.Sprintf("%s: app path does not exist", a.Spec.Source.Path)}
	}
	targets := gitObjects(t, ac.tree, folder, a.Name, destNs)
	if edit := ac.edit[a.Name]; edit != nil {
		targets = edit(targets)
	}
	live, err := ac.c.cache.GetManagedLiveObjs(targets, isManagedBy(a.Name))
	if err != nil {
		t.Fatalf("Application %s: %v", a.Name, err)
	}
	cmp := comparison{rec: gosync.Reconcile(targets, live, destNs, ac.c.cache), health: health.HealthStatusHealthy}
	cfg, cleanup := ac.c.diffConfig(t, m)
	defer cleanup()
	if cmp.diffs, err = argodiff.StateDiffs(cmp.rec.Live, cmp.rec.Target, cfg); err != nil {
		t.Fatalf("%s: Application %s: %v", m.name, a.Name, err)
	}
	overrides := lua.ResourceHealthOverrides(ac.c.overrides)
	for i, target := range cmp.rec.Target {
		live := cmp.rec.Live[i]
		o := target
		if o == nil {
			o = live
		}
		if !selfReferenced(live, target, a.Name) {
			continue
		}
		if d := cmp.diffs.Diffs[i]; d.Modified || target == nil || live == nil {
			cmp.drifts = append(cmp.drifts, drift{id: id(o), diff: lineDiff(d.NormalizedLive, d.PredictedLive)})
		}
		// setApplicationHealth (controller/health.go); the trees have
		// no hooks.
		hs := &health.HealthStatus{Status: health.HealthStatusMissing}
		if live != nil {
			if hs, err = health.GetResourceHealth(live, overrides); err != nil {
				t.Fatalf("health of %s: %v", id(live), err)
			}
		}
		if hs == nil {
			continue
		}
		gvk := o.GroupVersionKind()
		if _, ok := overrides[lua.GetConfigMapKey(gvk)]; hs.Status == health.HealthStatusMissing && !ok && health.GetHealthCheckFunc(gvk) == nil {
			continue
		}
		if gvk.Group == "argoproj.io" && gvk.Kind == "Application" && (hs.Status == health.HealthStatusMissing || hs.Status == health.HealthStatusUnknown) {
			continue
		}
		if health.IsWorse(cmp.health, hs.Status) {
			cmp.health, cmp.unhealthy = hs.Status, id(o)+": "+hs.Message
		}
	}
	return cmp
}

func isManagedBy(name string) func(r *cache.Resource) bool {
	return func(r *cache.Resource) bool { return r.Info == name }
}

// selfReferenced is controller/state.go's isSelfReferencedObj: whether
// live is the object its tracking annotation names (and not an object
// that got a copy of another's annotation).
func selfReferenced(live, target *unstructured.Unstructured, appName string) bool {
	if live == nil {
		return true
	}
	var aiv argo.AppInstanceValue
	if target != nil {
		aiv = argo.UnstructuredToAppInstanceValue(target, appName, "")
	} else if v := tracker.GetAppInstance(live, trackingMethod, ""); v != nil {
		aiv = *v
	} else {
		return true
	}
	gvk := live.GroupVersionKind()
	return (live.GetNamespace() == aiv.Namespace || live.GetNamespace() == "") && live.GetName() == aiv.Name &&
		gvk.Group == aiv.Group && gvk.Kind == aiv.Kind
}

// round reconciles every Application once, after the controllers that do
// not run here (standIns). It says whether anything was done.
func (ac *appController) round(t *testing.T) bool {
	t.Helper()
	busy := ac.c.standIns(t)
	for _, a := range ac.list(t) {
		if ac.paused != nil && ac.paused(a.Name) {
			continue
		}
		if a.DeletionTimestamp != nil {
			if slices.Contains(a.Finalizers, resourcesFinalizer) {
				ac.finalize(t, a)
			}
			busy = true
			continue
		}
		op := ac.ops[a.Name]
		if op != nil && op.phase.Completed() && !op.seen {
			if !ac.c.cacheSeen(t, op) {
				busy = true
				continue
			}
			op.seen = true
			t.Logf("Application %s: the cluster cache saw its sync's writes %s after it finished", a.Name, time.Since(op.finished).Round(100*time.Millisecond))
		}
		cmp := ac.compare(t, a, appMode(a))
		if cmp.err != "" {
			if ac.setStatus(t, a, cmp) {
				busy = true
			}
			continue
		}
		auto := a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Automated != nil
		switch {
		case op != nil && !op.phase.Completed() && time.Now().Before(op.retryAt):
			// A failed attempt, retried later.
			busy = true
		case op != nil && !op.phase.Completed():
			if !op.retryAt.IsZero() {
				// processRequestedAppOperation starts the retry
				// afresh: no sync results.
				op.retryAt, op.results = time.Time{}, nil
			}
			ac.step(t, a, cmp, op)
			busy = true
		case !cmp.synced() && auto:
			busy = true
			selfHeal := op != nil && op.revision == ac.tree
			if selfHeal && (!a.Spec.SyncPolicy.Automated.SelfHeal || time.Since(op.finished) < selfHealAfter) {
				break
			}
			if selfHeal {
				for _, d := range cmp.drifts {
					t.Logf("self-heal of Application %s: %s OutOfSync:\n%s", a.Name, d.id, d.diff)
				}
			}
			ac.step(t, a, cmp, ac.start(a, true, selfHeal))
		}
		if cmp.health == health.HealthStatusDegraded && a.Status.Health.Status != cmp.health {
			t.Logf("Application %s Degraded: %s", a.Name, cmp.unhealthy)
		}
		if ac.setStatus(t, a, cmp) {
			busy = true
		}
	}
	return busy
}

// start starts a sync operation of a (automated, or asked for).
func (ac *appController) start(a *v1alpha1.Application, auto, selfHeal bool) *operation {
	op := &operation{
		revision: ac.tree, auto: auto, selfHeal: selfHeal, phase: synccommon.OperationRunning, started: metav1.Now(),
		prune: a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Automated != nil && a.Spec.SyncPolicy.Automated.Prune,
	}
	ac.ops[a.Name] = op
	name := a.Name
	if selfHeal {
		name += " (self-heal)"
	}
	ac.rec.syncs = append(ac.rec.syncs, name)
	return op
}

// cacheSeen says whether the cluster cache has seen the writes of a
// finished operation: every object it applied is in the cache at the
// resourceVersion the API server has now, every object it pruned is gone
// or being deleted. Argo CD compares an Application whenever its cluster
// cache changes; here its next comparison waits for the cache to catch
// up. Each CRD event makes the cache reload the API server's OpenAPI
// schema under its lock, so after common/'s CRDs it lags behind by
// seconds on two busy cores, and a comparison then finds the objects
// Missing: Argo CD would self-heal, applying them again unchanged.
func (c *cluster) cacheSeen(t *testing.T, op *operation) bool {
	t.Helper()
	cached := c.cache.FindResources("")
	for _, r := range op.results {
		k := r.ResourceKey
		if !kube.IsNamespacedOrUnknown(c.cache, schema.GroupKind{Group: k.Group, Kind: k.Kind}) {
			k.Namespace = ""
		}
		res := cached[k]
		switch r.Status {
		case synccommon.ResultCodePruned:
			if res != nil && res.Resource != nil && res.Resource.GetDeletionTimestamp() == nil {
				return false
			}
		case synccommon.ResultCodeSynced:
			if res == nil || res.Resource == nil {
				return false
			}
			live, err := c.resource(t, res.Resource).Get(context.Background(), k.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if live.GetResourceVersion() != res.ResourceVersion {
				return false
			}
		}
	}
	return true
}

// delayBetweenSyncWaves is controller/sync.go's sync wave hook.
func delayBetweenSyncWaves(_ synccommon.SyncPhase, _ int, finalWave bool) error {
	if !finalWave {
		time.Sleep(waveDelay)
	}
	return nil
}

// step runs one reconcile of a's operation, as SyncAppState does: a new
// sync context over the comparison just made, resumed from the
// operation's state, with the options SyncAppState gives it for a's sync
// options (no project restrictions: the default project permits all).
func (ac *appController) step(t *testing.T, a *v1alpha1.Application, cmp comparison, op *operation) {
	t.Helper()
	// SyncAppState numbers the results it resumes from.
	initial := make([]synccommon.ResourceSyncResult, len(op.results))
	for i, r := range op.results {
		r.Order = i + 1
		initial[i] = r
	}
	var opts v1alpha1.SyncOptions
	if a.Spec.SyncPolicy != nil {
		opts = a.Spec.SyncPolicy.SyncOptions
	}
	propagation := metav1.DeletePropagationForeground
	overrides := lua.ResourceHealthOverrides(ac.c.overrides)
	sc, cleanup, err := gosync.NewSyncContext(op.revision, cmp.rec, ac.c.cfg, ac.c.cfg, ac.c.kubectl, a.Spec.Destination.Namespace, ac.c.cache.GetOpenAPISchema(),
		gosync.WithLogr(logr.Discard()),
		gosync.WithHealthOverride(overrides),
		gosync.WithOperationSettings(false, op.prune, false, false),
		gosync.WithInitialState(op.phase, op.message, initial, op.started),
		gosync.WithResourcesFilter(func(_ kube.ResourceKey, target, live *unstructured.Unstructured) bool {
			return selfReferenced(live, target, a.Name)
		}),
		gosync.WithManifestValidation(!opts.HasOption(synccommon.SyncOptionsDisableValidation)),
		gosync.WithSyncWaveHook(delayBetweenSyncWaves),
		gosync.WithPruneLast(opts.HasOption(synccommon.SyncOptionPruneLast)),
		gosync.WithResourceModificationChecker(opts.HasOption("ApplyOutOfSyncOnly=true"), cmp.diffs),
		gosync.WithPrunePropagationPolicy(&propagation),
		gosync.WithReplace(opts.HasOption(synccommon.SyncOptionReplace)),
		gosync.WithServerSideApply(opts.HasOption(synccommon.SyncOptionServerSideApply)),
		gosync.WithServerSideApplyManager(common.ArgoCDSSAManager),
		gosync.WithClientSideApplyMigration(!opts.HasOption(synccommon.SyncOptionDisableClientSideApplyMigration), synccommon.DefaultClientSideApplyMigrationManager),
		gosync.WithPruneConfirmed(false),
		gosync.WithSkipDryRunOnMissingResource(opts.HasOption(synccommon.SyncOptionSkipDryRunOnMissingResource)),
	)
	if err != nil {
		t.Fatalf("Application %s: sync context: %v", a.Name, err)
	}
	defer cleanup()

	// What the sync's health checks see of the Applications it manages.
	seen := map[string]health.HealthStatusCode{}
	for _, live := range cmp.rec.Live {
		if live != nil && live.GetKind() == "Application" {
			if hs, err := health.GetResourceHealth(live, overrides); err == nil && hs != nil {
				seen[live.GetName()] = hs.Status
			}
		}
	}
	crds := ac.c.establishedCRDs()
	before := map[string]bool{}
	for _, r := range op.results {
		before[resultKey(r)] = true
	}

	sc.Sync()
	op.phase, op.message, op.results = sc.GetState()

	var applied []string
	for _, r := range op.results {
		if before[resultKey(r)] {
			continue
		}
		switch {
		case r.Status == synccommon.ResultCodePruned:
			ac.rec.pruned[a.Name] = append(ac.rec.pruned[a.Name], resultID(r))
		case r.Status == synccommon.ResultCodeSynced && r.ResourceKey.Kind == "Application":
			applied = append(applied, r.ResourceKey.Name)
		}
	}
	if len(applied) > 0 {
		ac.rec.waves = append(ac.rec.waves, waveStep{applied: applied, health: seen, crds: crds})
	}
	if op.phase.Completed() && !op.phase.Successful() {
		var failed []string
		for _, r := range op.results {
			if r.Status == synccommon.ResultCodeSyncFailed || (r.HookPhase.Completed() && !r.HookPhase.Successful()) {
				failed = append(failed, fmt.Sprintf("%s: %s, %s: %s", resultID(r), r.Status, r.HookPhase, r.Message))
			}
		}
		why := fmt.Sprintf("sync of Application %s: %s: %s\n%s", a.Name, op.phase, op.message, strings.Join(failed, "\n"))
		// processRequestedAppOperation: an automated sync is retried.
		retry := v1alpha1.RetryStrategy{Limit: 5}
		if a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Retry != nil {
			retry = *a.Spec.SyncPolicy.Retry
		}
		if !op.auto || op.retries >= retry.Limit {
			t.Fatalf("%s (retried %d times)", why, op.retries)
		}
		at, err := retry.NextRetryAt(time.Now(), op.retries)
		if err != nil {
			t.Fatal(err)
		}
		op.phase, op.retryAt = synccommon.OperationRunning, at
		op.retries++
		ac.rec.retries = append(ac.rec.retries, why)
		t.Logf("retrying in %s: %s", time.Until(at).Round(time.Second), why)
		return
	}
	if op.phase.Completed() {
		op.finished = time.Now()
		ac.rec.ops[a.Name] = append(ac.rec.ops[a.Name], op)
	}
}

func resultKey(r synccommon.ResourceSyncResult) string {
	return r.ResourceKey.String() + ":" + string(r.SyncPhase)
}

func resultID(r synccommon.ResourceSyncResult) string {
	k := r.ResourceKey
	gk := k.Kind
	if k.Group != "" {
		gk += "." + k.Group
	}
	return gk + "/" + strings.TrimPrefix(k.Namespace+"/"+k.Name, "/")
}

// setStatus writes a's status.sync and status.health as the controller
// does after a comparison, when they changed. It says whether it wrote.
func (ac *appController) setStatus(t *testing.T, a *v1alpha1.Application, cmp comparison) bool {
	t.Helper()
	code := v1alpha1.SyncStatusCodeSynced
	switch {
	case cmp.err != "":
		code, cmp.health = v1alpha1.SyncStatusCodeUnknown, a.Status.Health.Status
	case !cmp.synced():
		code = v1alpha1.SyncStatusCodeOutOfSync
	}
	revision := filepath.Base(ac.tree)
	if a.Status.Sync.Status == code && a.Status.Sync.Revision == revision && a.Status.Health.Status == cmp.health {
		return false
	}
	status := map[string]any{
		"sync":   map[string]any{"status": code, "revision": revision},
		"health": map[string]any{"status": cmp.health},
	}
	b, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ac.c.dyn.Resource(appGVR).Namespace(argoNamespace).Patch(context.Background(), a.Name, types.MergePatchType, b, metav1.PatchOptions{FieldManager: controllerManager})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("status of Application %s: %v", a.Name, err)
	}
	return true
}

// managed are the live objects tracked to an Application.
func (c *cluster) managed(name string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, r := range c.cache.FindResources("", isManagedBy(name)) {
		if r.Resource != nil {
			out = append(out, r.Resource)
		}
	}
	slices.SortFunc(out, func(a, b *unstructured.Unstructured) int { return strings.Compare(id(a), id(b)) })
	return out
}

// shouldBeDeleted is the resources finalizer's choice
// (controller/appcontroller.go): never a CRD, nor an object marked
// Delete=false.
func shouldBeDeleted(o *unstructured.Unstructured) bool {
	return !kube.IsCRD(o) && !hasSyncOption(o, synccommon.SyncOptionDisableDeletion)
}

// finalize is one pass of finalizeApplicationDeletion for an Application
// with the resources finalizer: it waits for objects being deleted,
// deletes those of the highest sync wave with foreground propagation, and
// removes the finalizer once none is left.
func (ac *appController) finalize(t *testing.T, a *v1alpha1.Application) {
	t.Helper()
	ctx := context.Background()
	objs := ac.c.managed(a.Name)
	var doomed []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetDeletionTimestamp() != nil {
			return
		}
		if shouldBeDeleted(o) {
			doomed = append(doomed, o)
		}
	}
	if len(doomed) > 0 {
		// FilterObjectsForDeletion: the highest wave first.
		top := syncwaves.Wave(slices.MaxFunc(doomed, func(a, b *unstructured.Unstructured) int { return syncwaves.Wave(a) - syncwaves.Wave(b) }))
		propagation := metav1.DeletePropagationForeground
		for _, o := range doomed {
			if syncwaves.Wave(o) != top {
				continue
			}
			err := ac.c.kubectl.DeleteResource(ctx, ac.c.cfg, o.GroupVersionKind(), o.GetName(), o.GetNamespace(), metav1.DeleteOptions{PropagationPolicy: &propagation})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Fatalf("resources finalizer of Application %s: delete %s: %v", a.Name, id(o), err)
			}
			if !slices.Contains(ac.rec.deleted[a.Name], id(o)) {
				ac.rec.deleted[a.Name] = append(ac.rec.deleted[a.Name], id(o))
			}
		}
		return
	}
	ac.c.removeFinalizer(t, appGVR.GroupVersion().WithKind("Application"), argoNamespace, a.Name, resourcesFinalizer)
}

// establishedCRDs counts the CRDs the cluster cache has seen established.
func (c *cluster) establishedCRDs() int {
	n := 0
	for _, r := range c.cache.FindResources("", func(r *cache.Resource) bool { return r.Ref.Kind == "CustomResourceDefinition" }) {
		if r.Resource == nil {
			continue
		}
		conds, _, _ := unstructured.NestedSlice(r.Resource.Object, "status", "conditions")
		for _, c := range conds {
			if c, ok := c.(map[string]any); ok && c["type"] == "Established" && c["status"] == "True" {
				n++
			}
		}
	}
	return n
}

// converge reconciles round after round until two rounds in a row do
// nothing and every Application in Git is in the cluster, Synced and
// Healthy, with no operation running, and no other Application is left.
// It returns what was done.
func (ac *appController) converge(t *testing.T) *record {
	t.Helper()
	ac.rec = newRecord()
	deadline := time.Now().Add(5 * time.Minute)
	for quiet := 0; quiet < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("Argo CD did not converge in 5 minutes:\n%s", ac.state(t))
		}
		time.Sleep(roundPause)
		if ac.round(t) || ac.state(t) != "" {
			quiet = 0
		} else {
			quiet++
		}
	}
	return ac.rec
}

// state says what keeps the cluster from being converged, "" if nothing.
func (ac *appController) state(t *testing.T) string {
	t.Helper()
	want := apps(t, ac.tree)
	var out []string
	live := map[string]bool{}
	for _, a := range ac.list(t) {
		live[a.Name] = true
		op := ac.ops[a.Name]
		switch {
		case want[a.Name].name == "":
			out = append(out, fmt.Sprintf("Application %s: not in Git (deletion %v)", a.Name, a.DeletionTimestamp))
		case a.Status.Sync.Status != v1alpha1.SyncStatusCodeSynced || a.Status.Health.Status != health.HealthStatusHealthy:
			out = append(out, fmt.Sprintf("Application %s: %s, %s", a.Name, a.Status.Sync.Status, a.Status.Health.Status))
		case op != nil && !op.phase.Completed():
			out = append(out, fmt.Sprintf("Application %s: operation %s: %s", a.Name, op.phase, op.message))
		}
	}
	for name := range want {
		if !live[name] {
			out = append(out, fmt.Sprintf("Application %s: not in the cluster", name))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// syncAll starts a sync operation of every Application in Git (as
// `argocd app sync` would), then converges.
func (ac *appController) syncAll(t *testing.T) *record {
	t.Helper()
	ac.rec = newRecord()
	for _, a := range ac.list(t) {
		ac.start(a, false, false)
	}
	started := ac.rec.syncs
	rec := ac.converge(t)
	rec.syncs = append(started, rec.syncs...)
	return rec
}

// syncOnce runs one sync operation of the Application name to its end,
// reconcile after reconcile, alone.
func (ac *appController) syncOnce(t *testing.T, name string) *operation {
	t.Helper()
	a := ac.live(t, name)
	op := ac.start(a, false, false)
	for deadline := time.Now().Add(2 * time.Minute); !op.phase.Completed(); time.Sleep(roundPause) {
		if time.Now().After(deadline) {
			t.Fatalf("sync of Application %s: not done in 2 minutes: %s", name, op.message)
		}
		ac.step(t, a, ac.compare(t, a, appMode(a)), op)
	}
	return op
}
