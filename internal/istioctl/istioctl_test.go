package istioctl_test

import (
	"os"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/istio-gitops/istio-gitops/internal/istioctl"
)

func TestImageVersion(t *testing.T) {
	for image, want := range map[string]string{
		"docker.io/istio/pilot:1.31.0":                    "1.31.0",
		"gcr.io/istio-release/pilot:1.30.2-distroless":    "1.30.2",
		"registry:5000/istio/pilot:1.29.1@sha256:abcdef0": "1.29.1",
		"registry:5000/istio/pilot":                       "",
		"istio/pilot:latest":                              "",
		"istio/pilot:v1.31":                               "1.31",
		"localhost:5000/pilot:1.31.0.1-custom":            "1.31.0",
		"docker.io/istio/pilot@sha256:abcdef0":            "",
		"pilot:1":                                         "",
	} {
		got, ok := istioctl.ImageVersion(image)
		if got != want || ok != (want != "") {
			t.Errorf("ImageVersion(%q) = %q, %v; want %q", image, got, ok, want)
		}
	}
}

// TestVersion reads the version of each real fixture from its istiod
// image.
func TestVersion(t *testing.T) {
	for file, want := range map[string]string{
		"../../testdata/istioctl/1-30/default.yaml":  "1.30.2",
		"../../testdata/istioctl/1-31/demo.yaml":     "1.31.0",
		"../../testdata/istioctl/norev/default.yaml": "1.31.0",
	} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := (&kio.ByteReader{Reader: f}).Read()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := istioctl.Check(file, objs); err != nil {
			t.Errorf("real output fails the check: %v", err)
		}
		if got, _ := istioctl.Version(objs); got != want {
			t.Errorf("%s: version %q, want %q", file, got, want)
		}
	}
}
