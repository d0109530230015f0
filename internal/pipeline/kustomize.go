package pipeline

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/argocd"
	"github.com/istio-gitops/istio-gitops/internal/disk"
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

// warnHandEdits warns when a kustomization the run owns, the root's as
// much as a folder's, held what the run does not write: fields other than
// resources, or resources listed by hand (in the tree, or remote, or
// outside it); each is named. One left with Git conflict markers is said
// so, with what either side added by hand: the run writes the file whole,
// which resolves the conflict.
func warnHandEdits(t *tree, dir string, now *fileset.File, resources []string, out fileset.Set, res *results) error {
	old := t.kustomizations[dir]
	if old == nil {
		return nil
	}
	b, err := old.Bytes()
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, f := range out {
		if p, ok := t.rel(f.Path); ok {
			for d := p; d != "." && d != "" && d != "/"; d = path.Dir(d) {
				exists[d] = true
			}
		}
	}
	if line := conflictLine(b); line > 0 {
		var e handEdits
		for _, side := range conflictSides(b) {
			if k, err := yaml.Parse(string(side)); err == nil && k.YNode().Kind == yaml.MappingNode {
				e.add(k, dir, resources, exists)
			}
		}
		msg := fmt.Sprintf("replaced a kustomization.yaml left with Git conflict markers (line %d): the run owns this file and writes it whole, which resolves the conflict", line)
		if what := e.String(); what != "" {
			msg += "; dropped what a side of the merge added by hand: " + what
		}
		res.warn(nil, now.Path, msg)
		return nil
	}
	objs, err := old.Objects()
	var ce *disk.ConflictError
	if errors.As(err, &ce) {
		ce.Advice = "it is derived, and this run wrote it anew from the tree: git add it"
		res.warn(nil, old.Path, "replaced: "+ce.Error())
		return nil
	}
	if err != nil || len(objs) != 1 {
		res.warn(nil, old.Path, "replaced: the kustomization.yaml the run owns did not hold one Kustomization")
		return nil
	}
	var e handEdits
	e.add(objs[0], dir, resources, exists)
	if what := e.String(); what != "" {
		res.warn(nil, now.Path, fmt.Sprintf("replaced a kustomization.yaml edited by hand: %s dropped; the run owns this file (put your own kustomization in a folder of yours)", what))
	}
	return nil
}

// handEdits are what kustomizations held that the run does not write.
type handEdits struct {
	fields, resources []string
}

// add notes what k holds beyond the run's fields and resources: other
// fields, and resources the run no longer lists, unless a resource is a
// path in the tree that names nothing any more (the run's own, gone with
// a retired revision or a removed file).
func (e *handEdits) add(k *yaml.RNode, dir string, resources []string, exists map[string]bool) {
	c := k.YNode().Content
	for i := 0; i+1 < len(c); i += 2 {
		switch f := c[i].Value; f {
		case "apiVersion", "kind", "resources", "metadata":
		default:
			e.fields = append(e.fields, f)
		}
	}
	list := k.Field("resources")
	if list == nil || list.Value.YNode().Kind != yaml.SequenceNode {
		return
	}
	for _, n := range list.Value.YNode().Content {
		r := n.Value
		if n.Kind != yaml.ScalarNode || slices.Contains(resources, r) {
			continue
		}
		if local(dir, r) && !exists[path.Join(dir, r)] {
			continue
		}
		e.resources = append(e.resources, r)
	}
}

func (e *handEdits) String() string {
	var what []string
	if f := uniqSorted(e.fields); len(f) > 0 {
		what = append(what, fmt.Sprintf("fields %q", f))
	}
	if r := uniqSorted(e.resources); len(r) > 0 {
		what = append(what, fmt.Sprintf("resources %q", r))
	}
	return strings.Join(what, " and ")
}

// local reports whether a kustomization's resource names a path inside the
// tree, as the run's own do: not a remote base, not outside the tree.
func local(dir, r string) bool {
	if r == "" || path.IsAbs(r) || strings.Contains(r, "://") || strings.Contains(r, "//") || strings.Contains(r, "?") || strings.HasPrefix(r, "git@") {
		return false
	}
	p := path.Join(dir, r)
	return p != ".." && !strings.HasPrefix(p, "../")
}

// conflictLine is the line of the first Git conflict marker in b, 0 when
// there is none.
func conflictLine(b []byte) int {
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "<<<<<<<") {
			return i + 1
		}
	}
	return 0
}

// conflictSides are the two sides of a file with Git conflict markers:
// the lines outside the conflicts, with each conflict's first side, then
// with its second (the common ancestor of a diff3 conflict is left out).
func conflictSides(b []byte) [2][]byte {
	var sides [2][]byte
	in := -1 // the side being read within a conflict; -1 outside, 2 the ancestor
	for line := range strings.Lines(string(b)) {
		switch {
		case strings.HasPrefix(line, "<<<<<<<"):
			in = 0
			continue
		case strings.HasPrefix(line, "|||||||") && in == 0:
			in = 2
			continue
		case strings.HasPrefix(line, "=======") && in >= 0:
			in = 1
			continue
		case strings.HasPrefix(line, ">>>>>>>") && in >= 0:
			in = -1
			continue
		}
		for s := range sides {
			if in == -1 || in == s {
				sides[s] = append(sides[s], line...)
			}
		}
	}
	return sides
}

func uniqSorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
