// Package webhook holds what istio-gitops knows of admission webhook
// configurations: how to read their webhooks safely, and the drift guards
// that keep Git in line with what istiod writes into its own at run time.
package webhook

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Kinds of webhook configuration, and the end of every sidecar injector
// webhook's name.
const (
	KindMutating   = "MutatingWebhookConfiguration"
	KindValidating = "ValidatingWebhookConfiguration"
	InjectorSuffix = "sidecar-injector.istio.io"
)

// IsAdmission reports whether obj is of the admissionregistration group.
func IsAdmission(obj *yaml.RNode) bool {
	return strings.HasPrefix(obj.GetApiVersion(), "admissionregistration.k8s.io/")
}

// List returns the webhooks of a webhook configuration, each a mapping.
func List(obj *yaml.RNode) ([]*yaml.RNode, error) {
	list, err := obj.Pipe(yaml.Lookup("webhooks"))
	if err != nil {
		return nil, fmt.Errorf("%s: webhooks: %w", object.Describe(obj), err)
	}
	if list == nil {
		return nil, nil
	}
	if list.YNode().Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s: webhooks must be a list", object.Describe(obj))
	}
	elems, err := list.Elements()
	if err != nil {
		return nil, fmt.Errorf("%s: webhooks: %w", object.Describe(obj), err)
	}
	for i, w := range elems {
		if w.YNode().Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: webhooks[%d] must be a webhook (a mapping)", object.Describe(obj), i)
		}
	}
	return elems, nil
}
