package fleet

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/history"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/promotion"
)

// Upstreams reads the clusters of spec.promotion.after of the tree at dir
// (its config file named file in messages): each must be a tree whose
// records hold, and the order they make with theirs must not loop back.
// Each is read under a shared lock (no command writes it meanwhile),
// which release gives back.
func Upstreams(dir, name, file string, cfg *config.IstioGitOps) (ups []*Cluster, release func(), err error) {
	var locks []*disk.Lock
	release = func() {
		for _, l := range locks {
			l.Unlock()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	if err := checkCycle(dir, name, file, cfg); err != nil {
		return nil, release, err
	}
	for i, after := range cfg.Upstreams() {
		field := fmt.Sprintf("spec.promotion.after[%d]", i)
		d := filepath.Join(dir, filepath.FromSlash(after))
		if lock, err := disk.LockTree(d, false); err == nil {
			locks = append(locks, lock)
		} else if _, serr := os.Stat(d); serr == nil {
			return nil, release, fmt.Errorf("%s: %s: %q: %w", file, field, after, err)
		}
		c, err := Load(d, path.Join(filepath.ToSlash(name), after))
		if err != nil {
			return nil, release, fmt.Errorf("%s: %s: %q: %w", file, field, after, err)
		}
		if _, err := pipeline.CheckRecords(c.Config, c.Files); err != nil {
			return nil, release, fmt.Errorf("%s: %s: %q: the tree of cluster %q fails its records check, so what it runs is not known: %w", file, field, after, c.Config.Metadata.Name, err)
		}
		ups = append(ups, c)
	}
	return ups, release, nil
}

// checkCycle follows spec.promotion.after from the tree at dir, tree by
// tree: an order that comes back to a tree would let no cluster move
// first.
func checkCycle(dir, name, file string, cfg *config.IstioGitOps) error {
	return newOrder().cycle(dir, name, file, cfg)
}

// order is the graph of spec.promotion.after, each tree's config read
// once (its top folder only), and the trees known to lead to no cycle.
type order struct {
	configs map[string]*config.IstioGitOps
	names   map[string]string
	clear   map[string]bool
}

func newOrder() *order {
	return &order{configs: map[string]*config.IstioGitOps{}, names: map[string]string{}, clear: map[string]bool{}}
}

// config reads the config of the tree at dir, nil when it has none (that
// tree's own run reports it).
func (o *order) config(dir string) *config.IstioGitOps {
	k := key(dir)
	if c, ok := o.configs[k]; ok {
		return c
	}
	var cfg *config.IstioGitOps
	if node, err := krm.ConfigIn(dir, config.Kind); err == nil {
		cfg, _ = config.Load(node)
	}
	o.configs[k] = cfg
	return cfg
}

// cycle reports a cycle of the order reachable from the tree at dir.
func (o *order) cycle(dir, name, file string, cfg *config.IstioGitOps) error {
	type step struct {
		dir, name string
		cfg       *config.IstioGitOps
	}
	var visit func(s step, trail []step) error
	visit = func(s step, trail []step) error {
		k := key(s.dir)
		if o.clear[k] {
			return nil
		}
		for i, t := range trail {
			if key(t.dir) == k {
				var names []string
				for _, c := range append(trail[i:], s) {
					names = append(names, fmt.Sprintf("%s (%s)", c.cfg.Metadata.Name, c.name))
				}
				return fmt.Errorf("%s: spec.promotion.after: the order has a cycle: %s each follow the next, so none could move first; remove one of these after entries",
					file, strings.Join(names, " -> "))
			}
		}
		trail = append(trail, s)
		for _, after := range s.cfg.Upstreams() {
			d := filepath.Join(s.dir, filepath.FromSlash(after))
			up := o.config(d)
			if up == nil {
				// A broken link further up is that tree's run to report.
				continue
			}
			if err := visit(step{d, path.Join(filepath.ToSlash(s.name), after), up}, trail); err != nil {
				return err
			}
		}
		o.clear[k] = true
		return nil
	}
	o.configs[key(dir)] = cfg
	return visit(step{dir, name, cfg}, nil)
}

// Step is a cluster's step for the order guard: the tree and what it
// shows after the step.
type Step struct {
	// Dir is the tree's folder on disk, Name names it in messages, File
	// its config's file.
	Dir, Name, File string
	Config          *config.IstioGitOps
	// Now is what the tree shows after the step; Recorded what its
	// records said before (outside Git).
	Now, Recorded *promotion.State
	// Base is the commit the step is judged from (HEAD for a run, the
	// base of a pull request for fleet check); empty for HEAD.
	Base string
	// Clock is the time of the check.
	Clock time.Time
}

// Judge judges a step against the order: the upstreams' states and
// histories from Git (from their files outside a repository), the
// cluster's past up to the base commit.
func Judge(s Step) (promotion.Verdict, error) {
	c, done, err := judge(s)
	if err != nil {
		return promotion.Verdict{}, err
	}
	v := c.Run()
	if err := done(); err != nil {
		return promotion.Verdict{}, err
	}
	return v, nil
}

// judge builds the order's check of a step; done closes the repository
// once the check has been asked, and reports what reading its history
// met.
func judge(s Step) (c *promotion.Check, done func() error, err error) {
	c = &promotion.Check{Config: s.Config, File: s.File, Now: s.Now, Clock: s.Clock}
	done = func() error { return nil }
	if s.Config.Spec.Promotion == nil {
		return c, done, nil
	}
	ups, release, err := Upstreams(s.Dir, s.Name, s.File, s.Config)
	if err != nil {
		return nil, nil, err
	}
	done = func() error {
		release()
		return nil
	}
	repo, err := history.Open(s.Dir)
	var head history.Commit
	if err == nil {
		head, err = repo.Head()
		if err != nil && s.Config.Soak() == 0 && s.Base == "" {
			// A repository without a commit yet: nothing is committed, so
			// the trees are read as they are, as outside Git.
			repo.Close()
			err = history.ErrNotRepository
		}
	}
	if err != nil && !errors.Is(err, history.ErrNotRepository) {
		if repo != nil {
			repo.Close()
		}
		release()
		return nil, nil, err
	}
	if errors.Is(err, history.ErrNotRepository) {
		c.Before = s.Recorded
		for _, u := range ups {
			c.Upstreams = append(c.Upstreams, promotion.Upstream{Path: u.Path, Name: u.Config.Metadata.Name, State: State(u.Config, u.Root, u.Files)})
		}
		return c, done, nil
	}
	var timelines []*promotion.Timeline
	done = func() error {
		defer release()
		defer repo.Close()
		for _, tl := range timelines {
			if err := tl.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	defer func() {
		if err != nil {
			repo.Close()
			release()
		}
	}()
	c.InGit = true
	trees := []promotion.Tree{}
	for _, d := range append([]string{s.Dir}, dirs(ups)...) {
		rel, err := repo.Rel(d)
		if err != nil {
			return nil, nil, err
		}
		trees = append(trees, promotion.Tree{Folder: rel})
	}
	trees[0].ConfigFile = path.Base(s.File)
	for i, u := range ups {
		trees[i+1].ConfigFile = u.ConfigFile
	}
	tls, err := promotion.Timelines(repo, head, trees)
	if err != nil {
		return nil, nil, err
	}
	timelines = append(timelines, tls...)
	for i, u := range ups {
		c.Upstreams = append(c.Upstreams, promotion.Upstream{Path: u.Path, Name: u.Config.Metadata.Name, State: tls[i+1].Head(), Timeline: tls[i+1]})
	}
	c.Past = tls[0]
	if s.Base != "" {
		base, err := repo.Resolve(s.Base)
		if err != nil {
			return nil, nil, err
		}
		past, err := promotion.Timelines(repo, base, trees[:1])
		if err != nil {
			return nil, nil, err
		}
		c.Past = past[0]
		timelines = append(timelines, past...)
	}
	c.Before = c.Past.Head()
	return c, done, nil
}

func dirs(cs []*Cluster) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Dir)
	}
	return out
}

// Results are a verdict as a run's results: a refused step is an error
// (a warning when the override lets it through), the override a warning.
func Results(v promotion.Verdict, file string) (framework.Results, error) {
	var res framework.Results
	for _, n := range v.Notes {
		res = append(res, &framework.Result{Severity: framework.Warning, Message: n, File: &framework.File{Path: file}})
	}
	if v.Err != nil {
		return res, v.Err
	}
	for _, p := range v.Refused {
		sev := framework.Error
		msg := p.Message
		if v.Overridden {
			sev, msg = framework.Warning, "let through by spec.promotion.override: "+msg
		}
		res = append(res, &framework.Result{Severity: sev, Message: msg, File: &framework.File{Path: file}, Field: &framework.Field{Path: p.Field}})
	}
	if len(v.Refused) > 0 && !v.Overridden {
		return res, fmt.Errorf("%s: the order of spec.promotion.after refuses %d step(s), said above; nothing was written", file, len(v.Refused))
	}
	return res, nil
}

// besides reads what a tree's config names beside it: the Namespace
// manifests of spec.namespaces.from and the GitPatches of spec.patchesFrom.
func besides(dir, name, file string, cfg *config.IstioGitOps) (namespaces fileset.Set, patches map[string]fileset.Set, err error) {
	namespaces, err = NamespacesFrom(dir, name, file, cfg)
	if err != nil {
		return nil, nil, err
	}
	patches, err = ReadFrom(dir, name, file, "spec.patchesFrom", cfg.Spec.PatchesFrom)
	return namespaces, patches, err
}

// NamespacesFrom reads the Namespace manifests of spec.namespaces.from
// (see ReadFrom), in the order the config lists them.
func NamespacesFrom(dir, name, file string, cfg *config.IstioGitOps) (fileset.Set, error) {
	ns, err := ReadFrom(dir, name, file, "spec.namespaces.from", cfg.Spec.Namespaces.From)
	if err != nil {
		return nil, err
	}
	var out fileset.Set
	for _, p := range cfg.Spec.Namespaces.From {
		out = append(out, ns[p]...)
	}
	return out, nil
}
