package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager is kustomize-controller's field manager.
const FieldManager = "kustomize-controller"

// Flux applies and prunes as kustomize-controller does, for one
// Kustomization at a time: the same ResourceManager (fluxcd/pkg/ssa), the
// same apply options, owner labels, inventory and prune rules.
type Flux struct {
	manager *ssa.ResourceManager
}

// NewFlux is Flux's apply engine on c.
func NewFlux(c client.Client) *Flux {
	poller := polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{})
	m := ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: kustomizev1.GroupVersion.Group})
	// kustomize-controller's --concurrent-ssa default.
	m.SetConcurrency(4)
	return &Flux{manager: m}
}

// Kustomization is what kustomize-controller keeps of a Kustomization
// between reconciliations: its name, and in its status the inventory of
// the last apply.
type Kustomization struct {
	Name, Namespace string
	// Inventory is the last apply's objects (kustomize-controller's
	// status.inventory: ID and version), sorted.
	Inventory []kustomizev1.ResourceRef
}

// Result is what one reconciliation did.
type Result struct {
	// Applied has an entry per object of the build: created, configured,
	// unchanged or skipped.
	Applied *ssa.ChangeSet
	// Pruned has an entry per object of the previous inventory that the
	// build no longer has: deleted, or skipped (prune disabled).
	Pruned *ssa.ChangeSet
	// ApplyTime and PruneTime are the wall times of the two.
	ApplyTime, PruneTime time.Duration
}

// ReadObjects decodes a build's YAML as kustomize-controller does.
func ReadObjects(build []byte) ([]*unstructured.Unstructured, error) {
	return ssautil.ReadObjects(bytes.NewReader(build))
}

// Reconcile applies objects, the build of k's path, and prunes what k's
// inventory holds that they do not (k.Spec.Prune is true for every
// Kustomization istio-gitops renders). It updates k's inventory.
func (f *Flux) Reconcile(ctx context.Context, k *Kustomization, objects []*unstructured.Unstructured) (Result, error) {
	var res Result
	if err := normalize.UnstructuredList(objects); err != nil {
		return res, err
	}
	f.manager.SetOwnerLabels(objects, k.Name, k.Namespace)
	start := time.Now()
	applied, err := f.manager.ApplyAllStaged(ctx, objects, applyOptions())
	res.ApplyTime = time.Since(start)
	res.Applied = applied
	if err != nil {
		return res, fmt.Errorf("%s/%s: apply: %w", k.Namespace, k.Name, err)
	}
	inventory := inventoryOf(applied)
	stale, err := staleObjects(k.Inventory, inventory)
	if err != nil {
		return res, err
	}
	start = time.Now()
	res.Pruned, err = f.manager.DeleteAll(ctx, stale, f.deleteOptions(k))
	res.PruneTime = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("%s/%s: prune: %w", k.Namespace, k.Name, err)
	}
	k.Inventory = inventory
	return res, nil
}

// Finalize is kustomize-controller's finalizer of a deleted Kustomization
// with prune: true (deletionPolicy MirrorPrune): it deletes the inventory.
func (f *Flux) Finalize(ctx context.Context, k *Kustomization) (*ssa.ChangeSet, error) {
	objects, err := staleObjects(k.Inventory, nil)
	if err != nil {
		return nil, err
	}
	cs, err := f.manager.DeleteAll(ctx, objects, f.deleteOptions(k))
	if err != nil {
		return cs, fmt.Errorf("%s/%s: finalize: %w", k.Namespace, k.Name, err)
	}
	k.Inventory = nil
	return cs, nil
}

// Diff is `flux diff kustomization` of objects as k would apply them: a
// server-side dry-run of each, returning the entries that would change.
func (f *Flux) Diff(ctx context.Context, k *Kustomization, objects []*unstructured.Unstructured) ([]ssa.ChangeSetEntry, error) {
	if err := normalize.UnstructuredList(objects); err != nil {
		return nil, err
	}
	f.manager.SetOwnerLabels(objects, k.Name, k.Namespace)
	entries := make([]*ssa.ChangeSetEntry, len(objects))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, o := range objects {
		g.Go(func() error {
			e, _, _, err := f.manager.Diff(gctx, o, ssa.DefaultDiffOptions())
			if err != nil {
				return fmt.Errorf("dry-run %s: %w", ssautil.FmtUnstructured(o), err)
			}
			entries[i] = e
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var changed []ssa.ChangeSetEntry
	for _, e := range entries {
		if e.Action != ssa.UnchangedAction {
			changed = append(changed, *e)
		}
	}
	return changed, nil
}

// applyOptions are kustomize-controller's (its apply function), for a
// Kustomization without force, ignore rules or custom stages.
func applyOptions() ssa.ApplyOptions {
	g := kustomizev1.GroupVersion.Group
	opts := ssa.DefaultApplyOptions()
	opts.ExclusionSelector = map[string]string{
		g + "/reconcile": kustomizev1.DisabledValue,
		g + "/ssa":       kustomizev1.IgnoreValue,
	}
	opts.IfNotPresentSelector = map[string]string{g + "/ssa": kustomizev1.IfNotPresentValue}
	opts.ForceSelector = map[string]string{g + "/force": kustomizev1.EnabledValue}
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{corev1.LastAppliedConfigAnnotation, g + "/checksum", "fluxcd.io/sync-checksum"},
		Labels:      []string{"fluxcd.io/sync-gc-mark"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: FieldManager, OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{g + "/ssa": kustomizev1.MergeValue},
	}
	// kustomize-controller polls every 2 s for CRDs and Namespaces to be
	// ready; the server makes them ready at once, so poll sooner.
	opts.WaitInterval = 100 * time.Millisecond
	return opts
}

// deleteOptions are kustomize-controller's (deleteObjects): only objects
// carrying k's owner labels, never one annotated or labelled prune:
// disabled.
func (f *Flux) deleteOptions(k *Kustomization) ssa.DeleteOptions {
	g := kustomizev1.GroupVersion.Group
	return ssa.DeleteOptions{
		PropagationPolicy: metav1.DeletePropagationBackground,
		Inclusions:        f.manager.GetOwnerLabels(k.Name, k.Namespace),
		Exclusions: map[string]string{
			g + "/prune":     kustomizev1.DisabledValue,
			g + "/reconcile": kustomizev1.DisabledValue,
			g + "/ssa":       kustomizev1.IgnoreValue,
		},
	}
}

// inventoryOf is kustomize-controller's inventory of a change set.
func inventoryOf(cs *ssa.ChangeSet) []kustomizev1.ResourceRef {
	var inv []kustomizev1.ResourceRef
	for _, e := range cs.Entries {
		inv = append(inv, kustomizev1.ResourceRef{ID: e.ObjMetadata.String(), Version: e.GroupVersion})
	}
	slices.SortFunc(inv, func(a, b kustomizev1.ResourceRef) int { return strings.Compare(a.ID, b.ID) })
	return inv
}

// staleObjects lists the objects of inventory old that inventory new does
// not hold, as kustomize-controller's inventory.Diff does.
func staleObjects(old, new []kustomizev1.ResourceRef) ([]*unstructured.Unstructured, error) {
	keep := map[string]bool{}
	for _, r := range new {
		keep[r.ID] = true
	}
	var out []*unstructured.Unstructured
	for _, r := range old {
		if keep[r.ID] {
			continue
		}
		m, err := object.ParseObjMetadata(r.ID)
		if err != nil {
			return nil, fmt.Errorf("inventory entry %q: %w", r.ID, err)
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: m.GroupKind.Group, Version: r.Version, Kind: m.GroupKind.Kind})
		u.SetName(m.Name)
		u.SetNamespace(m.Namespace)
		out = append(out, u)
	}
	return out, nil
}
