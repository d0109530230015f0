package config_test

import (
	"errors"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fuzztest"
)

// FuzzLoad: any bytes read as YAML give, for each document, a config or
// an error, never a panic; a config loaded is valid, and reloads to the
// same config from its JSON form.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"",
		"spec:\n  revisions:\n  - name: 1-30\n",
		"spec:\n  revisions: [{name: 1-30}, {name: 1-31, version: 1.31.0, patchesFrom: 1-30}]\n  activeRevision: 1-31\n  tags: {prod-stable: 1-30, prod-canary: 1-31}\n",
		"spec:\n  namespace: istio-system\n  revisions: [{name: 1-30, source: sources/1-30.yaml, allowRemovals: true}]\n  nodeAgents: {revision: 1-30}\n  webhooks: {driftGuards: false}\n",
		"spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways: {live: 1-31, perRevision: true, stableServices: true, ingress: {liveOnlyAnnotations: [a/*], template: {apiVersion: networking.k8s.io/v1, kind: Ingress, metadata: {name: x}, spec: {rules: [{host: a, port: 80, weight: 1.5}]}}}}\n",
		"spec:\n  revisions: [{name: 1-30}]\n  flux: {path: ./x, sourceRef: {kind: GitRepository, name: a, namespace: b}, interval: 1m, timeout: 5m, wait: true, serviceAccountName: sa}\n",
		"spec:\n  revisions: [{name: 1-30}]\n  activeRevision: 1-30\n  activeRevision: 1-31\n",
		"spec:\n  revisions: {name: 1-30}\n",
		"spec:\n  revisions: [{name: default}, {name: 1-31, versoin: x}]\n  activeRevision: 1-29\n  tags: {Bad: 1-31}\n",
		"spec:\n  revisions: [{name: 1-30, source: ../x.yaml}]\n",
		"spec: &s\n  revisions: [{name: 1-30}]\n  tags: *s\n",
		"metadata:\n  labels: [a]\n",
		"spec:\n  revisions: [{name: 1-30}]\n  gateways:\n    ingress:\n      template: {n: .inf, m: 1e400, i: 12345678901234567890}\n",
		"spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: w}, spec: {rules: [{host: \"*.a.b\"}, {host: c.d}]}}\n      hosts: {x.a.b: 1-31, c.d: 1-30}\n      perRevision: {1-31: {annotations: {k: v}, labels: {l: v}}}\n    ingresses:\n    - template: {metadata: {name: i}}\n      hosts: {}\n",
		"spec:\n  revisions: [{name: 1-30}]\n  gateways:\n    ingress:\n      template: {metadata: {annotations: [a]}}\n      perRevision: [a]\n      hosts: {a: [b]}\n    ingresses: [1, {perRevision: {x: 1}}]\n",
	} {
		f.Add([]byte(head + s))
	}
	f.Add([]byte("- apiVersion: v1\n- kind: IstioGitOps\n"))
	f.Add([]byte("apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: IstioGitOps\n---\n" + head + "spec: {revisions: [{name: a}]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzztest.Run(t, fuzztest.Limit, nil, func() error {
			return fuzztest.Configs(b, "istio-gitops.yaml", 8, checkLoad)
		})
	})
}

func checkLoad(n *yaml.RNode) error {
	cfg, err, wrong := fuzztest.CheckLoader(n, config.Load, func(c *config.IstioGitOps) error { return c.Validate().ToAggregate() })
	if wrong != nil || cfg == nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			_ = cerr.Results("istio-gitops.yaml")
		}
		return wrong
	}
	// What the pipeline reads of every config.
	_ = cfg.RevisionNames()
	_ = cfg.Newest()
	_ = cfg.PerRevisionGateways()
	_ = cfg.DriftGuards()
	return nil
}
