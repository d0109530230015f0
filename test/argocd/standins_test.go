package argocd_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/argoproj/gitops-engine/pkg/cache"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// The control plane is etcd and kube-apiserver alone: no
// kube-controller-manager, kubelet or cloud controller. standIns does,
// for the objects Argo CD manages, the little of their work that Argo
// CD's health checks and deletions wait for, as they do it once the
// workloads run:
//   - the deployment controller: a Deployment's status once its replicas
//     are updated and available;
//   - the horizontal pod autoscaler: an HPA's conditions once it can scale;
//   - a cloud load balancer controller: a LoadBalancer Service's address
//     (a loopback one, never dialled);
//   - the garbage collector: an object deleted with foreground
//     propagation loses its foregroundDeletion finalizer once no object
//     is its dependent.
//
// It writes only what is missing, so a cluster already converged sees no
// write. It says whether it wrote.
func (c *cluster) standIns(t *testing.T) bool {
	t.Helper()
	wrote := false
	for _, r := range c.cache.FindResources("", func(r *cache.Resource) bool { return r.Resource != nil }) {
		o := r.Resource
		if o.GetDeletionTimestamp() != nil {
			if slices.Contains(o.GetFinalizers(), metav1.FinalizerDeleteDependents) && !c.hasDependents(o) {
				c.removeFinalizer(t, o.GroupVersionKind(), o.GetNamespace(), o.GetName(), metav1.FinalizerDeleteDependents)
				wrote = true
			}
			continue
		}
		var status map[string]any
		gk := o.GroupVersionKind().GroupKind()
		switch gk {
		case schema.GroupKind{Group: "apps", Kind: "Deployment"}:
			status = deploymentStatus(o)
		case schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}:
			status = hpaStatus(o)
		case schema.GroupKind{Kind: "Service"}:
			status = loadBalancerStatus(o)
		}
		if status == nil {
			continue
		}
		b, err := json.Marshal(map[string]any{"status": status})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.resource(t, o).Patch(context.Background(), o.GetName(), types.MergePatchType, b, metav1.PatchOptions{FieldManager: "kube-controller-manager"}, "status")
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("status of %s: %v", id(o), err)
		}
		wrote = true
	}
	return wrote
}

// deploymentStatus is a Deployment's status once its replicas are
// updated and available, nil if it says so already.
func deploymentStatus(o *unstructured.Unstructured) map[string]any {
	replicas, found, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
	if !found {
		replicas = 1
	}
	observed, _, _ := unstructured.NestedInt64(o.Object, "status", "observedGeneration")
	available, _, _ := unstructured.NestedInt64(o.Object, "status", "availableReplicas")
	if observed == o.GetGeneration() && available == replicas {
		return nil
	}
	return map[string]any{
		"observedGeneration": o.GetGeneration(),
		"replicas":           replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
		"conditions": []any{
			map[string]any{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
			map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed."},
		},
	}
}

// hpaStatus is an autoscaling/v2 HPA's status once it can scale, nil if
// it has conditions already.
func hpaStatus(o *unstructured.Unstructured) map[string]any {
	if conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions"); len(conds) > 0 || o.GetAPIVersion() != "autoscaling/v2" {
		return nil
	}
	replicas, found, _ := unstructured.NestedInt64(o.Object, "spec", "minReplicas")
	if !found {
		replicas = 1
	}
	now := metav1.Now().UTC().Format("2006-01-02T15:04:05Z")
	return map[string]any{
		"currentReplicas": replicas, "desiredReplicas": replicas,
		"conditions": []any{
			map[string]any{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": now},
			map[string]any{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "lastTransitionTime": now},
		},
	}
}

// loadBalancerStatus is a LoadBalancer Service's status once its load
// balancer is up, nil for other Services and those that have one.
func loadBalancerStatus(o *unstructured.Unstructured) map[string]any {
	if typ, _, _ := unstructured.NestedString(o.Object, "spec", "type"); typ != "LoadBalancer" {
		return nil
	}
	if ingress, _, _ := unstructured.NestedSlice(o.Object, "status", "loadBalancer", "ingress"); len(ingress) > 0 {
		return nil
	}
	return map[string]any{"loadBalancer": map[string]any{"ingress": []any{map[string]any{"ip": "127.0.101.1", "ipMode": "VIP"}}}}
}

// hasDependents says whether an object owns another (a blocking
// dependent keeps a foreground deletion waiting).
func (c *cluster) hasDependents(o *unstructured.Unstructured) bool {
	return len(c.cache.FindResources("", func(r *cache.Resource) bool {
		for _, ref := range r.OwnerRefs {
			if ref.UID == o.GetUID() {
				return true
			}
		}
		return false
	})) > 0
}

// removeFinalizer removes a finalizer from the object as it is now on the
// API server (not the cache's copy: the others' finalizers stay), on
// condition that it did not change meanwhile.
func (c *cluster) removeFinalizer(t *testing.T, gvk schema.GroupVersionKind, namespace, name, finalizer string) {
	t.Helper()
	ref := &unstructured.Unstructured{}
	ref.SetGroupVersionKind(gvk)
	ref.SetNamespace(namespace)
	ref.SetName(name)
	r := c.resource(t, ref)
	ctx := context.Background()
	o, err := r.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	rest := slices.DeleteFunc(o.GetFinalizers(), func(f string) bool { return f == finalizer })
	if len(rest) == len(o.GetFinalizers()) {
		return
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": rest, "resourceVersion": o.GetResourceVersion()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		t.Fatalf("remove finalizer %s of %s %s/%s: %v", finalizer, gvk.Kind, namespace, name, err)
	}
}
