package webhook

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// DriftGuards edits a webhook configuration in place so that Git holds what
// istiod leaves alone and agrees with what istiod writes, and a GitOps
// controller re-applying it does not undo istiod's patches on every
// reconciliation. istiod only touches configurations labelled istio.io/rev
// (its own revision's, which includes tag webhooks and
// istiod-default-validator); others are left as they are, and so is every
// other kind.
//
//   - MutatingWebhookConfiguration: clientConfig.caBundle is removed from the
//     injector webhooks (names ending in sidecar-injector.istio.io), which
//     istiod's webhook cert patcher (pkg/webhooks/webhookpatch.go) fills in.
//   - ValidatingWebhookConfiguration: clientConfig.caBundle is removed and
//     failurePolicy set to Fail on every webhook: istiod's validation
//     controller (pkg/webhooks/validation/controller/controller.go) writes
//     its CA bundle into every webhook and flips every Ignore to Fail once
//     its endpoint rejects invalid config.
func DriftGuards(obj *yaml.RNode) error {
	kind := obj.GetKind()
	if (kind != KindMutating && kind != KindValidating) || !IsAdmission(obj) {
		return nil
	}
	if obj.GetLabels()[api.RevisionLabel] == "" {
		return nil
	}
	whs, err := List(obj)
	if err != nil {
		return err
	}
	for i, w := range whs {
		name := object.Scalar(w, "name")
		if kind == KindMutating && !strings.HasSuffix(name, InjectorSuffix) {
			continue
		}
		cc, err := w.Pipe(yaml.Lookup("clientConfig"))
		if err != nil {
			return fmt.Errorf("%s: webhooks[%d] %q: clientConfig: %w", object.Describe(obj), i, name, err)
		}
		if cc != nil {
			if err := cc.PipeE(yaml.Clear("caBundle")); err != nil {
				return fmt.Errorf("%s: webhooks[%d] %q: clientConfig.caBundle: %w", object.Describe(obj), i, name, err)
			}
		}
		if kind == KindValidating {
			if err := w.PipeE(yaml.SetField("failurePolicy", yaml.NewStringRNode("Fail"))); err != nil {
				return fmt.Errorf("%s: webhooks[%d] %q: failurePolicy: %w", object.Describe(obj), i, name, err)
			}
		}
	}
	return nil
}
