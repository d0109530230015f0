package argocd_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/argocd"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// argoConfig is spec.argocd as Default leaves it.
func argoConfig() config.ArgoCD {
	cfg := &config.IstioGitOps{Spec: config.Spec{ArgoCD: &config.ArgoCD{RepoURL: "https://git.example.com/mesh.git", Path: "clusters/prod/istio"}}}
	cfg.Default()
	return *cfg.Spec.ArgoCD
}

// TestApplications: the app-of-apps deploys the root into Argo CD's
// namespace; the children deploy common/ then each revision, in their
// waves, with the resources finalizer.
func TestApplications(t *testing.T) {
	apps, err := argocd.Applications(argoConfig(), "istio-system", []string{"1-30", "1-31"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range apps {
		finalizers, _ := a.GetFieldValue("metadata.finalizers")
		got = append(got, fmt.Sprintf("%s %s wave=%q finalizers=%v", a.GetName(), object.Scalar(a, "spec", "source", "path"),
			a.GetAnnotations()[argocd.SyncWaveAnnotation], finalizers))
	}
	want := []string{
		`istio clusters/prod/istio wave="" finalizers=<nil>`,
		`istio-common clusters/prod/istio/common wave="1" finalizers=[resources-finalizer.argocd.argoproj.io]`,
		`istio-1-30 clusters/prod/istio/1-30 wave="2" finalizers=[resources-finalizer.argocd.argoproj.io]`,
		`istio-1-31 clusters/prod/istio/1-31 wave="2" finalizers=[resources-finalizer.argocd.argoproj.io]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Applications:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestApplicationsErrors(t *testing.T) {
	long := strings.Repeat("r", 57)
	for _, tc := range []struct {
		name      string
		edit      func(a *config.ArgoCD)
		namespace string
		revisions []string
		want      string
	}{
		{"outside the repository", func(a *config.ArgoCD) { a.Path = "../x" }, "istio-system", []string{"1-31"}, `spec.argocd.path: "../x" must stay inside the repository, such as "clusters/prod/istio"`},
		{"no namespace", nil, "", []string{"1-31"}, "spec.namespace: must be the control-plane namespace"},
		{"no revision", nil, "istio-system", nil, "spec.revisions: must list at least one revision"},
		{"revision named like the folder", nil, "istio-system", []string{"argocd"}, `spec.revisions[0].name: "argocd" must not be used: the tree has a folder of that name`},
		{"longest revision", nil, "istio-system", []string{strings.Repeat("r", 57)}, ""},
		{"revision too long for a label", nil, "istio-system", []string{"1-31", long + "r"},
			`spec.revisions[1].name: "` + long + `r" must be at most 57 characters with spec.argocd.name "istio": Application "istio-` + long + `r" is too long for a label value`},
		{"name too long for the revision", func(a *config.ArgoCD) { a.Name = "istio-mesh" }, "istio-system", []string{long},
			`spec.revisions[0].name: "` + long + `" must be at most 52 characters with spec.argocd.name "istio-mesh": Application "istio-mesh-` + long + `" is too long for a label value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := argoConfig()
			if tc.edit != nil {
				tc.edit(&a)
			}
			_, err := argocd.Applications(a, tc.namespace, tc.revisions)
			if got := fmt.Sprint(err); tc.want == "" && err != nil || tc.want != "" && got != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
