package apiserver

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// endpointsManager is the managed-by label of the EndpointSlices that
// PublishEndpoints writes.
const endpointsManager = "apiserver-tests.istio-gitops.dev"

// PublishEndpoints does for the istiod processes what the EndpointSlice
// controller does for pods: for every Service of namespace with a
// selector, one EndpointSlice listing the running istiods whose pod labels
// it selects (none: an empty slice), with the Service's port names and
// their target ports; slices of Services that are gone are deleted.
//
// kube-apiserver reaches a webhook's Service through its EndpointSlices
// (--enable-aggregator-routing) and refuses loopback addresses in slices of
// addressType IPv4; it takes an FQDN slice whose address is an IP, and
// dials that IP. It warns that FQDN slices are deprecated: give c a
// warning handler of its own.
func PublishEndpoints(ctx context.Context, c client.Client, namespace string, istiods []*Istiod) error {
	var running []*Istiod
	for _, i := range istiods {
		if done, _ := i.Exited(); !done {
			running = append(running, i)
		}
	}
	var services corev1.ServiceList
	if err := c.List(ctx, &services, client.InNamespace(namespace)); err != nil {
		return fmt.Errorf("list the Services of %s: %w", namespace, err)
	}
	var existing discoveryv1.EndpointSliceList
	if err := c.List(ctx, &existing, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelManagedBy: endpointsManager}); err != nil {
		return fmt.Errorf("list the EndpointSlices of %s: %w", namespace, err)
	}
	stale := map[string]*discoveryv1.EndpointSlice{}
	for k := range existing.Items {
		stale[existing.Items[k].Name] = &existing.Items[k]
	}
	for _, svc := range services.Items {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		want := endpointSlice(&svc, running)
		old := stale[want.Name]
		delete(stale, want.Name)
		var err error
		switch {
		case old == nil:
			err = c.Create(ctx, want)
		case equality.Semantic.DeepEqual(old.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(old.Ports, want.Ports):
			continue
		default:
			old.Endpoints, old.Ports = want.Endpoints, want.Ports
			err = c.Update(ctx, old)
		}
		if err != nil {
			return fmt.Errorf("EndpointSlice %s/%s: %w", namespace, want.Name, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(stale)) {
		if err := client.IgnoreNotFound(c.Delete(ctx, stale[name])); err != nil {
			return fmt.Errorf("delete EndpointSlice %s/%s: %w", namespace, name, err)
		}
	}
	return nil
}

// endpointSlice is the EndpointSlice of svc over the istiods it selects.
func endpointSlice(svc *corev1.Service, running []*Istiod) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeFQDN,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	es.Name, es.Namespace = svc.Name, svc.Namespace
	es.Labels = map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: endpointsManager}
	selector := labels.SelectorFromSet(svc.Spec.Selector)
	var selected []*Istiod
	for _, i := range running {
		if i.Pod.Namespace == svc.Namespace && selector.Matches(labels.Set(i.Pod.Labels)) {
			selected = append(selected, i)
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{i.Address},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: i.Pod.Namespace, Name: i.Pod.Name},
			})
		}
	}
	for _, sp := range svc.Spec.Ports {
		port, ok := targetPort(sp, selected)
		if !ok {
			continue
		}
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Protocol: ptr.To(sp.Protocol), Port: ptr.To(port)})
	}
	return es
}

// targetPort resolves a Service port's target port on the pods selected,
// as the EndpointSlice controller does: a number as it is, none as the
// port, a name by the container port so named.
func targetPort(sp corev1.ServicePort, selected []*Istiod) (int32, bool) {
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		for _, i := range selected {
			if p, ok := i.Pod.Ports[sp.TargetPort.StrVal]; ok {
				return p, true
			}
		}
		return 0, false
	case sp.TargetPort.IntVal != 0:
		return sp.TargetPort.IntVal, true
	}
	return sp.Port, true
}
