package gateway

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

// Env vars istioctl's gateway charts set from the gateway's name; the proxy
// reports them as its workload identity in telemetry.
const (
	envWorkloadName = "ISTIO_META_WORKLOAD_NAME"
	envOwner        = "ISTIO_META_OWNER"
)

// Renamed returns the per-revision name of a gateway object: name-rev. A
// name that already ends in -rev is kept, which makes PerRevision
// idempotent.
func Renamed(name, rev string) string {
	if strings.HasSuffix(name, "-"+rev) {
		return name
	}
	return name + "-" + rev
}

// Original returns the name a per-revision gateway object had in the
// istioctl output, and whether name was renamed for rev.
func Original(name, rev string) (string, bool) {
	return strings.CutSuffix(name, "-"+rev)
}

// PerRevision turns, in place, the gateways of revision rev's objects into
// that revision's blue/green set:
//   - every object of every gateway component is renamed <name>-<rev>
//     (Deployment, Service, HPA, PDB, ServiceAccount, Role, RoleBinding);
//   - every reference follows: the pod template's serviceAccountName, the
//     RoleBinding's roleRef and subjects, the HPA's scaleTargetRef, and the
//     proxy's ISTIO_META_WORKLOAD_NAME and ISTIO_META_OWNER;
//   - istio.io/rev: <rev> is added to the Deployment's selector and pod
//     template labels, the Services' selectors and the PDBs' selectors, so
//     each revision's Deployment, Services and PDBs select only its own pods
//     (two PDBs covering the same pods would block every eviction).
//
// The pods keep their other labels (`istio: ingressgateway`, or the label
// the IstioOperator gave), so one Gateway resource serves every revision's
// set. Objects that are not gateway objects are left alone. Running it again
// on its own output changes nothing.
//
// It fails, changing nothing, when an object outside the gateways refers to
// a gateway object it would rename (a ClusterRoleBinding or shared
// RoleBinding binding a gateway's ServiceAccount, a RoleBinding of a
// gateway Role), when a pod template is pinned to another revision, or when
// a new name would collide with another object or exceed Kubernetes' limits.
func PerRevision(objs []*yaml.RNode, rev string) error {
	if revision.ValidateLabel(rev) != nil {
		return fmt.Errorf("revision %q must be a DNS label such as \"1-31\"", rev)
	}
	comps, err := Find(objs)
	if err != nil {
		return err
	}
	if len(comps) == 0 {
		return nil
	}
	if err := checkForeignRefs(objs, comps); err != nil {
		return err
	}
	// Check everything before editing anything: on error nothing changes.
	taken := map[object.ID]*yaml.RNode{}
	for _, o := range objs {
		if !IsGatewayObject(comps, o) {
			taken[object.IDOf(o)] = o
		}
	}
	for _, c := range comps {
		if v, ok := c.PodLabels[api.RevisionLabel]; ok && v != rev {
			return fmt.Errorf("%s: spec.template.metadata.labels[%q] is %q: it must be the revision %q the gateway is generated for",
				object.Describe(c.Deployment), api.RevisionLabel, v, rev)
		}
		for _, o := range c.Objects {
			id := object.IDOf(o)
			id.Name = Renamed(o.GetName(), rev)
			if prev, ok := taken[id]; ok {
				return fmt.Errorf("%s: renaming it %q must not collide with %s", object.Describe(o), id.Name, object.Describe(prev))
			}
			if err := checkNameLength(o, id.Name); err != nil {
				return err
			}
		}
	}
	for _, c := range comps {
		if err := renameComponent(c, rev); err != nil {
			return err
		}
	}
	return nil
}

// checkNameLength applies the API server's name limits: Service names are
// DNS-1035 labels, the others DNS subdomains.
func checkNameLength(o *yaml.RNode, name string) error {
	limit := 253
	if o.GetKind() == KindService {
		limit = 63
	}
	if len(name) > limit {
		return fmt.Errorf("%s: the per-revision name %q must be at most %d characters: shorten the gateway's name in the IstioOperator", object.Describe(o), name, limit)
	}
	return nil
}

// checkForeignRefs rejects references from non-gateway objects to gateway
// objects PerRevision would rename: they would dangle afterwards.
func checkForeignRefs(objs []*yaml.RNode, comps []Component) error {
	for _, o := range objs {
		if IsGatewayObject(comps, o) {
			continue
		}
		switch {
		case (o.GetKind() == KindRoleBinding || o.GetKind() == "ClusterRoleBinding") && groupOf(o) == rbacGroup:
			subjects, err := bindingSubjects(o)
			if err != nil {
				return err
			}
			for _, s := range subjects {
				if s.kind != KindServiceAccount {
					continue
				}
				for _, c := range comps {
					if c.ServiceAccount != "" && s.name == c.ServiceAccount && s.namespace == c.Namespace {
						return fmt.Errorf("%s: binds ServiceAccount %s/%s of gateway %q, which is renamed per revision: the binding must bind only that account, or gateways must not be per revision",
							object.Describe(o), s.namespace, s.name, c.Name)
					}
				}
			}
			if o.GetKind() == KindRoleBinding && object.Scalar(o, "roleRef", "kind") == KindRole {
				name := object.Scalar(o, "roleRef", "name")
				for _, c := range comps {
					for _, r := range c.ofKind(KindRole) {
						if r.GetName() == name && r.GetNamespace() == o.GetNamespace() {
							return fmt.Errorf("%s: refers to Role %s/%s of gateway %q, which is renamed per revision: the Role must be bound only to the gateway",
								object.Describe(o), r.GetNamespace(), name, c.Name)
						}
					}
				}
			}
		}
	}
	return nil
}

func renameComponent(c Component, rev string) error {
	oldDeploy := c.Name
	newDeploy := Renamed(c.Name, rev)
	roles := map[string]bool{}
	for _, r := range c.ofKind(KindRole) {
		roles[r.GetName()] = true
	}
	for _, o := range c.Objects {
		if err := object.SetString(o, Renamed(o.GetName(), rev), "metadata", "name"); err != nil {
			return fmt.Errorf("%s: %w", object.Describe(o), err)
		}
		var err error
		switch o.GetKind() {
		case KindDeployment:
			err = rewireDeployment(o, c, rev, oldDeploy, newDeploy)
		case KindService:
			err = object.SetString(o, rev, "spec", "selector", api.RevisionLabel)
		case KindPDB:
			err = object.SetString(o, rev, "spec", "selector", "matchLabels", api.RevisionLabel)
		case KindHPA:
			err = object.SetString(o, newDeploy, "spec", "scaleTargetRef", "name")
		case KindRoleBinding:
			err = rewireRoleBinding(o, c, rev, roles)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", object.Describe(o), err)
		}
	}
	return nil
}

func rewireDeployment(d *yaml.RNode, c Component, rev, oldName, newName string) error {
	if err := object.SetString(d, rev, "spec", "selector", "matchLabels", api.RevisionLabel); err != nil {
		return err
	}
	if err := object.SetString(d, rev, "spec", "template", "metadata", "labels", api.RevisionLabel); err != nil {
		return err
	}
	if c.ServiceAccount != "" {
		for _, f := range []string{"serviceAccountName", "serviceAccount"} {
			if object.Scalar(d, "spec", "template", "spec", f) == c.ServiceAccount {
				if err := object.SetString(d, Renamed(c.ServiceAccount, rev), "spec", "template", "spec", f); err != nil {
					return err
				}
			}
		}
	}
	for _, list := range []string{"initContainers", "containers"} {
		containers, err := d.Pipe(yaml.Lookup("spec", "template", "spec", list))
		if err != nil || containers == nil {
			continue
		}
		elems, err := containers.Elements()
		if err != nil {
			return fmt.Errorf("spec.template.spec.%s: %w", list, err)
		}
		for _, ctr := range elems {
			if err := rewireEnv(ctr, oldName, newName); err != nil {
				return fmt.Errorf("spec.template.spec.%s[%s].env: %w", list, object.Scalar(ctr, "name"), err)
			}
		}
	}
	return nil
}

// rewireEnv points the proxy's workload identity at the renamed Deployment,
// so telemetry names the set that served a request.
func rewireEnv(ctr *yaml.RNode, oldName, newName string) error {
	env, err := ctr.Pipe(yaml.Lookup("env"))
	if err != nil || env == nil {
		return err
	}
	elems, err := env.Elements()
	if err != nil {
		return err
	}
	for _, e := range elems {
		v := object.Scalar(e, "value")
		switch object.Scalar(e, "name") {
		case envWorkloadName:
			if v == oldName {
				err = object.SetString(e, newName, "value")
			}
		case envOwner:
			if prefix, ok := strings.CutSuffix(v, "/deployments/"+oldName); ok {
				err = object.SetString(e, prefix+"/deployments/"+newName, "value")
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func rewireRoleBinding(b *yaml.RNode, c Component, rev string, roles map[string]bool) error {
	if object.Scalar(b, "roleRef", "kind") == KindRole && roles[object.Scalar(b, "roleRef", "name")] {
		if err := object.SetString(b, Renamed(object.Scalar(b, "roleRef", "name"), rev), "roleRef", "name"); err != nil {
			return err
		}
	}
	list, err := b.Pipe(yaml.Lookup("subjects"))
	if err != nil || list == nil {
		return err
	}
	elems, err := list.Elements()
	if err != nil {
		return fmt.Errorf("subjects: %w", err)
	}
	for _, s := range elems {
		// Find only gives a gateway the bindings whose every subject is its
		// ServiceAccount.
		if object.Scalar(s, "kind") == KindServiceAccount && object.Scalar(s, "name") == c.ServiceAccount {
			if err := object.SetString(s, Renamed(c.ServiceAccount, rev), "name"); err != nil {
				return err
			}
		}
	}
	return nil
}
