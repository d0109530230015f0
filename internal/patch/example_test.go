package patch_test

import (
	"fmt"
	"strings"

	"github.com/istio-gitops/istio-gitops/internal/patch"
)

// A user edited 1-31/generated/configmap/istio-1-31.yaml and ran `git diff`
// at the tree root; the pipeline applies the imported patch to the
// revision's files.
func ExampleImport() {
	diff := `diff --git a/1-31/generated/configmap/istio-1-31.yaml b/1-31/generated/configmap/istio-1-31.yaml
--- a/1-31/generated/configmap/istio-1-31.yaml
+++ b/1-31/generated/configmap/istio-1-31.yaml
@@ -2,5 +2,5 @@ apiVersion: v1
 data:
   mesh: |-
     defaultConfig:
-      discoveryAddress: istiod-1-31.istio-system.svc:15012
+      discoveryAddress: istiod.istio-system.svc:15012
     enablePrometheusMerge: true
`
	files := map[string][]byte{"1-31/generated/configmap/istio-1-31.yaml": []byte(`apiVersion: v1
data:
  mesh: |-
    defaultConfig:
      discoveryAddress: istiod-1-31.istio-system.svc:15012
    enablePrometheusMerge: true
kind: ConfigMap
metadata:
  name: istio-1-31
  namespace: istio-system
`)}

	node, err := patch.Import(strings.NewReader(diff), "1-31", "discovery-address")
	if err != nil {
		panic(err)
	}
	b, _ := patch.FileBytes(node)
	fmt.Printf("%s---\n", b)

	p, err := patch.Parse(node)
	if err != nil {
		panic(err)
	}
	changes, err := p.Apply("1-31", files)
	if err != nil {
		panic(err)
	}
	for _, c := range changes {
		if _, err := patch.CheckSameObject(c.Path, files[c.Path], c.Content); err != nil {
			panic(err)
		}
		fmt.Printf("%s:\n%s", c.Path, c.Content)
	}
	// Output:
	// apiVersion: fn.istio-gitops.dev/v1alpha1
	// kind: GitPatch
	// metadata:
	//   name: discovery-address
	//   annotations:
	//     config.kubernetes.io/local-config: 'true'
	// spec:
	//   diff: |
	//     diff --git a/generated/configmap/istio-1-31.yaml b/generated/configmap/istio-1-31.yaml
	//     --- a/generated/configmap/istio-1-31.yaml
	//     +++ b/generated/configmap/istio-1-31.yaml
	//     @@ -2,5 +2,5 @@ apiVersion: v1
	//      data:
	//        mesh: |-
	//          defaultConfig:
	//     -      discoveryAddress: istiod-1-31.istio-system.svc:15012
	//     +      discoveryAddress: istiod.istio-system.svc:15012
	//          enablePrometheusMerge: true
	// ---
	// 1-31/generated/configmap/istio-1-31.yaml:
	// apiVersion: v1
	// data:
	//   mesh: |-
	//     defaultConfig:
	//       discoveryAddress: istiod.istio-system.svc:15012
	//     enablePrometheusMerge: true
	// kind: ConfigMap
	// metadata:
	//   name: istio-1-31
	//   namespace: istio-system
}
