package apiserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// pilotDiscovery is istiod's field manager.
const pilotDiscovery = "pilot-discovery"

// istiodCA is a CA bundle as istiod writes it into its webhooks: a
// self-signed CA certificate, PEM, base64 in JSON.
var istiodCA = func() string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}()

// TestIstiodEdits applies revision 1-30, with a tag, then does to its
// webhook configurations what istiod does at run time, as istiod does it
// (field manager pilot-discovery, a JSON patch, not server-side apply):
// it writes its CA bundle into the injector webhooks of every
// MutatingWebhookConfiguration labelled istio.io/rev=1-30 and into every
// webhook of every ValidatingWebhookConfiguration so labelled, and flips
// the validators' failurePolicy from Ignore to Fail. Then Flux applies the
// same tree again, twice.
//
// With the drift guards (the default) both edits survive and Flux changes
// nothing. Without them Flux resets failurePolicy to Ignore on every
// apply, and istiod flips it back: the fight the guards prevent; after
// each of Flux's applies, Istio resources are admitted unvalidated. (The CA bundle
// survives either way: istioctl's output has none for Flux to own.)
func TestIstiodEdits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		guards bool
	}{{"drift-guards", true}, {"no-drift-guards", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			c := newCluster(srv, false)
			dir, _ := stableTree(t, tc.guards)
			t.Logf("first apply: %s", c.deploy(t, dir).summary())

			// Before istiod is up, the validators refuse Istio resources
			// when they fail closed, and admit them unvalidated when not.
			checkAdmission(t, c, tc.guards)

			ctx := context.Background()
			k := c.ks[rootKustomization[0].name]
			var flipped []string
			for round := 1; round <= 2; round++ {
				flipped = istiodEdits(t, c, "1-30")
				if tc.guards != (len(flipped) == 0) {
					t.Errorf("round %d: istiod flipped failurePolicy of %q", round, flipped)
				}
				checkAdmission(t, c, true)
				res, err := c.flux.Reconcile(ctx, k, build(t, dir, "."))
				if err != nil {
					t.Fatal(err)
				}
				var configured []string
				for _, e := range res.Applied.Entries {
					if e.Action != ssa.UnchangedAction {
						configured = append(configured, describe(e.ObjMetadata)+" "+string(e.Action))
					}
				}
				slices.Sort(configured)
				var want []string
				if !tc.guards {
					for _, f := range flipped {
						want = append(want, f+" "+string(ssa.ConfiguredAction))
					}
				}
				if !slices.Equal(configured, want) {
					t.Errorf("round %d: Flux's apply after istiod's edits changed %q, want %q", round, configured, want)
				}
				for _, w := range srv.Warnings() {
					t.Errorf("the server warned: %s", w)
				}
				wantPolicy := "Fail"
				if !tc.guards {
					wantPolicy = "Ignore"
				}
				checkIstiodEdits(t, c, "1-30", wantPolicy)
				checkAdmission(t, c, tc.guards)
			}
			if !tc.guards {
				t.Logf("without drift guards Flux reset failurePolicy to Ignore on %q, each round", flipped)
			}
		})
	}
}

// checkAdmission creates an Istio Gateway, dry-run: with failurePolicy
// Fail the server refuses it, having found no endpoint of istiod's
// Service to call (there is no istiod); with Ignore it admits it. The
// server's admission reads webhook configurations from an informer, so
// a change takes a moment to count: it tries for up to 10 s.
func checkAdmission(t *testing.T, c *cluster, failClosed bool) {
	t.Helper()
	gw := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": "public", "namespace": "istio-system"},
		"spec": map[string]any{
			"selector": map[string]any{"istio": "ingressgateway"},
			"servers":  []any{map[string]any{"hosts": []any{"*"}, "port": map[string]any{"name": "http", "number": int64(80), "protocol": "HTTP"}}},
		},
	}}
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err = c.srv.Client.Create(context.Background(), gw.DeepCopy(), client.DryRunAll)
		if (err != nil) == failClosed || time.Now().After(deadline) {
			break
		}
	}
	switch {
	case failClosed && err == nil:
		t.Errorf("the server admitted an Istio Gateway with istiod down: its validators must fail closed")
	case failClosed && !strings.Contains(err.Error(), `failed calling webhook "validation.istio.io"`):
		t.Errorf("the server refused the Gateway, but not for want of istiod: %v", err)
	case !failClosed && err != nil:
		t.Errorf("the server refused the Gateway with the validators failing open: %v", err)
	}
}

// webhookConfigurations lists the webhook configurations of kind
// (Mutating or ValidatingWebhookConfiguration) labelled with rev.
func webhookConfigurations(t *testing.T, c *cluster, kind, rev string) *unstructured.UnstructuredList {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("admissionregistration.k8s.io/v1")
	list.SetKind(kind + "List")
	if err := c.srv.Client.List(context.Background(), list, client.MatchingLabels{"istio.io/rev": rev}); err != nil {
		t.Fatal(err)
	}
	return list
}

// istiodEdits does what istiod of rev does to its webhook configurations
// and returns the validators whose failurePolicy it flipped.
func istiodEdits(t *testing.T, c *cluster, rev string) []string {
	t.Helper()
	var flipped []string
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		list := webhookConfigurations(t, c, kind, rev)
		if len(list.Items) == 0 {
			t.Fatalf("no %s labelled istio.io/rev=%s", kind, rev)
		}
		for _, o := range list.Items {
			var ops []map[string]any
			whs, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			flip := false
			for i, w := range whs {
				w := w.(map[string]any)
				if kind == "MutatingWebhookConfiguration" && !strings.HasSuffix(w["name"].(string), "sidecar-injector.istio.io") {
					continue
				}
				ops = append(ops, map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": istiodCA})
				if kind == "ValidatingWebhookConfiguration" && w["failurePolicy"] == "Ignore" {
					ops = append(ops, map[string]any{"op": "replace", "path": fmt.Sprintf("/webhooks/%d/failurePolicy", i), "value": "Fail"})
					flip = true
				}
			}
			if len(ops) == 0 {
				continue
			}
			if flip {
				flipped = append(flipped, kind+"/"+o.GetName())
			}
			patch, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.srv.Client.Patch(context.Background(), &o, client.RawPatch(types.JSONPatchType, patch), client.FieldOwner(pilotDiscovery)); err != nil {
				t.Fatalf("istiod's patch of %s %s: %v", kind, o.GetName(), err)
			}
		}
	}
	slices.Sort(flipped)
	return flipped
}

// checkIstiodEdits: every webhook istiod of rev patches still has its CA
// bundle, owned by pilot-discovery, and every validator has failurePolicy
// policy.
func checkIstiodEdits(t *testing.T, c *cluster, rev, policy string) {
	t.Helper()
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		list := webhookConfigurations(t, c, kind, rev)
		for _, o := range list.Items {
			whs, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for _, w := range whs {
				w := w.(map[string]any)
				name := w["name"].(string)
				if kind == "MutatingWebhookConfiguration" && !strings.HasSuffix(name, "sidecar-injector.istio.io") {
					continue
				}
				if ca, _, _ := unstructured.NestedString(w, "clientConfig", "caBundle"); ca != istiodCA {
					t.Errorf("%s %s webhook %s: istiod's caBundle is gone", kind, o.GetName(), name)
				}
				if kind == "ValidatingWebhookConfiguration" && w["failurePolicy"] != policy {
					t.Errorf("%s %s webhook %s: failurePolicy %v, want %s", kind, o.GetName(), name, w["failurePolicy"], policy)
				}
			}
			if !managedBy(o.GetManagedFields(), pilotDiscovery, "f:caBundle") {
				t.Errorf("%s %s: %s does not own the caBundle it wrote", kind, o.GetName(), pilotDiscovery)
			}
		}
	}
}

// managedBy: manager's Update entry of the managed fields names field.
func managedBy(entries []metav1.ManagedFieldsEntry, manager, field string) bool {
	for _, e := range entries {
		if e.Manager == manager && e.Operation == metav1.ManagedFieldsOperationUpdate && e.FieldsV1 != nil &&
			strings.Contains(string(e.FieldsV1.Raw), field) {
			return true
		}
	}
	return false
}
