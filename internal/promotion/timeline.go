package promotion

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/history"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Span is a stretch of first-parent history over which a cluster's tree
// showed one state.
type Span struct {
	// State is nil where the commits hold no tree (or no config) there.
	State *State
	// Newest and Oldest are the span's first and last commits, newest
	// first.
	Newest, Oldest history.Commit
}

// Timeline is a cluster's first-parent history, newest first.
type Timeline struct {
	Spans []Span
	// Truncated reports that the history read ends at the boundary of a
	// shallow clone: what came before is not known.
	Truncated bool
}

// Head is the state at the newest commit (nil when the tree is not
// committed).
func (tl *Timeline) Head() *State {
	if tl == nil || len(tl.Spans) == 0 {
		return nil
	}
	return tl.Spans[0].State
}

// Since is when the stretch of history from the newest commit back over
// which holds holds began: its oldest commit. ok is false when it does not
// hold at the newest commit; known is false when the stretch reaches the
// start of a shallow clone's history, so that it may have begun earlier.
func (tl *Timeline) Since(holds func(*State) bool) (c history.Commit, ok, known bool) {
	if tl == nil {
		return history.Commit{}, false, false
	}
	for i, sp := range tl.Spans {
		if !holds(sp.State) {
			return c, i > 0, true
		}
		c = sp.Oldest
	}
	return c, len(tl.Spans) > 0, !tl.Truncated
}

// Ever reports whether holds held at any commit of the history read.
func (tl *Timeline) Ever(holds func(*State) bool) bool {
	if tl == nil {
		return false
	}
	for _, sp := range tl.Spans {
		if holds(sp.State) {
			return true
		}
	}
	return false
}

// Tree is a cluster's tree in the repository: its folder, relative to the
// repository's root, and the name of its config's file there.
type Tree struct {
	Folder     string
	ConfigFile string
}

// Timelines walks the first-parent history from start once and returns
// each tree's timeline. A tree's files are read only at the commits where
// its folder's tree hash changed, and parsed once per distinct content.
func Timelines(repo *history.Repo, start history.Commit, trees []Tree) ([]*Timeline, error) {
	folders := make([]string, len(trees))
	for i, t := range trees {
		folders[i] = t.Folder
	}
	r := &reader{repo: repo, states: map[stateKey]*State{}, configs: map[history.Hash]*parsed{}, records: map[history.Hash]string{}}
	out := make([]*Timeline, len(trees))
	for i := range out {
		out[i] = &Timeline{}
	}
	last := make([]history.Hash, len(trees))
	err := repo.Walk(start, folders, func(c history.Commit, hashes []history.Hash) (bool, error) {
		for i, h := range hashes {
			tl := out[i]
			if n := len(tl.Spans); n > 0 && h == last[i] {
				tl.Spans[n-1].Oldest = c
				continue
			}
			last[i] = h
			st, err := r.state(h, trees[i].ConfigFile)
			if err != nil {
				return false, fmt.Errorf("%s at commit %s: %w", path.Join(trees[i].Folder, trees[i].ConfigFile), c.Short(), err)
			}
			tl.Spans = append(tl.Spans, Span{State: st, Newest: c, Oldest: c})
		}
		if c.Shallow {
			for _, tl := range out {
				tl.Truncated = true
			}
		}
		return true, nil
	})
	return out, err
}

// reader reads states from the repository, each distinct config and
// record once.
type reader struct {
	repo    *history.Repo
	states  map[stateKey]*State
	configs map[history.Hash]*parsed
	records map[history.Hash]string
}

type stateKey struct {
	tree history.Hash
	file string
}

// parsed is a config blob as read: the state it shows but for the
// versions only records give, or why it is not a config.
type parsed struct {
	state *State
	// unpinned are the revisions without spec.revisions[].version.
	unpinned []string
}

func (r *reader) state(tree history.Hash, file string) (*State, error) {
	if tree.IsZero() {
		return nil, nil
	}
	key := stateKey{tree, file}
	if st, ok := r.states[key]; ok {
		return st, nil
	}
	st, err := r.read(tree, file)
	if err != nil {
		return nil, err
	}
	r.states[key] = st
	return st, nil
}

func (r *reader) read(tree history.Hash, file string) (*State, error) {
	h, dir, err := r.repo.Lookup(tree, file)
	if err != nil || h.IsZero() || dir {
		return nil, err
	}
	p, ok := r.configs[h]
	if !ok {
		data, err := r.repo.Blob(h)
		if err != nil {
			return nil, err
		}
		// A commit whose config does not parse shows no state: the
		// stretches around it are apart, which can only lengthen a wait.
		p, _ = parseConfig(data, file)
		r.configs[h] = p
	}
	if p == nil {
		return nil, nil
	}
	st := p.state
	if len(p.unpinned) > 0 {
		st = &State{Name: p.state.Name, Revisions: p.state.Revisions, Pointers: p.state.Pointers, Versions: map[string]string{}}
		for k, v := range p.state.Versions {
			st.Versions[k] = v
		}
		for _, rev := range p.unpinned {
			v, err := r.recordVersion(tree, rev)
			if err != nil {
				return nil, err
			}
			st.Versions[rev] = v
		}
	}
	return st, nil
}

// recordVersion is the version a revision's record gives at a commit.
func (r *reader) recordVersion(tree history.Hash, rev string) (string, error) {
	h, dir, err := r.repo.Lookup(tree, path.Join(rev, layout.Generated, layout.StateFile))
	if err != nil || h.IsZero() || dir {
		return "", err
	}
	if v, ok := r.records[h]; ok {
		return v, nil
	}
	data, err := r.repo.Blob(h)
	if err != nil {
		return "", err
	}
	v := ""
	err = disk.Decode(bytes.NewReader(data), path.Join(rev, layout.Generated, layout.StateFile), func(n *yaml.RNode) error {
		if object.Scalar(n, "kind") == api.KindRevisionState {
			v = object.Scalar(n, "spec", "version")
		}
		return nil
	})
	if err != nil {
		v = ""
	}
	r.records[h] = v
	return v, nil
}

// parseConfig reads the IstioGitOps of a config file as a commit holds it
// (nil when the file holds none).
func parseConfig(data []byte, file string) (*parsed, error) {
	var node *yaml.RNode
	err := disk.Decode(bytes.NewReader(data), file, func(n *yaml.RNode) error {
		if node == nil && object.Scalar(n, "apiVersion") == api.APIVersion && object.Scalar(n, "kind") == api.KindIstioGitOps {
			node = n
		}
		return nil
	})
	if err != nil || node == nil {
		return nil, err
	}
	js, err := node.MarshalJSON()
	if err != nil {
		return nil, err
	}
	cfg, err := lenientConfig(js, node)
	if err != nil {
		return nil, err
	}
	p := &parsed{state: StateOf(cfg, nil)}
	for _, rev := range cfg.Spec.Revisions {
		if rev.Version == "" && rev.Name != "" && !strings.Contains(rev.Name, "/") {
			p.unpinned = append(p.unpinned, rev.Name)
		}
	}
	return p, nil
}
