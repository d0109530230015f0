// Package nodeagent finds ambient's node agents in a revision's output:
// the ztunnel and istio-cni DaemonSets and everything that belongs to them.
// They run once per node, so they cannot run side by side for two
// revisions: the tree keeps each revision's copy and deploys, for each
// agent, the one spec.nodeAgents.cni and spec.nodeAgents.ztunnel name.
package nodeagent

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Kinds are the kinds a node agent is made of.
var Kinds = []string{"DaemonSet", "ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

// Read are the kinds whose content Find reads: the DaemonSets and the
// bindings. It claims the objects of the other Kinds by reference, by
// identity alone: a reader that streams an output need not hold them for
// Find, only ask the Set about them by their identity.
var Read = []string{"DaemonSet", "ClusterRoleBinding", "RoleBinding"}

// Set is the identities of the node agents' objects, and of the objects
// they refer to (their ServiceAccounts, ConfigMaps and roles), whether or
// not the output holds them: istio-ca-root-cert, which istiod writes at
// run time, is never asked about.
type Set map[object.ID]bool

// Has reports whether o belongs to a node agent.
func Has(s Set, o *yaml.RNode) bool { return s[object.IDOf(o)] }

const rbac = "rbac.authorization.k8s.io"

// Agent is one of the node agents, each moved on its own.
type Agent string

const (
	// CNI is istio-cni's node agent: the DaemonSet that installs the CNI
	// plugin (a container named install-cni, or a name with a "cni"
	// token), with what belongs to it.
	CNI Agent = "cni"
	// Ztunnel is the node proxy, and any other DaemonSet of the output.
	Ztunnel Agent = "ztunnel"
)

// Agents are the node agents in the order Istio upgrades them: istio-cni,
// then ztunnel.
var Agents = []Agent{CNI, Ztunnel}

// String is how messages name the agent.
func (a Agent) String() string {
	if a == CNI {
		return "istio-cni"
	}
	return string(a)
}

// Split tells, for each node agent object among objs, which agent it
// belongs to. An object that belongs to both (a role bound to both
// accounts) goes with istio-cni, which moves first.
func Split(objs []*yaml.RNode) (map[object.ID]Agent, error) {
	cni, err := find(objs, isCNI)
	if err != nil {
		return nil, err
	}
	zt, err := find(objs, func(ds *yaml.RNode) bool { return !isCNI(ds) })
	if err != nil {
		return nil, err
	}
	out := map[object.ID]Agent{}
	for id := range zt {
		out[id] = Ztunnel
	}
	for id := range cni {
		out[id] = CNI
	}
	return out, nil
}

// isCNI reports whether a node agent's DaemonSet is istio-cni's.
func isCNI(ds *yaml.RNode) bool {
	if slices.Contains(strings.Split(ds.GetName(), "-"), "cni") {
		return true
	}
	for _, c := range elements(ds, "spec", "template", "spec", "containers") {
		if object.Scalar(c, "name") == "install-cni" {
			return true
		}
	}
	return false
}

// Find returns the identities of the node agents' objects. A node agent is a
// DaemonSet (istioctl and Istio's charts render only ztunnel and
// istio-cni-node as DaemonSets; gateways are Deployments), found whatever
// its name, with what belongs to it, found by reference:
//   - the ServiceAccount its pods run as,
//   - the ConfigMaps they read (volumes, env and envFrom),
//   - the RoleBindings and ClusterRoleBindings whose every subject is that
//     ServiceAccount, and the Roles and ClusterRoles they bind.
//
// Only the objects of the Read kinds among objs are read; the others are
// claimed by their identity (see Set).
func Find(objs []*yaml.RNode) (Set, error) {
	return find(objs, func(*yaml.RNode) bool { return true })
}

// find is Find for the DaemonSets that agent accepts.
func find(objs []*yaml.RNode, agent func(ds *yaml.RNode) bool) (Set, error) {
	s := Set{}
	type account struct{ namespace, name string }
	var accounts []account
	for _, o := range objs {
		if o.GetKind() != "DaemonSet" || object.GroupOf(o.GetApiVersion()) != "apps" || !agent(o) {
			continue
		}
		s[object.IDOf(o)] = true
		sa := object.Scalar(o, "spec", "template", "spec", "serviceAccountName")
		if sa == "" {
			sa = object.Scalar(o, "spec", "template", "spec", "serviceAccount")
		}
		if sa != "" {
			accounts = append(accounts, account{o.GetNamespace(), sa})
			s[object.ID{Kind: "ServiceAccount", Namespace: o.GetNamespace(), Name: sa}] = true
		}
		names, err := configMapsOf(o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", object.Describe(o), err)
		}
		for _, n := range names {
			s[object.ID{Kind: "ConfigMap", Namespace: o.GetNamespace(), Name: n}] = true
		}
	}
	if len(s) == 0 {
		return s, nil
	}
	isAccount := func(kind, namespace, name string) bool {
		return kind == "ServiceAccount" && slices.Contains(accounts, account{namespace, name})
	}
	for _, o := range objs {
		id := object.IDOf(o)
		switch {
		case id.Group == rbac && (id.Kind == "RoleBinding" || id.Kind == "ClusterRoleBinding"):
			subjects, err := o.Pipe(yaml.Lookup("subjects"))
			if err != nil || subjects == nil || subjects.YNode().Kind != yaml.SequenceNode || len(subjects.Content()) == 0 {
				continue
			}
			all := true
			for _, sub := range subjects.Content() {
				n := yaml.NewRNode(sub)
				ns := object.Scalar(n, "namespace")
				if ns == "" {
					ns = o.GetNamespace()
				}
				all = all && isAccount(object.Scalar(n, "kind"), ns, object.Scalar(n, "name"))
			}
			if !all {
				continue
			}
			s[id] = true
			roleKind := object.Scalar(o, "roleRef", "kind")
			roleNS := ""
			if roleKind == "Role" {
				roleNS = o.GetNamespace()
			}
			s[object.ID{Group: rbac, Kind: roleKind, Namespace: roleNS, Name: object.Scalar(o, "roleRef", "name")}] = true
		}
	}
	return s, nil
}

// configMapsOf lists the ConfigMaps a workload's pods read.
func configMapsOf(o *yaml.RNode) ([]string, error) {
	spec, err := o.Pipe(yaml.Lookup("spec", "template", "spec"))
	if err != nil || spec == nil {
		return nil, err
	}
	var names []string
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, v := range elements(spec, "volumes") {
		add(object.Scalar(v, "configMap", "name"))
		for _, src := range elements(v, "projected", "sources") {
			add(object.Scalar(src, "configMap", "name"))
		}
	}
	for _, list := range []string{"initContainers", "containers"} {
		for _, c := range elements(spec, list) {
			for _, e := range elements(c, "env") {
				add(object.Scalar(e, "valueFrom", "configMapKeyRef", "name"))
			}
			for _, e := range elements(c, "envFrom") {
				add(object.Scalar(e, "configMapRef", "name"))
			}
		}
	}
	return names, nil
}

// elements are the mappings of the list at path under n; nothing when it
// is absent or not a list.
func elements(n *yaml.RNode, path ...string) []*yaml.RNode {
	l, err := n.Pipe(yaml.Lookup(path...))
	if err != nil || l == nil || l.YNode().Kind != yaml.SequenceNode {
		return nil
	}
	var out []*yaml.RNode
	for _, c := range l.Content() {
		if c.Kind == yaml.MappingNode {
			out = append(out, yaml.NewRNode(c))
		}
	}
	return out
}
