package pipeline

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/argocd"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/kustomization"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// kustomizations adds a kustomization.yaml per folder to the tree: common/
// and each revision list their deployable files (their records, kept node
// agents, patches and configs apart); the root lists common/, each
// revision and the user's deployable files at the root; with spec.flux the
// root lists flux/ instead of the folders its Kustomizations deploy, so
// one Flux Kustomization pointed at the root deploys the root's files and,
// through the Flux objects, everything else in order. spec.argocd does the
// same with argocd/, whose kustomization lists the Applications of common/
// and the revisions (the app-of-apps, which deploys the root, is not).
func kustomizations(t *tree, out fileset.Set, res *results) (fileset.Set, error) {
	revs := t.cfg.RevisionNames()
	folders := append([]string{layout.Common}, revs...)
	isFolder := map[string]bool{}
	for _, f := range folders {
		isFolder[f] = true
	}
	// The folders of the objects that deploy the tree, listed at the root
	// instead of the folders they deploy.
	var deployers []string
	if t.cfg.Spec.Flux != nil {
		deployers = append(deployers, layout.Flux)
	}
	if t.cfg.Spec.ArgoCD != nil {
		deployers = append(deployers, layout.ArgoCD)
	}
	files := map[string][]string{}
	for _, f := range out {
		p, in := t.rel(f.Path)
		if !in || f.Path == "" {
			continue
		}
		ok, err := deployable(t, f, p, res)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		top, rest, nested := strings.Cut(p, "/")
		switch {
		case !nested:
			files[""] = append(files[""], p)
		case isFolder[top] || slices.Contains(deployers, top):
			files[top] = append(files[top], rest)
		}
	}
	root := slices.Clone(folders)
	if len(deployers) > 0 {
		root = deployers
	}
	emit := func(dir string, resources []string) error {
		k, err := kustomization.New(resources)
		if err != nil {
			return err
		}
		p := path.Join(dir, layout.Kustomization)
		f, err := newFile(t, p, k)
		if err != nil {
			return err
		}
		if err := warnHandEdits(t, dir, f, resources, out, res); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	}
	if err := emit("", append(root, uniqSorted(files[""])...)); err != nil {
		return nil, err
	}
	for _, f := range folders {
		if err := emit(f, uniqSorted(files[f])); err != nil {
			return nil, err
		}
	}
	for _, d := range deployers {
		if err := emit(d, uniqSorted(files[d])); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deployable reports whether a kustomization lists the file: the
// function's generated and rendered files are; its records, the kept node
// agents and kustomizations are not; a user's file is when one of its
// objects is deployable (not local-config, not a config of ours, not an
// IstioOperator or a kpt object). A document that is not a Kubernetes
// object (no apiVersion or kind) is not listed, with a warning: kustomize
// build would refuse it.
func deployable(t *tree, f *fileset.File, p string, res *results) (bool, error) {
	parts := strings.Split(p, "/")
	base := parts[len(parts)-1]
	switch {
	case base == layout.Kustomization:
		return false, nil
	case len(parts) >= 3 && parts[1] == layout.Generated:
		return base != layout.StateFile && parts[2] != appliedDir && parts[2] != nodeAgentsDir, nil
	case len(parts) >= 3 && parts[0] == layout.Common:
		return true, nil
	case len(parts) == 2 && parts[0] == layout.Common && base == layout.StateFile:
		return false, nil
	case len(parts) == 2 && parts[0] == layout.ArgoCD && base == argocd.AppOfAppsFile:
		// The app-of-apps deploys the root: listed, it would deploy itself.
		return false, nil
	}
	objs, err := f.Objects()
	if err != nil {
		return false, err
	}
	listed := false
	for _, o := range objs {
		group, _, _ := strings.Cut(o.GetApiVersion(), "/")
		switch {
		case o.GetApiVersion() == "" || o.GetKind() == "":
			res.warn(nil, f.Path, "not listed in a kustomization: it is not a Kubernetes object (no apiVersion or kind), and kustomize build would refuse it; list it in .krmignore to silence this")
			return false, nil
		case object.IsLocalConfig(o), group == api.Group, group == "install.istio.io", group == "kpt.dev":
		case o.GetKind() == "Kustomization" && (group == "kustomize.config.k8s.io" || o.GetApiVersion() == ""):
		default:
			listed = true
		}
	}
	return listed, nil
}

// warnHandEdits warns when a kustomization the run owns held what the run
// does not write: fields other than resources, or resources listed by hand.
func warnHandEdits(t *tree, dir string, now *fileset.File, resources []string, out fileset.Set, res *results) error {
	old := t.kustomizations[dir]
	if old == nil {
		return nil
	}
	objs, err := old.Objects()
	if err != nil || len(objs) != 1 {
		res.warn(nil, old.Path, "replaced: the kustomization.yaml the run owns did not hold one Kustomization")
		return nil
	}
	k := objs[0]
	var extra []string
	fields, err := k.Fields()
	if err != nil {
		return err
	}
	for _, f := range fields {
		switch f {
		case "apiVersion", "kind", "resources", "metadata":
		default:
			extra = append(extra, f)
		}
	}
	var dropped []string
	if list, err := k.Pipe(yaml.Lookup("resources")); err == nil && list != nil && list.YNode().Kind == yaml.SequenceNode {
		exists := map[string]bool{}
		for _, f := range out {
			if p, ok := t.rel(f.Path); ok {
				for d := p; d != "." && d != ""; d = path.Dir(d) {
					exists[d] = true
				}
			}
		}
		for _, e := range list.Content() {
			r := e.Value
			if !slices.Contains(resources, r) && exists[path.Join(dir, r)] {
				dropped = append(dropped, r)
			}
		}
	}
	if len(extra) == 0 && len(dropped) == 0 {
		return nil
	}
	var what []string
	if len(extra) > 0 {
		what = append(what, fmt.Sprintf("fields %q", extra))
	}
	if len(dropped) > 0 {
		what = append(what, fmt.Sprintf("resources %q", dropped))
	}
	res.warn(nil, now.Path, fmt.Sprintf("replaced a kustomization.yaml edited by hand: %s dropped; the run owns this file (put your own kustomization in a folder of yours)", strings.Join(what, " and ")))
	return nil
}

func uniqSorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
