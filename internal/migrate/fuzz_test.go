package migrate_test

import (
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/fuzztest"
	"github.com/istio-gitops/istio-gitops/internal/migrate"
)

const migrationHead = `apiVersion: fn.istio-gitops.dev/v1alpha1
kind: RevisionMigration
metadata:
  name: m
`

// FuzzLoad: any bytes read as YAML give, for each document, a migration
// or an error, never a panic; a migration loaded is valid, and reloads to
// the same migration from its JSON form.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"",
		"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: team\n",
		"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: example.com/team\n  owners: [payments, search]\n  exclude: [kube-system]\n  workloads: true\n",
		"spec:\n  from: default\n  to: prod-canary\n  ownerKey: team\n  selector:\n    matchLabels: {env: prod}\n    matchExpressions:\n    - {key: tier, operator: In, values: [web, api]}\n    - {key: legacy, operator: DoesNotExist}\n",
		"spec:\n  from: 1-30\n  to: 1-30\n  ownerKey: team\n",
		"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: istio.io/rev\n",
		"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: team\n  owners: [a, a]\n",
		"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: team\n  selector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}\n",
		"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: team\n  workload: true\n",
		"spec:\n  from: 1-30\n  from: 1-31\n",
		"spec: [a]\n",
		"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: team\n  selector: {matchLabels: {\"\": \"\"}}\n",
	} {
		f.Add([]byte(migrationHead + s))
	}
	f.Add([]byte("- apiVersion: fn.istio-gitops.dev/v1alpha1\n- kind: RevisionMigration\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzztest.Run(t, fuzztest.Limit, nil, func() error {
			return fuzztest.Configs(b, "migrate.yaml", 8, checkLoad)
		})
	})
}

func checkLoad(n *yaml.RNode) error {
	m, _, wrong := fuzztest.CheckLoader(n, migrate.Load, (*migrate.RevisionMigration).Validate)
	if wrong != nil || m == nil {
		return wrong
	}
	// What the run reads of the selector.
	_, _ = m.Selects(map[string]string{"env": "prod", "team": "a"})
	return nil
}
