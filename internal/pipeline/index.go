package pipeline

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/patch"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// Folder and file names the index knows besides layout's.
const (
	// nodeAgentsDir holds a revision's node agents inside generated/:
	// kept with the revision, deployed from common/ only for
	// spec.nodeAgents.revision. A kind's folder never has a dash.
	nodeAgentsDir = "node-agents"
	// appliedDir holds the records of patches applied to a revision that
	// was not regenerated.
	appliedDir = "applied-patches"
)

// tree is a run's input sorted by owner: the index stage's output. Paths
// in it are relative to the tree root (the folder of the IstioGitOps
// config); files keep their run-relative paths.
type tree struct {
	cfg *config.IstioGitOps
	// root is the run-relative folder of the config ("" for the run root).
	root string
	// cfgFile is the config's file, relative to the tree root ("" when it
	// was given only as functionConfig).
	cfgFile string

	// outside are files beyond the tree root, and items without a file;
	// the run passes them through untouched.
	outside, noPath []*fileset.File
	// user are files of the tree the function does not own.
	user []*fileset.File
	// sources are the revisions' fresh istioctl output, by revision.
	sources map[string]*fileset.File
	// revisions are the listed revisions' folders as read.
	revisions map[string]*folder
	// common is common/ as read.
	common *folder
	// deployers are flux/'s and argocd/'s files other than their
	// kustomizations.
	deployers []*fileset.File
	// kustomizations are the kustomization.yaml files the run owns, by
	// folder ("" for the root).
	kustomizations map[string]*fileset.File
	// patches are each listed revision's GitPatch files.
	patches map[string][]*fileset.File
	// retired are the files of revision folders no longer listed.
	retired map[string][]*fileset.File
	// rendered names the config field each file the last run rendered
	// was rendered from, by run-relative path (set by the check stage).
	rendered map[string]string
	// all are the run's files; shared the GitPatches of spec.patchesFrom.
	all    fileset.Set
	shared []gitPatch
}

// folder is a folder of generated files: a revision's generated/ or the
// function's part of common/.
type folder struct {
	name string
	// files are the generated files, by path relative to the folder of the
	// revision (generated/...) or to common/.
	files map[string]*fileset.File
	// recordFile is the folder's record and record its content; nil when
	// the tree has none yet.
	recordFile *fileset.File
	record     *state.State
	// applied are the records of patches applied since the revision was
	// generated, by patch name, with their files.
	applied      map[string]*state.Applied
	appliedFiles map[string]*fileset.File
}

func newFolder(name string) *folder {
	return &folder{name: name, files: map[string]*fileset.File{}, applied: map[string]*state.Applied{}, appliedFiles: map[string]*fileset.File{}}
}

// paths lists the folder's generated files, sorted.
func (f *folder) paths() []string { return config.SortedKeys(f.files) }

// rel is a file's path relative to the tree root, and whether it is in the
// tree at all.
func (t *tree) rel(p string) (string, bool) {
	if t.root == "" {
		return p, p != ""
	}
	r, ok := strings.CutPrefix(p, t.root+"/")
	return r, ok
}

// runPath is the run-relative path of a tree path: what messages name and
// files are written to.
func (t *tree) runPath(p string) string {
	if t.root == "" {
		return p
	}
	return path.Join(t.root, p)
}

// index sorts the run's files by owner, by their paths alone where paths
// say enough, so that files the run keeps are never parsed.
func index(cfg *config.IstioGitOps, in fileset.Set) (*tree, error) {
	t := &tree{
		cfg:            cfg,
		sources:        map[string]*fileset.File{},
		revisions:      map[string]*folder{},
		common:         newFolder(layout.Common),
		kustomizations: map[string]*fileset.File{},
		patches:        map[string][]*fileset.File{},
		retired:        map[string][]*fileset.File{},
		all:            in,
	}
	if err := t.findRoot(cfg.Node, in); err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	bySource := map[string]string{}
	for i, r := range cfg.Spec.Revisions {
		if r.Source == t.cfgFile && t.cfgFile != "" {
			return nil, fmt.Errorf("spec.revisions[%d].source: %q must not be the config itself: the run deletes its source once read", i, r.Source)
		}
		listed[r.Name] = true
		bySource[r.Source] = r.Name
		t.revisions[r.Name] = newFolder(r.Name)
	}
	// A folder that is not listed but holds a revision record is a
	// revision being retired.
	retiring := map[string]bool{}
	for _, f := range in {
		if p, ok := t.rel(f.Path); ok {
			if parts := strings.Split(p, "/"); len(parts) == 3 && parts[1] == layout.Generated && parts[2] == layout.StateFile && !listed[parts[0]] {
				retiring[parts[0]] = true
			}
		}
	}
	for _, f := range in {
		if f.Path == "" {
			t.noPath = append(t.noPath, f)
			continue
		}
		p, in := t.rel(f.Path)
		if !in {
			t.outside = append(t.outside, f)
			continue
		}
		if p == t.cfgFile {
			t.user = append(t.user, f)
			continue
		}
		if rev, ok := bySource[p]; ok {
			t.sources[rev] = f
			continue
		}
		parts := strings.Split(p, "/")
		top, n := parts[0], len(parts)
		switch {
		case retiring[top] && n > 1:
			t.retired[top] = append(t.retired[top], f)
		case path.Base(p) == config.SourceFile:
			return nil, fmt.Errorf("%s: istioctl output for a revision that spec.revisions does not list: spec.revisions[].source must name it (sources: %q)",
				f.Path, config.SortedKeys(bySource))
		case parts[n-1] == layout.Kustomization && (n == 1 || n == 2 && (top == layout.Common || isDeployerFolder(top) || listed[top])):
			t.kustomizations[folderOf(p)] = f
		case isDeployerFolder(top) && n == 2:
			t.deployers = append(t.deployers, f)
		case top == layout.Common && n == 2 && parts[1] == layout.StateFile:
			t.common.recordFile = f
		case top == layout.Common && n >= 3:
			t.common.files[strings.TrimPrefix(p, layout.Common+"/")] = f
		case listed[top] && n == 3 && parts[1] == layout.Generated && parts[2] == layout.StateFile:
			t.revisions[top].recordFile = f
		case listed[top] && n == 4 && parts[1] == layout.Generated && parts[2] == appliedDir:
			t.revisions[top].appliedFiles[strings.TrimSuffix(parts[3], ".yaml")] = f
		case listed[top] && n >= 3 && parts[1] == layout.Generated:
			t.revisions[top].files[strings.TrimPrefix(p, top+"/")] = f
		case listed[top] && n == 3 && parts[1] == layout.Patches:
			t.patches[top] = append(t.patches[top], f)
			t.user = append(t.user, f)
		default:
			t.user = append(t.user, f)
		}
	}
	if err := t.readRecords(); err != nil {
		return t, err
	}
	return t, t.checkUserFiles()
}

// advise words the error of a file holding merge-conflict markers for the
// file: one the run writes is derived (take either side, run again), one
// of the user's is theirs to resolve.
func (t *tree) advise(err error) (_ error) {
	var ce *disk.ConflictError
	if !errors.As(err, &ce) || ce.Advice != "" {
		return err
	}
	// A message that wraps the error holds its text already: the text is
	// replaced.
	said := ce.Error()
	defer func() {
		if ce.Advice != "" {
			err = &advised{msg: strings.Replace(err.Error(), said, ce.Error(), 1), err: err}
		}
	}()
	p, in := t.rel(ce.Path)
	if !in {
		return err
	}
	ce.Advice = disk.Yours
	parts := strings.Split(p, "/")
	top, n := parts[0], len(parts)
	_, listed := t.cfg.Revision(top)
	_, retiring := t.retired[top]
	switch {
	case p == t.cfgFile:
		ce.Advice = disk.Yours + "; it is the function config: where the two sides moved different pointers, keep both moves"
	// common/<kind>/ and its record are the run's; a file at the top of
	// common/ is the user's own object.
	case top == layout.Common && (n >= 3 || n == 2 && parts[1] == layout.StateFile),
		(top == layout.Flux || top == layout.ArgoCD) && n == 2:
		ce.Advice = disk.Derived
	case (listed || retiring) && n >= 3 && parts[1] == layout.Generated:
		ce.Advice = disk.Derived
	case parts[n-1] == layout.Kustomization && (n == 1 || n == 2 && (top == layout.Flux || top == layout.ArgoCD || top == layout.Common || listed)):
		ce.Advice = disk.Derived
	}
	return err
}

// folderOf is the folder of a tree path, "" for the tree root.
func folderOf(p string) string {
	if d := path.Dir(p); d != "." {
		return d
	}
	return ""
}

// findRoot sets the tree root: the folder of the config among the files.
// A config given only as functionConfig, and found in no file, governs the
// whole input.
func (t *tree) findRoot(cfgNode *yaml.RNode, in fileset.Set) error {
	p := object.Path(cfgNode)
	if p == "" {
		for _, f := range in {
			objs, err := f.Objects()
			if err != nil {
				continue
			}
			for _, o := range objs {
				if o.GetApiVersion() == cfgNode.GetApiVersion() && o.GetKind() == cfgNode.GetKind() && o.GetName() == cfgNode.GetName() {
					p = f.Path
					break
				}
			}
			if p != "" {
				break
			}
		}
	}
	if p == "" {
		return nil
	}
	if dir := path.Dir(p); dir != "." {
		t.root = dir
	}
	t.cfgFile = path.Base(p)
	return nil
}

// readRecords decodes the records of every listed revision and of common/.
func (t *tree) readRecords() error {
	folders := []*folder{t.common}
	for _, r := range t.cfg.RevisionNames() {
		folders = append(folders, t.revisions[r])
	}
	for _, fo := range folders {
		if fo.recordFile != nil {
			st, err := readRecord(fo.recordFile, map[bool]string{true: api.KindCommonState, false: api.KindRevisionState}[fo == t.common])
			if err != nil {
				return err
			}
			fo.record = st
		}
		for _, name := range config.SortedKeys(fo.appliedFiles) {
			f := fo.appliedFiles[name]
			objs, err := f.Objects()
			if err != nil {
				return err
			}
			if len(objs) != 1 || !state.Is(objs[0], api.KindAppliedPatch) {
				return fmt.Errorf("%s: must hold one %s record (the function writes it): restore it from Git, or regenerate the revision from istioctl output", f.Path, api.KindAppliedPatch)
			}
			a, err := state.ReadApplied(objs[0])
			if err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
			fo.applied[name] = a
		}
	}
	return nil
}

func readRecord(f *fileset.File, kind string) (*state.State, error) {
	objs, err := f.Objects()
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 || !state.Is(objs[0], kind) {
		return nil, fmt.Errorf("%s: must hold one %s record (the function writes it): restore it from Git, or regenerate from istioctl output", f.Path, kind)
	}
	st, err := state.Read(objs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return st, nil
}

// checkUserFiles reads the user's files: GitPatches outside a listed
// revision's patches/ and a second IstioGitOps beside the config are
// mistakes the run must not pass over.
func (t *tree) checkUserFiles() error {
	for _, f := range t.user {
		p, _ := t.rel(f.Path)
		objs, err := f.Objects()
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := object.CheckShape(o); err != nil {
				return fmt.Errorf("%s: %s: %w", f.Path, object.Describe(o), err)
			}
			if object.IsList(o) {
				if err := checkListItems(f, o); err != nil {
					return err
				}
				continue
			}
			switch {
			case o.GetApiVersion() == api.APIVersion && o.GetKind() == config.Kind && path.Dir(p) == path.Dir(t.cfgFile) &&
				(p != t.cfgFile || o.GetName() != t.cfg.Metadata.Name):
				return fmt.Errorf("%s: a second IstioGitOps %q beside %s (IstioGitOps %q): one folder holds one tree, and one of them would silently win; remove the copy",
					f.Path, o.GetName(), t.runPath(t.cfgFile), t.cfg.Metadata.Name)
			case o.GetKind() == patch.Kind && object.IsOurs(o):
				parts := strings.Split(p, "/")
				if (len(parts) != 3 || parts[1] != layout.Patches || t.revisions[parts[0]] == nil) && !t.isShared(p) {
					return fmt.Errorf("%s: GitPatch %q must be in the patches/ folder of a listed revision (<rev>/patches/<name>.yaml) to be applied",
						f.Path, o.GetName())
				}
			}
		}
	}
	return nil
}

// isShared reports whether a tree path is under spec.patchesFrom.
func (t *tree) isShared(p string) bool {
	for _, from := range t.cfg.Spec.PatchesFrom {
		if from == "." || p == from || strings.HasPrefix(p, from+"/") {
			return true
		}
	}
	return false
}

// checkListItems checks the items of a List among the user's files: their
// shapes, as every reader of Namespaces and workloads unwraps it, and no
// config of ours, which kustomize, kpt and the run look for only as
// documents of their own.
func checkListItems(f *fileset.File, list *yaml.RNode) error {
	err := object.Items(list, func(it *yaml.RNode, at string) error {
		if object.IsOurs(it) {
			return fmt.Errorf("%s: %s %q must not be inside a List: kustomize, kpt and istio-gitops look for it only as a document of its own", at, it.GetKind(), it.GetName())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: document %d (%s): %w", f.Path, object.Index(list), list.GetKind(), err)
	}
	return nil
}

// isRendered reports whether a file holds one object the run renders from
// the config.
func isRendered(f *fileset.File) (bool, error) {
	objs, err := f.Objects()
	if err != nil {
		return false, err
	}
	if len(objs) != 1 {
		return false, nil
	}
	_, ok := objs[0].GetAnnotations()[api.RenderedFromAnnotation]
	return ok, nil
}

// sortedFiles orders files by path.
func sortedFiles(fs []*fileset.File) []*fileset.File {
	out := slices.Clone(fs)
	slices.SortFunc(out, func(a, b *fileset.File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// advised is an error told again with advice.
type advised struct {
	msg string
	err error
}

func (e *advised) Error() string { return e.msg }
func (e *advised) Unwrap() error { return e.err }

// isDeployerFolder reports whether top is the folder of the objects that
// deploy the tree: flux/ (Flux Kustomizations) or argocd/ (Argo CD
// Applications).
func isDeployerFolder(top string) bool {
	return top == layout.Flux || top == layout.ArgoCD
}
