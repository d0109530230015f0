// Package gateway finds the ingress and egress gateway components of an
// istioctl output and turns them into one blue/green set per revision:
// every gateway object is renamed <name>-<rev> with its references rewired
// and its selectors narrowed to the revision's pods, optionally fronted by
// stable Services that follow the live revision and by one Ingress per
// revision.
//
// istioctl names gateway objects without the revision, so two canary
// revisions would collide on them and upgrade the gateways in place; these
// transformations are what lets two gateway sets run side by side while one
// Gateway resource serves both (the pods keep the labels Gateways select).
package gateway

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Kinds of the objects a gateway component is made of.
const (
	KindDeployment     = "Deployment"
	KindService        = "Service"
	KindServiceAccount = "ServiceAccount"
	KindRole           = "Role"
	KindRoleBinding    = "RoleBinding"
	KindHPA            = "HorizontalPodAutoscaler"
	KindPDB            = "PodDisruptionBudget"
)

// Kinds are the kinds a gateway component is made of.
var Kinds = []string{KindDeployment, KindService, KindServiceAccount, KindRole, KindRoleBinding, KindHPA, KindPDB}

// proxyContainer is the container istioctl's gateway charts run Envoy in.
const proxyContainer = "istio-proxy"

// Component is one gateway (ingress or egress) of a revision's output.
type Component struct {
	// Name is the gateway's name: the name of its Deployment.
	Name string
	// Namespace is the namespace of its Deployment; every other object of the
	// component lives there too.
	Namespace string
	// Deployment runs the gateway's proxies.
	Deployment *yaml.RNode
	// ServiceAccount is the name the pod template runs as, when that
	// ServiceAccount is part of the output; empty otherwise.
	ServiceAccount string
	// Objects are all objects of the component, Deployment included, sorted
	// by kind then name.
	Objects []*yaml.RNode
	// PodLabels are the labels of the Deployment's pod template.
	PodLabels map[string]string
}

// Services returns the component's Services, by name.
func (c Component) Services() []*yaml.RNode {
	return c.ofKind(KindService)
}

func (c Component) ofKind(kind string) []*yaml.RNode {
	var out []*yaml.RNode
	for _, o := range c.Objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// Has reports whether obj is one of the component's objects, compared by
// identity (group, kind, namespace, name) so copies of the objects match.
func (c Component) Has(obj *yaml.RNode) bool {
	id := object.IDOf(obj)
	return slices.ContainsFunc(c.Objects, func(o *yaml.RNode) bool { return object.IDOf(o) == id })
}

// IsGatewayObject reports whether obj belongs to one of comps. The pipeline
// uses it to send gateway objects to common/ when gateways are not per
// revision, and to the revision otherwise.
func IsGatewayObject(comps []Component, obj *yaml.RNode) bool {
	return slices.ContainsFunc(comps, func(c Component) bool { return c.Has(obj) })
}

// Objects returns every object of comps, component by component.
func Objects(comps []Component) []*yaml.RNode {
	var out []*yaml.RNode
	for _, c := range comps {
		out = append(out, c.Objects...)
	}
	return out
}

// Find returns the gateway components among objs, sorted by namespace and
// name. A gateway is recognized by what it is, whatever its name: a
// Deployment whose pod template runs the Istio proxy as a router (container
// istio-proxy with the `router` argument, as istioctl's gateway charts
// render it) or asks the injector for a gateway template
// (inject.istio.io/templates: gateway). Its other objects are found by
// reference:
//   - Services and PodDisruptionBudgets whose selector matches its pod labels,
//   - HorizontalPodAutoscalers whose scaleTargetRef is the Deployment,
//   - the ServiceAccount named by serviceAccountName,
//   - RoleBindings that bind only that ServiceAccount, and the Roles they
//     reference.
//
// An object that would belong to two gateways is an error: the gateways
// could not be renamed apart.
func Find(objs []*yaml.RNode) ([]Component, error) {
	var comps []*Component
	seen := map[object.ID]*yaml.RNode{}
	for _, o := range objs {
		id := object.IDOf(o)
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("%s: must appear once in the output, found twice (%s)", object.Describe(o), object.Describe(prev))
		}
		seen[id] = o
		ok, err := isGatewayDeployment(o)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		labels, err := stringMap(o, "spec", "template", "metadata", "labels")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", object.Describe(o), err)
		}
		if len(labels) == 0 {
			return nil, fmt.Errorf("%s: spec.template.metadata.labels must not be empty: Services and Gateways select gateway pods by label", object.Describe(o))
		}
		sa, err := serviceAccountName(o)
		if err != nil {
			return nil, err
		}
		comps = append(comps, &Component{
			Name:           o.GetName(),
			Namespace:      o.GetNamespace(),
			Deployment:     o,
			ServiceAccount: sa,
			Objects:        []*yaml.RNode{o},
			PodLabels:      labels,
		})
	}
	if len(comps) == 0 {
		return nil, nil
	}
	slices.SortFunc(comps, func(a, b *Component) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})

	owner := map[object.ID]*Component{}
	for _, c := range comps {
		owner[object.IDOf(c.Deployment)] = c
	}
	claim := func(o *yaml.RNode, c *Component) error {
		id := object.IDOf(o)
		if prev, ok := owner[id]; ok {
			if prev == c {
				return nil
			}
			return fmt.Errorf("%s: belongs to gateways %q and %q: each gateway must have its own", object.Describe(o), prev.Name, c.Name)
		}
		owner[id] = c
		c.Objects = append(c.Objects, o)
		return nil
	}

	// ServiceAccounts are found first: the RoleBindings are matched on them.
	for _, o := range objs {
		if o.GetKind() != KindServiceAccount || !isCoreGroup(o) {
			continue
		}
		for _, c := range comps {
			if c.ServiceAccount == o.GetName() && c.Namespace == o.GetNamespace() {
				if err := claim(o, c); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, c := range comps {
		if !slices.ContainsFunc(c.Objects, func(o *yaml.RNode) bool { return o.GetKind() == KindServiceAccount }) {
			// The pod runs as an account the output does not hold (such as
			// "default"): nothing to rename.
			c.ServiceAccount = ""
		}
	}

	var roleRefs []roleRef
	for _, o := range objs {
		var (
			c   *Component
			err error
		)
		switch {
		case o.GetKind() == KindService && isCoreGroup(o):
			c, err = findBySelector(o, comps, "spec", "selector")
		case o.GetKind() == KindPDB && groupOf(o) == "policy":
			c, err = findByLabelSelector(o, comps, "spec", "selector")
		case o.GetKind() == KindHPA && groupOf(o) == "autoscaling":
			c, err = findByScaleTarget(o, comps)
		case o.GetKind() == KindRoleBinding && groupOf(o) == rbacGroup:
			var ref roleRef
			c, ref, err = findByBinding(o, comps)
			if c != nil && ref.name != "" {
				roleRefs = append(roleRefs, ref)
			}
		}
		if err != nil {
			return nil, err
		}
		if c != nil {
			if err := claim(o, c); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range objs {
		if o.GetKind() != KindRole || groupOf(o) != rbacGroup {
			continue
		}
		for _, ref := range roleRefs {
			if ref.name == o.GetName() && ref.namespace == o.GetNamespace() {
				if err := claim(o, ref.comp); err != nil {
					return nil, err
				}
			}
		}
	}

	out := make([]Component, 0, len(comps))
	for _, c := range comps {
		slices.SortStableFunc(c.Objects, func(a, b *yaml.RNode) int {
			return cmp.Or(strings.Compare(a.GetKind(), b.GetKind()), strings.Compare(a.GetName(), b.GetName()))
		})
		out = append(out, *c)
	}
	return out, nil
}

// isGatewayDeployment reports whether d is a Deployment of gateway proxies.
func isGatewayDeployment(d *yaml.RNode) (bool, error) {
	if d.GetKind() != KindDeployment || groupOf(d) != "apps" {
		return false, nil
	}
	ann, err := stringMap(d, "spec", "template", "metadata", "annotations")
	if err != nil {
		return false, fmt.Errorf("%s: %w", object.Describe(d), err)
	}
	// A gateway rendered for injection (injectionTemplate: gateway) carries
	// no proxy arguments yet: the injector's template makes it a router.
	for t := range strings.SplitSeq(ann[api.InjectTemplatesAnnotation], ",") {
		if strings.TrimSpace(t) == "gateway" {
			return true, nil
		}
	}
	containers, err := d.Pipe(yaml.Lookup("spec", "template", "spec", "containers"))
	if err != nil || containers == nil {
		return false, err
	}
	elems, err := containers.Elements()
	if err != nil {
		return false, fmt.Errorf("%s: spec.template.spec.containers: %w", object.Describe(d), err)
	}
	for _, c := range elems {
		if object.Scalar(c, "name") != proxyContainer {
			continue
		}
		args, err := stringList(c, "args")
		if err != nil {
			return false, fmt.Errorf("%s: containers[%s].args: %w", object.Describe(d), proxyContainer, err)
		}
		// pilot-agent runs sidecars as `proxy sidecar` and gateways as
		// `proxy router`.
		if slices.Contains(args, "router") {
			return true, nil
		}
	}
	return false, nil
}

func serviceAccountName(d *yaml.RNode) (string, error) {
	for _, f := range []string{"serviceAccountName", "serviceAccount"} {
		n, err := d.Pipe(yaml.Lookup("spec", "template", "spec", f))
		if err != nil {
			return "", fmt.Errorf("%s: spec.template.spec.%s: %w", object.Describe(d), f, err)
		}
		if v := yaml.GetValue(n); v != "" {
			return v, nil
		}
	}
	return "", nil
}

// findBySelector returns the gateway whose pods a Service selects.
func findBySelector(o *yaml.RNode, comps []*Component, path ...string) (*Component, error) {
	sel, err := stringMap(o, path...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", object.Describe(o), err)
	}
	if len(sel) == 0 {
		// No selector: endpoints are managed by hand; not a gateway Service.
		return nil, nil
	}
	return pick(o, comps, func(c *Component) bool { return subset(sel, c.PodLabels) })
}

// findByLabelSelector returns the gateway whose pods a LabelSelector
// (matchLabels and matchExpressions) selects.
func findByLabelSelector(o *yaml.RNode, comps []*Component, path ...string) (*Component, error) {
	sel, err := labelSelector(o, path...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", object.Describe(o), err)
	}
	if sel.Empty() {
		// An empty selector selects every pod of the namespace: it is not
		// the gateway's.
		return nil, nil
	}
	return pick(o, comps, func(c *Component) bool { return sel.Matches(labels.Set(c.PodLabels)) })
}

// pick chooses among the gateways whose pods o selects. Gateways rendered
// from istioctl's charts may share their selector labels (custom gateways
// keep `app: istio-ingressgateway` unless told otherwise), so a tie goes to
// the gateway o is named after, as the charts name them alike.
func pick(o *yaml.RNode, comps []*Component, selects func(*Component) bool) (*Component, error) {
	var found []*Component
	for _, c := range comps {
		if c.Namespace == o.GetNamespace() && selects(c) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	for _, c := range found {
		if c.Name == o.GetName() {
			return c, nil
		}
	}
	names := make([]string, 0, len(found))
	for _, c := range found {
		names = append(names, c.Name)
	}
	return nil, fmt.Errorf("%s: selects the pods of gateways %q: it must select one gateway's pods, or be named after it", object.Describe(o), names)
}

func findByScaleTarget(o *yaml.RNode, comps []*Component) (*Component, error) {
	ref, err := o.Pipe(yaml.Lookup("spec", "scaleTargetRef"))
	if err != nil || ref == nil {
		return nil, err
	}
	if object.Scalar(ref, "kind") != KindDeployment {
		return nil, nil
	}
	if av := object.Scalar(ref, "apiVersion"); av != "" && groupOfAPIVersion(av) != "apps" {
		return nil, nil
	}
	name := object.Scalar(ref, "name")
	for _, c := range comps {
		if c.Name == name && c.Namespace == o.GetNamespace() {
			return c, nil
		}
	}
	return nil, nil
}

const rbacGroup = "rbac.authorization.k8s.io"

type roleRef struct {
	comp            *Component
	namespace, name string
}

// findByBinding returns the gateway a RoleBinding binds, when every subject
// of the binding is that gateway's ServiceAccount. A binding that also binds
// other subjects is not the gateway's: PerRevision reports it, as renaming
// the account would silently drop it from that binding.
func findByBinding(o *yaml.RNode, comps []*Component) (*Component, roleRef, error) {
	subjects, err := bindingSubjects(o)
	if err != nil || len(subjects) == 0 {
		return nil, roleRef{}, err
	}
	var found *Component
	for _, s := range subjects {
		c := componentOfAccount(comps, s)
		if c == nil || (found != nil && found != c) {
			return nil, roleRef{}, nil
		}
		found = c
	}
	ref, err := o.Pipe(yaml.Lookup("roleRef"))
	if err != nil {
		return nil, roleRef{}, fmt.Errorf("%s: roleRef: %w", object.Describe(o), err)
	}
	if object.Scalar(ref, "kind") != KindRole {
		return found, roleRef{}, nil
	}
	return found, roleRef{comp: found, namespace: o.GetNamespace(), name: object.Scalar(ref, "name")}, nil
}

type subject struct {
	kind, namespace, name string
}

// bindingSubjects reads a (Cluster)RoleBinding's subjects; a ServiceAccount
// subject without a namespace is in the binding's namespace.
func bindingSubjects(o *yaml.RNode) ([]subject, error) {
	list, err := o.Pipe(yaml.Lookup("subjects"))
	if err != nil || list == nil {
		return nil, err
	}
	elems, err := list.Elements()
	if err != nil {
		return nil, fmt.Errorf("%s: subjects: %w", object.Describe(o), err)
	}
	out := make([]subject, 0, len(elems))
	for _, e := range elems {
		s := subject{
			kind:      object.Scalar(e, "kind"),
			namespace: object.Scalar(e, "namespace"),
			name:      object.Scalar(e, "name"),
		}
		if s.kind == KindServiceAccount && s.namespace == "" {
			s.namespace = o.GetNamespace()
		}
		out = append(out, s)
	}
	return out, nil
}

func componentOfAccount(comps []*Component, s subject) *Component {
	if s.kind != KindServiceAccount {
		return nil
	}
	for _, c := range comps {
		if c.ServiceAccount != "" && c.ServiceAccount == s.name && c.Namespace == s.namespace {
			return c
		}
	}
	return nil
}

func groupOf(o *yaml.RNode) string { return groupOfAPIVersion(o.GetApiVersion()) }

func groupOfAPIVersion(av string) string {
	if g, _, ok := strings.Cut(av, "/"); ok {
		return g
	}
	return ""
}

func isCoreGroup(o *yaml.RNode) bool { return groupOf(o) == "" }
