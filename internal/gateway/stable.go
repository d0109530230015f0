package gateway

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// revisionBoundLabels change from one revision's Service to the next; a
// stable Service drops them so that switching the live revision edits only
// its selector and annotation.
var revisionBoundLabels = []string{api.RevisionLabel, "app.kubernetes.io/version", "helm.sh/chart"}

// StableServices returns one stable Service per gateway Service of the live
// revision, for common/: it keeps the Service's original name (such as
// istio-ingressgateway), type, ports and annotations, and selects the live
// revision's pods (its selector includes istio.io/rev: <liveRev>). A fixed
// load-balancer address then moves between gateway sets when the live
// revision changes, with no DNS change.
//
// liveObjs are the live revision's objects after PerRevision; a gateway
// Service that was not renamed for liveRev is an error. The Services are
// new objects, sorted by namespace and name.
func StableServices(liveObjs []*yaml.RNode, liveRev string) ([]*yaml.RNode, error) {
	comps, err := Find(liveObjs)
	if err != nil {
		return nil, err
	}
	var out []*yaml.RNode
	for _, c := range comps {
		for _, svc := range c.Services() {
			s, err := stableService(svc, liveRev)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *yaml.RNode) int {
		return cmp.Or(strings.Compare(a.GetNamespace(), b.GetNamespace()), strings.Compare(a.GetName(), b.GetName()))
	})
	return out, nil
}

func stableService(svc *yaml.RNode, liveRev string) (*yaml.RNode, error) {
	orig, ok := Original(svc.GetName(), liveRev)
	if !ok {
		return nil, fmt.Errorf("%s: a gateway Service of the live revision %q must be named <gateway>-%s: gateways must be per revision for stable Services",
			object.Describe(svc), liveRev, liveRev)
	}
	if got := object.Scalar(svc, "spec", "selector", api.RevisionLabel); got != liveRev {
		return nil, fmt.Errorf("%s: spec.selector[%q] is %q: it must select the live revision %q's pods", object.Describe(svc), api.RevisionLabel, got, liveRev)
	}
	s := svc.Copy()
	if err := layout.ClearReaderAnnotations(s); err != nil {
		return nil, fmt.Errorf("%s: %w", object.Describe(svc), err)
	}
	if err := object.SetString(s, orig, "metadata", "name"); err != nil {
		return nil, fmt.Errorf("%s: %w", object.Describe(svc), err)
	}
	labels, err := s.Pipe(yaml.Lookup("metadata", "labels"))
	if err != nil {
		return nil, fmt.Errorf("%s: metadata.labels: %w", object.Describe(svc), err)
	}
	if labels != nil && labels.YNode().Kind == yaml.MappingNode {
		for _, k := range revisionBoundLabels {
			if _, err := labels.Pipe(yaml.Clear(k)); err != nil {
				return nil, fmt.Errorf("%s: metadata.labels: %w", object.Describe(svc), err)
			}
		}
	}
	// The cluster allocates these per Service; copied, they would clash
	// with the revision's own Service.
	for _, f := range []string{"clusterIP", "clusterIPs", "healthCheckNodePort"} {
		if _, err := s.Pipe(yaml.Lookup("spec"), yaml.Clear(f)); err != nil {
			return nil, fmt.Errorf("%s: spec.%s: %w", object.Describe(svc), f, err)
		}
	}
	if _, err := s.Pipe(yaml.Clear("status")); err != nil {
		return nil, fmt.Errorf("%s: status: %w", object.Describe(svc), err)
	}
	if err := object.SetAnnotation(s, api.LiveRevisionAnnotation, liveRev); err != nil {
		return nil, fmt.Errorf("%s: %w", object.Describe(svc), err)
	}
	return s, nil
}
