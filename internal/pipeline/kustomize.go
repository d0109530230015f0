package pipeline

import (
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/kustomization"
	"github.com/istio-gitops/istio-gitops/internal/layout"
)

// kustomizations writes one per folder: the root lists common/ and each
// revision folder, then the user's deployable files at the root; common/
// and each revision list their object files and the user's deployable
// files; flux/ lists the Flux Kustomizations.
func (r *run) kustomizations() error {
	files := map[string][]string{}
	revs := r.cfg.RevisionNames()
	folder := map[string]bool{layout.Common: true}
	for _, rev := range revs {
		folder[rev] = true
	}
	for _, o := range r.out {
		p, _ := r.rel(o)
		if !deployable(o) {
			continue
		}
		top, rest, nested := strings.Cut(p, "/")
		switch {
		case !nested:
			files[""] = append(files[""], p)
		case folder[top] || top == layout.Flux && r.cfg.Spec.Flux != nil:
			files[top] = append(files[top], rest)
		}
	}
	root := append([]string{layout.Common}, revs...)
	emit := func(dir string, resources []string) error {
		k, err := kustomization.New(resources)
		if err != nil {
			return err
		}
		if err := krm.SetPath(k, r.abs(path.Join(dir, layout.Kustomization))); err != nil {
			return err
		}
		r.out = append(r.out, k)
		return nil
	}
	if err := emit("", append(slices.Clone(root), uniqSorted(files[""])...)); err != nil {
		return err
	}
	for _, f := range root {
		if err := emit(f, uniqSorted(files[f])); err != nil {
			return err
		}
	}
	if r.cfg.Spec.Flux != nil {
		return emit(layout.Flux, uniqSorted(files[layout.Flux]))
	}
	return nil
}

// deployable reports whether a kustomization lists the object: not the
// function's configs and records, not the user's IstioOperator, not
// local-config.
func deployable(o *yaml.RNode) bool {
	group, _, _ := strings.Cut(o.GetApiVersion(), "/")
	switch {
	case krm.IsLocalConfig(o):
		return false
	case group == api.Group, group == "install.istio.io", group == "kpt.dev":
		return false
	case kustomization.Is(o):
		return false
	}
	return true
}

func uniqSorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
