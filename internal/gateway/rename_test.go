package gateway

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// revisionSet is one revision's output, before and after PerRevision.
type revisionSet struct {
	rev           string
	before, after []*yaml.RNode
	comps         []Component // of after
}

func perRevisionSets(t *testing.T, f fixture) []revisionSet {
	t.Helper()
	var out []revisionSet
	for _, rev := range revisions {
		before := f.load(t, rev)
		after := copyAll(before)
		if err := PerRevision(after, rev); err != nil {
			t.Fatalf("PerRevision(%s, %s): %v", f.name, rev, err)
		}
		out = append(out, revisionSet{rev: rev, before: before, after: after, comps: find(t, after)})
	}
	return out
}

func TestPerRevisionGolden(t *testing.T) {
	for _, f := range fixtures {
		for _, s := range perRevisionSets(t, f) {
			golden(t, fmt.Sprintf("%s-%s.yaml", f.name, s.rev), serialize(t, Objects(s.comps)...))
		}
	}
}

func TestPerRevision(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			sets := perRevisionSets(t, f)

			// Before: the two revisions' gateway objects collide, which is
			// what the checks below must catch.
			if !sharesIdentity(t, sets[0].before, sets[1].before) {
				t.Fatal("the unrenamed revisions must collide, or the identity check proves nothing")
			}
			// After: what the two revisions still share is only what
			// classification sends to common/ (CRDs, the reader account...):
			// no gateway object, nothing carrying a revision.
			ids := map[object.ID]bool{}
			for _, o := range sets[1].after {
				ids[object.IDOf(o)] = true
			}
			var shared int
			for _, o := range sets[0].after {
				if !ids[object.IDOf(o)] {
					continue
				}
				shared++
				if isGatewayByLabel(o) || IsGatewayObject(sets[0].comps, o) || hasRevisionToken(o.GetName(), sets[0].rev) {
					t.Errorf("%s %s/%s is in both revisions", o.GetKind(), o.GetNamespace(), o.GetName())
				}
			}
			if shared == 0 {
				t.Error("the revisions share no object at all: the check proves nothing")
			}

			for i, s := range sets {
				other := sets[1-i]
				t.Run(s.rev, func(t *testing.T) {
					checkRenamed(t, f, s)
					checkReferences(t, s)
					checkSelectors(t, s, other)
					checkUntouched(t, s)
				})
			}
		})
	}
}

// sharesIdentity reports whether a gateway object of a has the identity of
// an object of b.
func sharesIdentity(t *testing.T, a, b []*yaml.RNode) bool {
	t.Helper()
	ca := find(t, a)
	for _, o := range Objects(ca) {
		for _, p := range b {
			if object.IDOf(o) == object.IDOf(p) {
				return true
			}
		}
	}
	return false
}

// checkRenamed: every gateway object is renamed <name>-<rev>, carrying the
// revision as a dash-separated token, and nothing else is renamed.
func checkRenamed(t *testing.T, f fixture, s revisionSet) {
	t.Helper()
	var names []string
	for _, c := range s.comps {
		names = append(names, c.Name)
	}
	var want []string
	for _, g := range f.gateways {
		want = append(want, g+"-"+s.rev)
	}
	if !slices.Equal(names, want) {
		t.Errorf("gateways after = %q, want %q", names, want)
	}
	if len(s.before) != len(s.after) {
		t.Fatalf("%d objects before, %d after", len(s.before), len(s.after))
	}
	for i, b := range s.before {
		a := s.after[i]
		if isGatewayByLabel(b) {
			if want := b.GetName() + "-" + s.rev; a.GetName() != want {
				t.Errorf("%s %s renamed %q, want %q", b.GetKind(), b.GetName(), a.GetName(), want)
			}
			if !hasRevisionToken(a.GetName(), s.rev) {
				t.Errorf("%s %s does not carry the revision as a token", a.GetKind(), a.GetName())
			}
			if strings.Contains(a.GetName(), s.rev+"-"+s.rev) {
				t.Errorf("%s %s: doubled suffix", a.GetKind(), a.GetName())
			}
		} else if a.GetName() != b.GetName() {
			t.Errorf("%s %s renamed %q: not a gateway object", b.GetKind(), b.GetName(), a.GetName())
		}
		if a.GetNamespace() != b.GetNamespace() || a.GetKind() != b.GetKind() {
			t.Errorf("%s %s: kind or namespace changed", b.GetKind(), b.GetName())
		}
	}
}

// checkReferences: every reference of a gateway object resolves to an
// object of the same revision, and the proxy's identity names the renamed
// Deployment. It walks the objects istioctl labelled as gateway objects
// rather than what Find returns, so an object Find no longer recognizes
// after renaming (a dangling reference) is still checked.
func checkReferences(t *testing.T, s revisionSet) {
	t.Helper()
	find := func(kind, ns, name string) *yaml.RNode {
		i := slices.IndexFunc(s.after, func(o *yaml.RNode) bool {
			return o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name
		})
		if i < 0 {
			return nil
		}
		return s.after[i]
	}
	// resolves: the reference names a renamed gateway object of the revision.
	resolves := func(kind, ns, name string) bool {
		o := find(kind, ns, name)
		return o != nil && isGatewayByLabel(o) && strings.HasSuffix(name, "-"+s.rev)
	}
	pods := podTemplates(t, s.after)
	var checked int
	for _, o := range s.after {
		if !isGatewayByLabel(o) {
			continue
		}
		checked++
		ns := o.GetNamespace()
		switch o.GetKind() {
		case KindDeployment:
			sa := object.Scalar(o, "spec", "template", "spec", "serviceAccountName")
			if !resolves(KindServiceAccount, ns, sa) {
				t.Errorf("Deployment %s: serviceAccountName %q must name the revision's ServiceAccount", o.GetName(), sa)
			}
			var seen int
			for _, e := range envOf(t, o) {
				switch e[0] {
				case envWorkloadName:
					seen++
					if e[1] != o.GetName() {
						t.Errorf("Deployment %s: %s = %q", o.GetName(), e[0], e[1])
					}
				case envOwner:
					seen++
					if want := "kubernetes://apis/apps/v1/namespaces/" + ns + "/deployments/" + o.GetName(); e[1] != want {
						t.Errorf("Deployment %s: %s = %q, want %q", o.GetName(), e[0], e[1], want)
					}
				}
			}
			if seen != 2 {
				t.Errorf("Deployment %s: %d of the proxy's identity env vars, want 2", o.GetName(), seen)
			}
			if got := selected(t, o, pods); !slices.Equal(got, []string{"Deployment " + o.GetName()}) {
				t.Errorf("Deployment %s selects %q, want only its own pods", o.GetName(), got)
			}
		case KindRoleBinding:
			if r := object.Scalar(o, "roleRef", "name"); !resolves(KindRole, ns, r) {
				t.Errorf("RoleBinding %s: roleRef %q must name the revision's Role", o.GetName(), r)
			}
			subjects, err := bindingSubjects(o)
			if err != nil || len(subjects) == 0 {
				t.Fatalf("RoleBinding %s: subjects %v, %v", o.GetName(), subjects, err)
			}
			for _, sub := range subjects {
				if !resolves(sub.kind, sub.namespace, sub.name) {
					t.Errorf("RoleBinding %s: subject %v must be the revision's ServiceAccount", o.GetName(), sub)
				}
			}
		case KindHPA:
			if n := object.Scalar(o, "spec", "scaleTargetRef", "name"); n != o.GetName() || !resolves(KindDeployment, ns, n) {
				t.Errorf("HorizontalPodAutoscaler %s: scaleTargetRef %q must be the revision's Deployment %q", o.GetName(), n, o.GetName())
			}
		case KindService, KindPDB:
			// The charts name them after their Deployment.
			if got := selected(t, o, pods); !slices.Equal(got, []string{"Deployment " + o.GetName()}) {
				t.Errorf("%s %s selects %q, want only its gateway's pods", o.GetKind(), o.GetName(), got)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no gateway objects checked")
	}
}

func envOf(t *testing.T, d *yaml.RNode) [][2]string {
	t.Helper()
	env, err := d.Pipe(yaml.Lookup("spec", "template", "spec", "containers", "[name=istio-proxy]", "env"))
	if err != nil {
		t.Fatal(err)
	}
	if env == nil {
		return nil
	}
	var out [][2]string
	for _, e := range env.Content() {
		n := yaml.NewRNode(e)
		out = append(out, [2]string{object.Scalar(n, "name"), object.Scalar(n, "value")})
	}
	return out
}

// checkSelectors: no Service, PDB or Deployment of one revision selects a
// pod of the other (the check fails on the unrenamed output), and the pods
// keep the labels Gateway resources select.
func checkSelectors(t *testing.T, s, other revisionSet) {
	t.Helper()
	otherPods := podTemplates(t, other.after)
	for _, o := range s.after {
		switch o.GetKind() {
		case KindService, KindPDB, KindDeployment:
		default:
			continue
		}
		if got := selected(t, o, otherPods); len(got) > 0 {
			t.Errorf("%s %s of %s selects %q of %s", o.GetKind(), o.GetName(), s.rev, got, other.rev)
		}
	}
	// Control: before renaming, the gateway Services do select the other
	// revision's pods.
	beforeComps := find(t, s.before)
	otherBefore := podTemplates(t, other.before)
	for _, c := range beforeComps {
		for _, svc := range c.Services() {
			if len(selected(t, svc, otherBefore)) == 0 {
				t.Errorf("control: unrenamed Service %s should select %s's pods", svc.GetName(), other.rev)
			}
		}
	}

	for i, b := range s.before {
		if !isGatewayByLabel(b) || b.GetKind() != KindDeployment {
			continue
		}
		a := s.after[i]
		before, _ := stringMap(b, "spec", "template", "metadata", "labels")
		after, _ := stringMap(a, "spec", "template", "metadata", "labels")
		want := maps.Clone(before)
		want[api.RevisionLabel] = s.rev
		if !maps.Equal(after, want) {
			t.Errorf("%s: pod labels %v, want %v", a.GetName(), after, want)
		}
		if !maps.Equal(a.GetLabels(), b.GetLabels()) {
			t.Errorf("%s: Deployment labels changed: %v", a.GetName(), a.GetLabels())
		}
		// The labels a Gateway's selector uses stay on the pods.
		if after["istio"] != before["istio"] || after["app"] != before["app"] {
			t.Errorf("%s: Gateway-selecting labels changed", a.GetName())
		}
	}
}

// checkUntouched: objects that are not gateway objects come out byte for
// byte as they went in.
func checkUntouched(t *testing.T, s revisionSet) {
	t.Helper()
	for i, b := range s.before {
		if isGatewayByLabel(b) {
			continue
		}
		if serialize(t, b) != serialize(t, s.after[i]) {
			t.Errorf("%s %s changed", b.GetKind(), b.GetName())
		}
	}
}

func TestPerRevisionIdempotent(t *testing.T) {
	for _, f := range fixtures {
		for _, rev := range revisions {
			objs := f.load(t, rev)
			if err := PerRevision(objs, rev); err != nil {
				t.Fatal(err)
			}
			once := serialize(t, objs...)
			if err := PerRevision(objs, rev); err != nil {
				t.Fatalf("%s/%s: second run: %v", f.name, rev, err)
			}
			if twice := serialize(t, objs...); twice != once {
				t.Errorf("%s/%s: a second run changed the output:\n%s", f.name, rev, lineDiff(once, twice))
			}
		}
	}
}

// Comments and key order of the objects survive: they are edited in place.
func TestPerRevisionKeepsComments(t *testing.T) {
	objs := fixtures[0].load(t, "1-31")
	d := byKindName(objs, KindDeployment, "istio-ingressgateway")
	name, err := d.Pipe(yaml.Lookup("metadata", "name"))
	if err != nil {
		t.Fatal(err)
	}
	name.YNode().LineComment = "# the public gateway"
	sa, err := d.Pipe(yaml.Lookup("spec", "template", "spec", "serviceAccountName"))
	if err != nil {
		t.Fatal(err)
	}
	sa.YNode().LineComment = "# its own account"
	if err := PerRevision(objs, "1-31"); err != nil {
		t.Fatal(err)
	}
	s := serialize(t, d)
	for _, want := range []string{
		"  name: istio-ingressgateway-1-31 # the public gateway\n",
		"      serviceAccountName: istio-ingressgateway-service-account-1-31 # its own account\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestPerRevisionErrors(t *testing.T) {
	tests := []struct {
		name string
		rev  string
		edit func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode
		want string
	}{
		{
			name: "empty revision",
			rev:  "",
			want: `revision "" must be a DNS label`,
		},
		{
			name: "dotted revision",
			rev:  "1.31",
			want: `revision "1.31" must be a DNS label`,
		},
		{
			name: "ClusterRoleBinding of the gateway account",
			rev:  "1-31",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				return append(objs, mustParse(t, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: gateway-reads-nodes
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: node-reader
subjects:
- kind: ServiceAccount
  name: istio-ingressgateway-service-account
  namespace: istio-system
`))
			},
			want: `ClusterRoleBinding gateway-reads-nodes: binds ServiceAccount istio-system/istio-ingressgateway-service-account of gateway "istio-ingressgateway"`,
		},
		{
			name: "RoleBinding sharing the gateway account with another",
			rev:  "1-31",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				b := byKindName(objs, KindRoleBinding, "istio-ingressgateway-sds")
				subjects, err := b.Pipe(yaml.Lookup("subjects"))
				if err != nil {
					t.Fatal(err)
				}
				if err := subjects.PipeE(yaml.Append(yaml.MustParse("{kind: ServiceAccount, name: istiod-1-31, namespace: istio-system}").YNode())); err != nil {
					t.Fatal(err)
				}
				return objs
			},
			want: `RoleBinding istio-system/istio-ingressgateway-sds: binds ServiceAccount istio-system/istio-ingressgateway-service-account of gateway "istio-ingressgateway"`,
		},
		{
			name: "another binding of the gateway Role",
			rev:  "1-31",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				return append(objs, mustParse(t, `
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: istiod-reads-gateway-secrets
  namespace: istio-system
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: istio-ingressgateway-sds
subjects:
- kind: ServiceAccount
  name: istiod-1-31
`))
			},
			want: `RoleBinding istio-system/istiod-reads-gateway-secrets: refers to Role istio-system/istio-ingressgateway-sds of gateway "istio-ingressgateway"`,
		},
		{
			name: "pod template of another revision",
			rev:  "1-30",
			want: `Deployment istio-system/istio-ingressgateway: spec.template.metadata.labels["istio.io/rev"] is "1-31": it must be the revision "1-30"`,
		},
		{
			name: "new name taken",
			rev:  "1-31",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				return append(objs, mustParse(t, `
apiVersion: v1
kind: ServiceAccount
metadata:
  name: istio-ingressgateway-service-account-1-31
  namespace: istio-system
`))
			},
			want: `ServiceAccount istio-system/istio-ingressgateway-service-account: renaming it "istio-ingressgateway-service-account-1-31" must not collide with ServiceAccount istio-system/istio-ingressgateway-service-account-1-31`,
		},
		{
			name: "Service name too long",
			rev:  "1-31-canary-with-a-very-long-name-for-testing-limits",
			edit: func(t *testing.T, objs []*yaml.RNode) []*yaml.RNode {
				d := byKindName(objs, KindDeployment, "istio-ingressgateway")
				if err := object.SetString(d, "1-31-canary-with-a-very-long-name-for-testing-limits", "spec", "template", "metadata", "labels", api.RevisionLabel); err != nil {
					t.Fatal(err)
				}
				return objs
			},
			want: `Service istio-system/istio-ingressgateway: the per-revision name "istio-ingressgateway-1-31-canary-with-a-very-long-name-for-testing-limits" must be at most 63 characters`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Fixture 1-31 throughout: "pod template of another revision"
			// renames it for 1-30.
			objs := fixtures[0].load(t, "1-31")
			// The CRDs only slow the atomicity check down.
			objs = slices.DeleteFunc(objs, func(o *yaml.RNode) bool { return o.GetKind() == "CustomResourceDefinition" })
			if tt.edit != nil {
				objs = tt.edit(t, objs)
			}
			before := serialize(t, objs...)
			err := PerRevision(objs, tt.rev)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("PerRevision error = %v, want %q", err, tt.want)
			}
			if after := serialize(t, objs...); after != before {
				t.Errorf("a failed PerRevision changed the objects:\n%s", lineDiff(before, after))
			}
		})
	}
}
