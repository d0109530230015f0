package fleet

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/history"
	"github.com/istio-gitops/istio-gitops/internal/promotion"
	"github.com/istio-gitops/istio-gitops/internal/status"
)

// Report is what `fleet status` says: every cluster under a folder, where
// each stands, since when, and what its order allows next.
type Report struct {
	// Head is the commit the history was read from (empty outside Git).
	Head string `json:"head,omitempty"`
	// Clock is when the report was made: the ages are counted to it.
	Clock    time.Time       `json:"time"`
	Clusters []ClusterReport `json:"clusters"`
	// Error says why the report could not be made.
	Error string `json:"error,omitempty"`
}

// ClusterReport is one cluster.
type ClusterReport struct {
	Name string `json:"name"`
	// Path is the tree's folder, relative to the folder given.
	Path string `json:"path"`
	// After are the clusters it follows, as spec.promotion.after lists
	// them; Soak the time they must run a version first.
	After     []string         `json:"after"`
	Soak      string           `json:"soak,omitempty"`
	Revisions []RevisionReport `json:"revisions"`
	Pointers  []PointerReport  `json:"pointers"`
	Next      []promotion.Next `json:"next"`
	Problems  []string         `json:"problems,omitempty"`
	upstreams []promotion.Upstream
}

// RevisionReport is one revision of a cluster.
type RevisionReport struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Generated says the tree holds its files yet.
	Generated bool `json:"generated"`
	// Pointers are the config fields pointing at it.
	Pointers []string `json:"pointers"`
	// Namespaces counts the namespaces on it (the tree's and those of
	// spec.namespaces.from); Workloads the workloads that pick it
	// themselves.
	Namespaces int `json:"namespaces"`
	Workloads  int `json:"workloads"`
}

// PointerReport is where one config field points, and since when.
type PointerReport struct {
	Field    string `json:"field"`
	Revision string `json:"revision"`
	Version  string `json:"version"`
	// Since is the committer time of the oldest commit since which the
	// field has pointed at this version, Commit that commit.
	Since  *time.Time `json:"since,omitempty"`
	Commit string     `json:"commit,omitempty"`
	// AtLeast says the history is shallow: it held at least since then.
	AtLeast bool `json:"atLeast,omitempty"`
	// Uncommitted says the working tree points the field elsewhere than
	// HEAD does.
	Uncommitted bool `json:"uncommitted,omitempty"`
}

// Status reports every cluster under root, as of clock. The history of
// HEAD is walked once for all of them.
func Status(root string, clock time.Time) (*Report, error) {
	clusters, unlock, err := findLocked(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := &Report{Clock: clock.UTC(), Clusters: []ClusterReport{}}
	// The clusters of every spec.promotion.after: those found, and those
	// outside root, read once each.
	all := slices.Clone(clusters)
	byDir := map[string]int{}
	for i, c := range clusters {
		byDir[key(c.Dir)] = i
	}
	links := make([][]int, len(clusters))
	problems := make([][]string, len(clusters))
	graph := newOrder()
	for i, c := range clusters {
		for j, after := range c.Config.Upstreams() {
			d := filepath.Join(c.Dir, filepath.FromSlash(after))
			k, ok := byDir[key(d)]
			if !ok {
				u, err := Load(d, path.Join(c.Path, after))
				if err != nil {
					problems[i] = append(problems[i], fmt.Sprintf("spec.promotion.after[%d]: %q: %v", j, after, err))
					continue
				}
				k = len(all)
				all = append(all, u)
				byDir[key(d)] = k
			}
			links[i] = append(links[i], k)
		}
		if err := graph.cycle(c.Dir, c.Path, c.File(), c.Config); err != nil {
			problems[i] = append(problems[i], err.Error())
		}
	}
	states := make([]*promotion.State, len(all))
	for i, c := range all {
		states[i] = State(c.Config, c.Root, c.Files)
	}
	timelines := make([]*promotion.Timeline, len(all))
	repo, err := history.Open(root)
	switch {
	case errors.Is(err, history.ErrNotRepository):
	case err != nil:
		return nil, err
	default:
		defer repo.Close()
		head, err := repo.Head()
		if err != nil {
			return nil, err
		}
		rep.Head = head.Hash.String()
		var trees []promotion.Tree
		for _, c := range all {
			rel, err := repo.Rel(c.Dir)
			if err != nil {
				return nil, err
			}
			trees = append(trees, promotion.Tree{Folder: rel, ConfigFile: c.ConfigFile})
		}
		if timelines, err = promotion.Timelines(repo, head, trees); err != nil {
			return nil, err
		}
	}
	for _, i := range inOrder(len(clusters), links) {
		c := clusters[i]
		cr := ClusterReport{Name: c.Config.Metadata.Name, Path: c.Path, After: c.Config.Upstreams(), Problems: problems[i]}
		if cr.After == nil {
			cr.After = []string{}
		}
		if pr := c.Config.Spec.Promotion; pr != nil {
			cr.Soak = pr.Soak
		}
		if err := cr.revisions(c, states[i]); err != nil {
			return nil, err
		}
		cr.pointers(states[i], timelines[i])
		for _, k := range links[i] {
			u := promotion.Upstream{Path: all[k].Path, Name: all[k].Config.Metadata.Name, State: states[k]}
			if repo != nil {
				u.State, u.Timeline = timelines[k].Head(), timelines[k]
			}
			cr.upstreams = append(cr.upstreams, u)
		}
		check := &promotion.Check{Config: c.Config, File: c.File(), Now: states[i], Upstreams: cr.upstreams,
			InGit: repo != nil, Past: timelines[i], Before: timelines[i].Head(), Clock: clock}
		if repo == nil {
			check.Before = Recorded(c.Config, c.Root, c.Files)
		}
		// The advice is on the committed cluster; a step not committed
		// yet is judged apart.
		committed := *check
		if head := timelines[i].Head(); head != nil {
			committed.Now = head
		}
		cr.Next = committed.Advise()
		if repo != nil && !sameState(committed.Now, states[i]) {
			cr.Next = append(cr.Next, uncommitted(check))
		}
		rep.Clusters = append(rep.Clusters, cr)
	}
	// The histories are read as the reports ask them: what reading met is
	// known once every cluster is reported.
	for _, tl := range timelines {
		if err := tl.Err(); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// inOrder lists the clusters in the fleet's order: those that follow no
// one first, then each after the clusters it follows (by the longest chain
// of spec.promotion.after above it), in path order among equals.
func inOrder(n int, links [][]int) []int {
	depth := make([]int, n)
	var of func(i int, seen map[int]bool) int
	of = func(i int, seen map[int]bool) int {
		if depth[i] > 0 || seen[i] {
			return depth[i]
		}
		seen[i] = true
		d := 1
		for _, k := range links[i] {
			if k < n {
				d = max(d, of(k, seen)+1)
			}
		}
		depth[i] = d
		return d
	}
	out := make([]int, n)
	for i := range n {
		of(i, map[int]bool{})
		out[i] = i
	}
	slices.SortStableFunc(out, func(a, b int) int { return depth[a] - depth[b] })
	return out
}

// key names a folder on disk once, however it was reached.
func key(d string) string {
	abs, err := filepath.Abs(d)
	if err != nil {
		return d
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// revisions fills the revisions' rows: versions, pointers, namespaces.
func (cr *ClusterReport) revisions(c *Cluster, st *promotion.State) error {
	ns, err := NamespacesFrom(c.Dir, c.Path, c.File(), c.Config)
	if err != nil {
		cr.Problems = append(cr.Problems, err.Error())
	}
	s, err := status.OfFiles(c.Node, append(slices.Clone(c.Files), ns...))
	if err != nil {
		return fmt.Errorf("%s: %w", c.File(), err)
	}
	sum := s.Summary()
	for _, r := range sum.Revisions {
		rr := RevisionReport{Name: r.Name, Version: st.Version(r.Name), Generated: r.Generated, Pointers: []string{},
			Namespaces: r.Namespaces, Workloads: r.Workloads}
		if rr.Version == "" {
			rr.Version = r.Version
		}
		for _, p := range st.Pointers {
			if p.Revision == r.Name {
				rr.Pointers = append(rr.Pointers, p.Field)
			}
		}
		cr.Revisions = append(cr.Revisions, rr)
	}
	return nil
}

// pointers fills where each field points and since when.
func (cr *ClusterReport) pointers(st *promotion.State, tl *promotion.Timeline) {
	cr.Pointers = []PointerReport{}
	head := tl.Head()
	for _, p := range st.Pointers {
		ver := st.Version(p.Revision)
		pr := PointerReport{Field: p.Field, Revision: p.Revision, Version: ver}
		if tl != nil {
			rev, ok := head.Pointer(p.Field)
			if !ok || rev != p.Revision || head.Version(rev) != ver {
				pr.Uncommitted = true
			} else if since, ok, known := tl.Since(func(s *promotion.State) bool { return s.PointerVersion(p.Field) == ver }); ok {
				when := since.When.UTC()
				pr.Since, pr.Commit, pr.AtLeast = &when, since.Short(), !known
			}
		}
		cr.Pointers = append(cr.Pointers, pr)
	}
}

// since is a pointer's age as a table shows it: 3d2h, >=3d2h on a shallow
// history, uncommitted, or nothing outside Git.
func (p PointerReport) since(clock time.Time) string {
	switch {
	case p.Uncommitted:
		return "uncommitted"
	case p.Since == nil:
		return ""
	case p.AtLeast:
		return ">=" + promotion.Human(clock.Sub(*p.Since))
	}
	return promotion.Human(clock.Sub(*p.Since))
}

// pointerOf is the report of a field, if the cluster sets it.
func (cr *ClusterReport) pointerOf(field string) (PointerReport, bool) {
	for _, p := range cr.Pointers {
		if p.Field == field {
			return p, true
		}
	}
	return PointerReport{}, false
}

// order says whom the cluster follows, for the NEXT lines.
func (cr *ClusterReport) order() string {
	if len(cr.After) == 0 {
		return ""
	}
	var names []string
	for _, u := range cr.upstreams {
		names = append(names, u.Name)
	}
	if len(names) == 0 {
		names = cr.After
	}
	s := "after " + strings.Join(names, ", ")
	if cr.Soak != "" {
		s += " (soak " + cr.Soak + ")"
	}
	return s
}

// sameState reports whether two states list the same versions and point
// each field at the same version.
func sameState(a, b *promotion.State) bool {
	if !slices.Equal(a.ListedVersions(), b.ListedVersions()) || len(a.Pointers) != len(b.Pointers) {
		return false
	}
	for _, p := range a.Pointers {
		rev, ok := b.Pointer(p.Field)
		if !ok || b.Version(rev) != a.Version(p.Revision) {
			return false
		}
	}
	return true
}

// uncommitted says what the order makes of the changes of the working
// tree, in a line.
func uncommitted(check *promotion.Check) promotion.Next {
	v := check.Run()
	n := promotion.Next{Action: "uncommitted"}
	switch {
	case v.Err != nil:
		n.Message = "uncommitted changes: " + v.Err.Error()
	case len(v.Refused) == 0:
		n.Message = "uncommitted changes: the order allows them"
	default:
		var why []string
		for _, p := range v.Refused {
			switch {
			case p.Allowed != nil:
				why = append(why, fmt.Sprintf("%s in %s", p.Field, promotion.Human(p.Allowed.Sub(check.Clock))))
				if n.Allowed == nil || p.Allowed.After(*n.Allowed) {
					n.Allowed = p.Allowed
				}
			case p.Upstream != "":
				why = append(why, fmt.Sprintf("%s once %s runs it", p.Field, p.Upstream))
			default:
				why = append(why, fmt.Sprintf("%s once a cluster it follows lists it", p.Field))
			}
		}
		verb := "refuses"
		if v.Overridden {
			verb = "would refuse (overridden)"
		}
		n.Message = "uncommitted changes: the order " + verb + " them for now: " + strings.Join(why, ", ")
	}
	return n
}
