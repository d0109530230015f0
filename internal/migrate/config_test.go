package migrate

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

func TestLoad(t *testing.T) {
	m, err := Load(caseConfig(t, "payments-workloads"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.From != "1-30" || m.Spec.To != "1-31" || m.Spec.OwnerKey != "team" || !m.Spec.Workloads ||
		len(m.Spec.Owners) != 1 || m.Spec.Owners[0] != "payments" || len(m.Spec.Selector.MatchExpressions) != 1 {
		t.Errorf("loaded %+v", m.Spec)
	}
	// Default: no selector selects everything.
	m, err = Load(caseConfig(t, "all"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Selects(map[string]string{"a": "b"}); m.Spec.Selector == nil || len(m.Spec.Selector.MatchLabels)+len(m.Spec.Selector.MatchExpressions) != 0 || !ok || err != nil {
		t.Errorf("default selector %+v must exist and match everything (%v)", m.Spec.Selector, err)
	}
}

func TestLoadErrors(t *testing.T) {
	const head = "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: RevisionMigration\nmetadata:\n  name: m\n"
	const ok = "spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: team\n"
	for _, tc := range []struct {
		name, doc, err string
	}{
		{"unknown spec field", head + ok + "  workload: true\n", `RevisionMigration "m": spec.workload: unknown field`},
		{"unknown top field", head + ok + "status: {}\n", `status: unknown field`},
		{"wrong type", head + ok + "  workloads: yes please\n", `RevisionMigration "m"`},
		{"apiVersion", strings.Replace(head, "v1alpha1", "v1", 1) + ok, `apiVersion: "fn.istio-gitops.dev/v1" must be "fn.istio-gitops.dev/v1alpha1"`},
		{"kind", strings.Replace(head, "RevisionMigration", "Migration", 1) + ok, `kind: "Migration" must be "RevisionMigration"`},
		{"no from", head + "spec:\n  to: 1-31\n  ownerKey: team\n", "spec.from: must name a revision or a revision tag"},
		{"no to", head + "spec:\n  from: 1-30\n  ownerKey: team\n", "spec.to: must name a revision or a revision tag"},
		{"dotted from", head + "spec:\n  from: \"1.30\"\n  to: 1-31\n  ownerKey: team\n", `spec.from: "1.30" must be a revision or tag name`},
		{"same", head + "spec:\n  from: 1-31\n  to: 1-31\n  ownerKey: team\n", `spec.to: "1-31" must differ from spec.from`},
		{"no ownerKey", head + "spec:\n  from: 1-30\n  to: 1-31\n", "spec.ownerKey: must be a label or annotation key"},
		{"bad ownerKey", head + "spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: -team\n", `spec.ownerKey: "-team" must be a label or annotation key`},
		{"bad ownerKey prefix", head + "spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: Example.com/team\n", `spec.ownerKey: "Example.com/team" must have a DNS subdomain as prefix`},
		{"ownerKey is the revision label", head + "spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: istio.io/rev\n", `spec.ownerKey: "istio.io/rev" must not be a label this migration changes`},
		{"empty owner", head + ok + "  owners: [a, \"\"]\n", "spec.owners[1]: must not be empty"},
		{"duplicate owner", head + ok + "  owners: [a, b, a]\n", `spec.owners[2]: "a" must be unique, spec.owners[0] has it too`},
		{"bad exclude", head + ok + "  exclude: [kube-system, Kube_Public]\n", `spec.exclude[1]: "Kube_Public" must be a namespace name`},
		{"duplicate exclude", head + ok + "  exclude: [a, a]\n", `spec.exclude[1]: "a" must be unique`},
		{"bad matchLabels key", head + ok + "  selector:\n    matchLabels:\n      \"a b\": x\n", `spec.selector.matchLabels["a b"]: "a b" must be a label or annotation key`},
		{"bad matchLabels value", head + ok + "  selector:\n    matchLabels:\n      env: \"pr od\"\n", `spec.selector.matchLabels["env"]: "pr od" must be a label value`},
		{"bad operator", head + ok + "  selector:\n    matchExpressions:\n    - {key: env, operator: Equals, values: [prod]}\n", `spec.selector.matchExpressions[0].operator: "Equals" must be In, NotIn, Exists or DoesNotExist`},
		{"In without values", head + ok + "  selector:\n    matchExpressions:\n    - {key: env, operator: In}\n", "spec.selector.matchExpressions[0].values: must not be empty for operator In"},
		{"Exists with values", head + ok + "  selector:\n    matchExpressions:\n    - {key: env, operator: Exists, values: [x]}\n", "spec.selector.matchExpressions[0].values: must be empty for operator Exists"},
		{"unknown selector field", head + ok + "  selector:\n    matchLabel: {env: prod}\n", `spec.selector.matchLabel: unknown field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(yaml.MustParse(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
	if _, err := Load(nil); err == nil || !strings.Contains(err.Error(), "no function config") {
		t.Errorf("nil config: %v", err)
	}
}

func TestSelector(t *testing.T) {
	m := &RevisionMigration{Spec: Spec{Selector: &metav1.LabelSelector{
		MatchLabels: map[string]string{"env": "prod"},
		MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: "In", Values: []string{"a", "b"}},
			{Key: "legacy", Operator: "DoesNotExist"},
			{Key: "team", Operator: "Exists"},
			{Key: "zone", Operator: "NotIn", Values: []string{"eu"}},
		},
	}}}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"env": "prod", "tier": "a", "team": "x"}, true},
		{map[string]string{"env": "prod", "tier": "b", "team": "x", "zone": "us"}, true},
		{map[string]string{"env": "dev", "tier": "a", "team": "x"}, false},
		{map[string]string{"env": "prod", "tier": "c", "team": "x"}, false},
		{map[string]string{"env": "prod", "tier": "a", "team": "x", "legacy": ""}, false},
		{map[string]string{"env": "prod", "tier": "a"}, false},
		{map[string]string{"env": "prod", "tier": "a", "team": "x", "zone": "eu"}, false},
	} {
		if got, err := m.Selects(tc.labels); got != tc.want || err != nil {
			t.Errorf("Selects(%v) = %v, %v, want %v", tc.labels, got, err, tc.want)
		}
	}
}
