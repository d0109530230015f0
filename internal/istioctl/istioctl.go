// Package istioctl knows the output of `istioctl manifest generate`: how to
// check it, which Istio version it installs, and which names carry a
// revision.
package istioctl

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/kustomize/api/pkg/util"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Check reports the first object of a revision's output that cannot be
// written: no kind or name, a name that would leave its folder, or an
// identity that two objects share.
func Check(source string, objs []*yaml.RNode) error {
	seen := map[string]int{}
	for i, o := range objs {
		if err := layout.CheckIdentity(o); err != nil {
			return fmt.Errorf("%s: object %d: %w", source, i+1, err)
		}
		id := Identity(o)
		if j, dup := seen[id]; dup {
			return fmt.Errorf("%s: objects %d and %d must not share the identity %s", source, j+1, i+1, object.Describe(o))
		}
		seen[id] = i
	}
	return nil
}

// Identity is what makes an object unique in a cluster: group, kind,
// namespace and name (the version does not count).
func Identity(o *yaml.RNode) string {
	group, _, _ := strings.Cut(o.GetApiVersion(), "/")
	if !strings.Contains(o.GetApiVersion(), "/") {
		group = ""
	}
	return group + "|" + o.GetKind() + "|" + o.GetNamespace() + "|" + o.GetName()
}

// Version reads the Istio version a revision's output installs from the
// image tag of its istiod (pilot) container: istioctl builds of the same
// release can leave the chart labels at 1.0.0, the image tag is what runs.
func Version(objs []*yaml.RNode) (string, bool) {
	for _, o := range objs {
		if o.GetKind() != "Deployment" || !strings.HasPrefix(o.GetName(), "istiod") {
			continue
		}
		containers, err := o.Pipe(yaml.Lookup("spec", "template", "spec", "containers"))
		if err != nil || containers == nil {
			continue
		}
		for _, c := range containers.Content() {
			name := object.Scalar(yaml.NewRNode(c), "name")
			if name != "discovery" {
				continue
			}
			image := object.Scalar(yaml.NewRNode(c), "image")
			if v, ok := ImageVersion(image); ok {
				return v, true
			}
		}
	}
	return "", false
}

// ImageVersion is the version in an image reference's tag:
// docker.io/istio/pilot:1.31.0-distroless gives 1.31.0. The reference is
// split as kustomize splits it (a registry's port is no tag, a digest is
// dropped); the tag is read as a Kubernetes generic version, up to its
// patch number.
func ImageVersion(image string) (string, bool) {
	_, tag, _ := util.SplitImageName(image)
	if tag == "" {
		return "", false
	}
	v, err := version.ParseGeneric(tag)
	if err != nil {
		return "", false
	}
	c := v.Components()
	if len(c) > 3 {
		c = c[:3]
	}
	parts := make([]string, len(c))
	for i, n := range c {
		parts[i] = strconv.FormatUint(uint64(n), 10)
	}
	return strings.Join(parts, "."), true
}

// IsIstiod reports whether o is revision rev's istiod Deployment in
// namespace: what every profile of istioctl's output, and Istio's istiod
// chart, holds. An output without it is truncated, or for another
// revision or namespace.
func IsIstiod(o *yaml.RNode, rev, namespace string) bool {
	return o.GetKind() == "Deployment" && object.GroupOf(o.GetApiVersion()) == "apps" &&
		o.GetName() == "istiod-"+rev && o.GetNamespace() == namespace
}

// OtherRevision is the revision other than rev that o is labelled for
// (metadata.labels istio.io/rev), "" when none: revision rev's output
// holds only rev's objects, and objects labelled "default" (Istio's charts
// label the default validator so). Another revision's objects mean an
// output made for that revision, or two outputs in one file.
func OtherRevision(o *yaml.RNode, rev string) string {
	v := object.Scalar(o, "metadata", "labels", api.RevisionLabel)
	if v == "" || v == rev || v == "default" {
		return ""
	}
	return v
}
