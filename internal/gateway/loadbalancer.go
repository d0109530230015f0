package gateway

import (
	"cmp"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
)

// PerLoadBalancer are the annotations (keys, or path.Match patterns) whose
// value names something one cloud load balancer holds alone: a reserved
// address, the load balancer's own name, a group that merges Ingresses
// into one load balancer. Copied from a template to every revision, they
// make the revisions' load balancers fight over it: the second fails to
// get the address, or joins the first.
var PerLoadBalancer = []string{
	// GKE: the reserved address of an Ingress's external or internal
	// load balancer, and of a LoadBalancer Service's.
	"kubernetes.io/ingress.global-static-ip-name",
	"kubernetes.io/ingress.regional-static-ip-name",
	"networking.gke.io/load-balancer-ip-addresses",
	// AWS Load Balancer Controller: an ALB's name, and the group whose
	// Ingresses share one ALB; an NLB's Elastic IPs, addresses and name.
	"alb.ingress.kubernetes.io/load-balancer-name",
	"alb.ingress.kubernetes.io/group.name",
	"service.beta.kubernetes.io/*-eip-allocations",
	"service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses",
	"service.beta.kubernetes.io/aws-load-balancer-ipv6-addresses",
	"service.beta.kubernetes.io/aws-load-balancer-name",
	// Azure: the load balancer's address, its public IP resource, and
	// that IP's DNS label.
	"service.beta.kubernetes.io/azure-load-balancer-ipv4",
	"service.beta.kubernetes.io/azure-load-balancer-ipv6",
	"service.beta.kubernetes.io/azure-pip-name",
	"service.beta.kubernetes.io/azure-pip-name-ipv6",
	"service.beta.kubernetes.io/azure-dns-label-name",
	// MetalLB: the addresses a Service asks for.
	"metallb.universe.tf/loadBalancerIPs",
	"metallb.io/loadBalancerIPs",
}

// IsPerLoadBalancer reports whether an annotation key is one of
// PerLoadBalancer.
func IsPerLoadBalancer(key string) bool {
	return slices.ContainsFunc(PerLoadBalancer, func(p string) bool {
		ok, _ := path.Match(p, key)
		return ok
	})
}

// SharedValue is a PerLoadBalancer annotation that two or more objects
// give the same value.
type SharedValue struct {
	Key, Value string
	// Objects carry it, in the order given.
	Objects []*yaml.RNode
}

// SharedValues finds, among objects that each stand for a load balancer
// of their own, the PerLoadBalancer annotations with one value on two or
// more of them, sorted by key and value.
func SharedValues(objs []*yaml.RNode) []SharedValue {
	type kv struct{ key, value string }
	by := map[kv][]*yaml.RNode{}
	for _, o := range objs {
		a := o.GetAnnotations()
		for _, k := range config.SortedKeys(a) {
			if a[k] != "" && IsPerLoadBalancer(k) {
				by[kv{k, a[k]}] = append(by[kv{k, a[k]}], o)
			}
		}
	}
	var out []SharedValue
	for k, os := range by {
		if len(os) > 1 {
			out = append(out, SharedValue{Key: k.key, Value: k.value, Objects: os})
		}
	}
	slices.SortFunc(out, func(a, b SharedValue) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
	})
	return out
}
