package migrate_test

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/migrate"
)

// A RevisionMigration run over two Namespaces of the payments team: the one
// on 1-30 moves, the one that opted out of injection is left alone.
func ExampleProcessor() {
	items, err := (&kio.ByteReader{OmitReaderAnnotations: true, Reader: strings.NewReader(`
apiVersion: v1
kind: Namespace
metadata:
  name: payments-api
  labels:
    team: payments
    istio.io/rev: 1-30 # canary since March
---
apiVersion: v1
kind: Namespace
metadata:
  name: payments-batch
  labels:
    team: payments
    istio-injection: disabled
`)}).Read()
	if err != nil {
		panic(err)
	}
	cfg := yaml.MustParse(`
apiVersion: fn.istio-gitops.dev/v1alpha1
kind: RevisionMigration
metadata:
  name: to-1-31
spec:
  from: 1-30
  to: 1-31
  ownerKey: team
  owners: [payments]
`)
	p := &migrate.Processor{}
	rl := &framework.ResourceList{Items: items, FunctionConfig: cfg}
	if err := p.Process(rl); err != nil {
		panic(err)
	}
	for _, r := range rl.Results {
		fmt.Println(r.Severity, r.Message)
	}
	fmt.Println(items[0].MustString())
	n, _ := p.Report.Moved()
	fmt.Println("moved:", n)
	// Output:
	// info RevisionMigration "to-1-31": "1-31" could not be checked against the mesh: the input holds no IstioGitOps config
	// info Namespace payments-api (team=payments): istio.io/rev=1-30 -> istio.io/rev=1-31
	// info Namespace payments-batch (team=payments): left alone: istio-injection=disabled is never touched
	// apiVersion: v1
	// kind: Namespace
	// metadata:
	//   name: payments-api
	//   labels:
	//     team: payments
	//     istio.io/rev: 1-31 # canary since March
	//
	// moved: 1
}
