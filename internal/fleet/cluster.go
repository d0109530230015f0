// Package fleet holds the clusters of a fleet on disk: each IstioGitOps
// tree under a folder, what its config names beside it (the namespace
// sources of spec.namespaces.from, the shared patches of spec.patchesFrom,
// the clusters of spec.promotion.after), the order guard of a run over
// trees on disk, and the fleet commands' reports (`fleet status`, `fleet
// check`).
package fleet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/istioctl"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/promotion"
	"github.com/istio-gitops/istio-gitops/internal/state"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Cluster is one IstioGitOps tree on disk.
type Cluster struct {
	// Dir is the tree's folder on disk; Path names it in messages (as
	// given, or relative to the folder a fleet command was given).
	Dir, Path string
	// ConfigFile is the config's file name in Dir.
	ConfigFile string
	// Root is the tree's folder among the paths of Files ("" when they
	// are relative to Dir).
	Root   string
	Config *config.IstioGitOps
	Node   *yaml.RNode
	// Files are the tree's own files (a tree nested below it has its
	// own), their paths relative to Dir.
	Files fileset.Set
}

// File names the config's file in messages.
func (c *Cluster) File() string { return path.Join(filepath.ToSlash(c.Path), c.ConfigFile) }

// Load reads the tree whose config is in dir.
func Load(dir, name string) (*Cluster, error) {
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist", name)
	}
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s must be the folder of a cluster's IstioGitOps config, not a file", name)
	}
	t, err := disk.Read(dir)
	if err != nil {
		return nil, err
	}
	in := fileset.FromTree(t)
	cfgs, err := krm.FindConfigs(in, config.Kind)
	if err != nil {
		return nil, err
	}
	roots := krm.Roots(cfgs)
	var own []*yaml.RNode
	for _, c := range cfgs {
		if krm.RootOf(object.Path(c)) == "" {
			own = append(own, c)
		}
	}
	switch {
	case len(own) == 0:
		return nil, fmt.Errorf("%s holds no IstioGitOps config: it must be the folder of a cluster's config", name)
	case len(own) > 1:
		return nil, fmt.Errorf("%s holds %d IstioGitOps configs (%s and %s): one folder holds one tree", name, len(own), object.Path(own[0]), object.Path(own[1]))
	}
	// The tree owns the folder: its view is its own files, less those of
	// the trees nested below it.
	view, _ := krm.Split(in, roots, "")
	return newCluster(dir, name, "", own[0], view)
}

func newCluster(dir, name, root string, node *yaml.RNode, files fileset.Set) (*Cluster, error) {
	cfg, err := config.Load(node)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path.Join(filepath.ToSlash(name), path.Base(object.Path(node))), err)
	}
	return &Cluster{Dir: dir, Path: name, Root: root, ConfigFile: path.Base(object.Path(node)), Config: cfg, Node: node, Files: files}, nil
}

// findLocked is Find under root's shared lock (reports run side by side,
// never while a command writes): unlock when done with the trees.
func findLocked(root string) (clusters []*Cluster, unlock func(), err error) {
	lock, err := disk.LockTree(root, false)
	if err != nil {
		return nil, nil, err
	}
	clusters, err = Find(root)
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	return clusters, func() { lock.Unlock() }, nil
}

// Find reads every IstioGitOps tree under root, in path order; each
// cluster's Path is its folder relative to root ("." for root's own).
func Find(root string) ([]*Cluster, error) {
	t, err := disk.Read(root)
	if err != nil {
		return nil, err
	}
	in := fileset.FromTree(t)
	// The generated folders of revisions hold no config: they are most
	// of a fleet's files, and are not read.
	var candidates fileset.Set
	for _, f := range in {
		if i := slices.Index(strings.Split(f.Path, "/"), layout.Generated); i < 1 {
			candidates = append(candidates, f)
		}
	}
	cfgs, err := krm.FindConfigs(candidates, config.Kind)
	if err != nil {
		return nil, err
	}
	if len(cfgs) == 0 {
		return nil, fmt.Errorf("%s: no IstioGitOps config found", root)
	}
	roots := krm.Roots(cfgs)
	// Each file to its tree, in one pass.
	byRoot := map[string]fileset.Set{}
	for _, f := range in {
		if r, ok := krm.Owner(roots, f.Path); ok {
			byRoot[r] = append(byRoot[r], f)
		}
	}
	var out []*Cluster
	for _, r := range roots {
		var node *yaml.RNode
		for _, c := range cfgs {
			if krm.RootOf(object.Path(c)) != r {
				continue
			}
			if node != nil {
				return nil, fmt.Errorf("%s and %s: a second IstioGitOps in one folder: one folder holds one tree", object.Path(node), object.Path(c))
			}
			node = c
		}
		rel := r
		if rel == "" {
			rel = "."
		}
		c, err := newCluster(filepath.Join(root, filepath.FromSlash(r)), rel, r, node, byRoot[r])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Read reads a file or folder kept beside the trees (Namespace manifests,
// shared patches), read-only; files are named as given, so that messages
// point at the user's files.
func Read(p string) (fileset.Set, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		f, err := disk.ReadFile(p)
		if err != nil {
			return nil, err
		}
		return fileset.Set{fileset.Named(filepath.ToSlash(p), fileset.FromDisk(f))}, nil
	}
	t, err := disk.Read(p)
	if err != nil {
		return nil, err
	}
	var out fileset.Set
	for _, f := range fileset.FromTree(t) {
		out = append(out, fileset.Named(filepath.ToSlash(filepath.Join(p, f.Path)), f))
	}
	return out, nil
}

// ReadFrom reads the paths a config lists at field (relative to the
// config's folder dir, named in messages from name), each a file or
// folder.
func ReadFrom(dir, name, file, field string, paths []string) (map[string]fileset.Set, error) {
	out := map[string]fileset.Set{}
	for i, p := range paths {
		files, err := Read(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, fmt.Errorf("%s: %s[%d]: %q: %w", file, field, i, p, unwrapPath(err))
		}
		for j, f := range files {
			rel, rerr := filepath.Rel(dir, filepath.FromSlash(f.Path))
			if rerr == nil {
				files[j] = fileset.Named(path.Clean(path.Join(filepath.ToSlash(name), filepath.ToSlash(rel))), f)
			}
		}
		out[p] = files
	}
	return out, nil
}

// unwrapPath words a missing path plainly.
func unwrapPath(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("must be a file or folder, and there is none")
	}
	return err
}

// State is what the cluster's files show: the versions of its revisions
// (pinned in the config, else from their records, else from the istiod of
// a source not yet consumed) and its pointers.
func State(cfg *config.IstioGitOps, root string, files fileset.Set) *promotion.State {
	return stateOf(cfg, root, indexed(files))
}

// indexed is files by path.
func indexed(files fileset.Set) map[string]*fileset.File {
	byPath := make(map[string]*fileset.File, len(files))
	for _, f := range files {
		byPath[f.Path] = f
	}
	return byPath
}

// inTree is p relative to the tree at root; ok is false when p is not in
// it.
func inTree(root, p string) (rel string, ok bool) {
	if root == "" {
		return p, true
	}
	return strings.CutPrefix(p, root+"/")
}

func stateOf(cfg *config.IstioGitOps, root string, byPath map[string]*fileset.File) *promotion.State {
	return promotion.StateOf(cfg, func(rev string) string {
		if f := byPath[path.Join(root, rev, layout.Generated, layout.StateFile)]; f != nil {
			if st := readRecord(f, api.KindRevisionState); st != nil {
				return st.Spec.Version
			}
		}
		if r, ok := cfg.Revision(rev); ok {
			if f := byPath[path.Join(root, r.Source)]; f != nil {
				if objs, err := f.Objects(); err == nil {
					v, _ := istioctl.Version(objs)
					return v
				}
			}
		}
		return ""
	})
}

// Recorded is what the tree's records say it showed when it was last
// written: the revisions generated, and the pointers as the objects
// rendered from them record (points-at), or, for a tree written by an
// older istio-gitops, as common/'s record has them. Outside Git it is what
// a step is judged from; nil when the tree has no record yet.
func Recorded(cfg *config.IstioGitOps, root string, files fileset.Set) *promotion.State {
	byPath := indexed(files)
	f := byPath[path.Join(root, layout.Common, layout.StateFile)]
	if f == nil {
		return nil
	}
	common := readRecord(f, api.KindCommonState)
	if common == nil {
		return nil
	}
	s := &promotion.State{Name: cfg.Metadata.Name, Versions: map[string]string{}}
	// generated are the files the records list, by tree-relative path: a
	// run generates them, it does not render them.
	generated := map[string]bool{}
	for p := range common.Spec.Files {
		generated[path.Join(layout.Common, p)] = true
	}
	for _, p := range files {
		rel, ok := inTree(root, p.Path)
		if !ok {
			continue
		}
		parts := strings.Split(rel, "/")
		if len(parts) == 3 && parts[1] == layout.Generated && parts[2] == layout.StateFile {
			if st := readRecord(p, api.KindRevisionState); st != nil {
				s.Revisions = append(s.Revisions, parts[0])
				s.Versions[parts[0]] = st.Spec.Version
				for g := range st.Spec.Files {
					generated[path.Join(parts[0], layout.Generated, g)] = true
				}
			}
		}
	}
	rec, ok := recordedPointers(root, files, generated)
	if was := common.Spec.Pointers; !ok && was != nil {
		rec = &config.IstioGitOps{Spec: config.Spec{ActiveRevision: was.ActiveRevision, Tags: was.Tags,
			Gateways: config.Gateways{Live: was.GatewaysLive}, NodeAgents: config.NodeAgents{Revision: was.NodeAgents}}}
	} else if !ok {
		return nil
	}
	s.Pointers = promotion.Pointers(rec)
	var now *promotion.State // the tree as it is, read once if a host needs it
	for _, p := range promotion.Pointers(cfg) {
		if _, ok := promotion.HostOf(p.Field); ok {
			s.Pointers = append(s.Pointers, p)
			if _, known := s.Versions[p.Revision]; !known {
				if now == nil {
					now = stateOf(cfg, root, byPath)
				}
				s.Versions[p.Revision] = now.Version(p.Revision)
			}
		}
	}
	return s
}

// recordedPointers are where the pointers stood when the tree at root was
// last written, as the objects rendered from them record it; ok is false
// when no object records one (a tree written by an older istio-gitops).
// The DNS hosts are not among them: outside Git they are taken as they
// are now, unmoved. Only the files a run renders are read, not those the
// records list as generated (tree-relative paths): they are most of a
// tree.
func recordedPointers(root string, files fileset.Set, generated map[string]bool) (*config.IstioGitOps, bool) {
	rec := &config.IstioGitOps{Spec: config.Spec{Tags: map[string]string{}}}
	ok := false
	for _, f := range files {
		rel, in := inTree(root, f.Path)
		if !in || generated[rel] {
			continue
		}
		if m, err := f.Mentions(api.PointsAtAnnotation, api.LiveRevisionAnnotation); err != nil || !m {
			continue
		}
		objs, err := f.Objects()
		if err != nil || len(objs) != 1 {
			continue
		}
		field, at, live, rendered := pipeline.RenderedRecord(objs[0])
		if !rendered {
			continue
		}
		if live != "" {
			rec.Spec.Gateways.Live, ok = live, true
		}
		if at == "" {
			continue
		}
		switch {
		case field == promotion.ActiveField:
			rec.Spec.ActiveRevision = at
		case field == promotion.LiveField:
			rec.Spec.Gateways.Live = at
		case field == config.FieldNodeAgents:
			// An older istio-gitops moved both agents as one.
			rec.Spec.NodeAgents.Revision = at
		case field == promotion.CNIField:
			rec.Spec.NodeAgents.CNI = at
		case field == promotion.ZtunnelField:
			rec.Spec.NodeAgents.Ztunnel = at
		case strings.HasPrefix(field, promotion.TagsField):
			rec.Spec.Tags[strings.TrimPrefix(field, promotion.TagsField)] = at
		default:
			continue
		}
		ok = true
	}
	return rec, ok
}

// readRecord reads a record file, nil when it holds none.
func readRecord(f *fileset.File, kind string) *state.State {
	objs, err := f.Objects()
	if err != nil || len(objs) != 1 || !state.Is(objs[0], kind) {
		return nil
	}
	st, err := state.Read(objs[0])
	if err != nil {
		return nil
	}
	return st
}
