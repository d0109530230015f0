package promotion

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/history"
	"github.com/istio-gitops/istio-gitops/internal/layout"
)

// Span is a stretch of first-parent history over which a cluster's
// folder kept one tree.
type Span struct {
	// State is what the tree shows: nil where the commits hold no tree
	// (or no config) there. A timeline read from a repository reads it
	// when first asked (see Timeline.state).
	State *State
	// Newest and Oldest are the span's first and last commits, newest
	// first.
	Newest, Oldest history.Commit
	tree           history.Hash
	read           bool
}

// Timeline is a cluster's first-parent history, newest first.
type Timeline struct {
	Spans []Span
	// Truncated reports that the history read ends at the boundary of a
	// shallow clone: what came before is not known.
	Truncated bool
	// reader reads the spans' states, file is the config's name in
	// folder; err is the first error it met.
	reader       *reader
	folder, file string
	err          error
}

// Err is the first error met reading the states of the history: a
// repository that lacks an object, say. A span whose state could not be
// read shows none.
func (tl *Timeline) Err() error {
	if tl == nil {
		return nil
	}
	return tl.err
}

// state is the state of span i, read from the repository the first time
// it is asked: the history of a tree is parsed only as far as a question
// needs.
func (tl *Timeline) state(i int) *State {
	sp := &tl.Spans[i]
	if tl.reader == nil || sp.read {
		return sp.State
	}
	sp.read = true
	st, err := tl.reader.state(sp.tree, tl.file)
	if err != nil && tl.err == nil {
		tl.err = fmt.Errorf("%s at commit %s: %w", path.Join(tl.folder, tl.file), sp.Oldest.Short(), err)
	}
	sp.State = st
	return st
}

// Head is the state at the newest commit (nil when the tree is not
// committed).
func (tl *Timeline) Head() *State {
	if tl == nil || len(tl.Spans) == 0 {
		return nil
	}
	return tl.state(0)
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
		if !holds(tl.state(i)) {
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
	for i := range tl.Spans {
		if holds(tl.state(i)) {
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
// each tree's timeline: the stretches over which its folder's tree hash
// stayed. What a stretch's tree shows is read when a question needs it,
// from the config and the records that say the versions, each distinct
// file parsed once. The repository must stay open while the timelines
// are asked.
func Timelines(repo *history.Repo, start history.Commit, trees []Tree) ([]*Timeline, error) {
	folders := make([]string, len(trees))
	for i, t := range trees {
		folders[i] = t.Folder
	}
	r := &reader{repo: repo, states: map[stateKey]*State{}, configs: map[history.Hash]*parsed{}, records: map[history.Hash]string{}}
	out := make([]*Timeline, len(trees))
	for i, t := range trees {
		out[i] = &Timeline{reader: r, folder: t.Folder, file: t.ConfigFile}
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
			tl.Spans = append(tl.Spans, Span{Newest: c, Oldest: c, tree: h})
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
		p = parseConfig(data)
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
	var rec struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Version string `yaml:"version"`
		} `yaml:"spec"`
	}
	v := ""
	if yaml.Unmarshal(data, &rec) == nil && rec.APIVersion == api.APIVersion && rec.Kind == api.KindRevisionState {
		v = rec.Spec.Version
	}
	r.records[h] = v
	return v, nil
}

// pastConfig is what the history needs of a config as a commit holds it,
// read without the strict checks of today's loader (a field since renamed
// must not make the history unreadable), and fast: a fleet's history holds
// thousands of them.
type pastConfig struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Revisions []struct {
			Name    string `yaml:"name"`
			Version string `yaml:"version"`
		} `yaml:"revisions"`
		ActiveRevision string            `yaml:"activeRevision"`
		Tags           map[string]string `yaml:"tags"`
		Gateways       struct {
			Live           string        `yaml:"live"`
			StableServices bool          `yaml:"stableServices"`
			Ingress        *pastIngress  `yaml:"ingress"`
			Ingresses      []pastIngress `yaml:"ingresses"`
		} `yaml:"gateways"`
		NodeAgents struct {
			Revision string `yaml:"revision"`
			CNI      string `yaml:"cni"`
			Ztunnel  string `yaml:"ztunnel"`
		} `yaml:"nodeAgents"`
	} `yaml:"spec"`
}

// pastIngress is what the history needs of an Ingress template: the
// hosts it moves.
type pastIngress struct {
	Hosts map[string]string `yaml:"hosts"`
}

// parseConfig reads the IstioGitOps of a config file as a commit holds it
// (nil when the file holds none), defaulted as the run defaults it.
func parseConfig(data []byte) *parsed {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var pc pastConfig
		if err := dec.Decode(&pc); err != nil {
			return nil
		}
		if pc.APIVersion != api.APIVersion || pc.Kind != api.KindIstioGitOps {
			continue
		}
		s := pc.Spec
		cfg := &config.IstioGitOps{Metadata: config.Metadata{Name: pc.Metadata.Name}, Spec: config.Spec{
			ActiveRevision: s.ActiveRevision, Tags: s.Tags,
			Gateways:   config.Gateways{Live: s.Gateways.Live, StableServices: s.Gateways.StableServices},
			NodeAgents: config.NodeAgents{Revision: s.NodeAgents.Revision, CNI: s.NodeAgents.CNI, Ztunnel: s.NodeAgents.Ztunnel},
		}}
		if in := s.Gateways.Ingress; in != nil {
			cfg.Spec.Gateways.Ingress = &config.Ingress{Hosts: in.Hosts}
		}
		for _, in := range s.Gateways.Ingresses {
			cfg.Spec.Gateways.Ingresses = append(cfg.Spec.Gateways.Ingresses, config.Ingress{Hosts: in.Hosts})
		}
		p := &parsed{}
		for _, r := range s.Revisions {
			cfg.Spec.Revisions = append(cfg.Spec.Revisions, config.Revision{Name: r.Name, Version: r.Version})
			if r.Version == "" && r.Name != "" && !strings.Contains(r.Name, "/") {
				p.unpinned = append(p.unpinned, r.Name)
			}
		}
		// The defaults that make pointers: the active revision, and the
		// live gateways where traffic follows them (Pointers counts what
		// a config without its YAML holds as written).
		if cfg.Spec.ActiveRevision == "" && len(s.Revisions) > 0 {
			cfg.Spec.ActiveRevision = s.Revisions[0].Name
		}
		if cfg.Spec.Gateways.Live == "" && len(s.Revisions) == 1 && cfg.MovesTraffic() {
			cfg.Spec.Gateways.Live = cfg.Spec.ActiveRevision
		}
		p.state = StateOf(cfg, nil)
		return p
	}
}
