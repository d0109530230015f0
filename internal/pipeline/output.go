package pipeline

import (
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// output is the tree after the run, kustomizations apart: every file that
// stays as it was is passed through as read (it is not written again),
// every other is new; sources and retired folders are gone.
func output(t *tree, revs map[string]*revOut, common *commonOut, r *rendered) (fileset.Set, error) {
	var out fileset.Set
	out = append(out, t.outside...)
	out = append(out, t.noPath...)
	out = append(out, t.user...)
	for _, rev := range t.cfg.RevisionNames() {
		ro := revs[rev]
		for _, p := range config.SortedKeys(ro.files) {
			out = append(out, ro.files[p])
		}
		for _, name := range config.SortedKeys(ro.applied) {
			out = append(out, ro.applied[name])
		}
		out = append(out, ro.carried...)
		if ro.record == nil {
			continue
		}
		f, err := recordFile(t, ro.record, t.revisions[rev], path.Join(rev, layout.Generated, layout.StateFile))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	for _, p := range config.SortedKeys(common.files) {
		out = append(out, common.files[p])
	}
	// Each rendered object records its own pointer: a record of an older
	// istio-gitops loses its pointers block.
	common.record.Spec.Pointers = nil
	f, err := recordFile(t, common.record, t.common, path.Join(layout.Common, layout.StateFile))
	if err != nil {
		return nil, err
	}
	out = append(out, f)
	out = append(out, r.files...)
	return out, nil
}

// recordFile is a folder's record as a file: the one read when the record
// says the same, a new one otherwise.
func recordFile(t *tree, st *state.State, fo *folder, p string) (*fileset.File, error) {
	if fo.record != nil && fo.recordFile != nil && fo.record.Equal(st) {
		return fo.recordFile, nil
	}
	n, err := st.Node()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.runPath(p), err)
	}
	return newFile(t, p, n)
}

// newFile is a new file at tree path p holding n.
func newFile(t *tree, p string, n *yaml.RNode) (*fileset.File, error) {
	full := t.runPath(p)
	if err := object.SetPath(n, full, 0); err != nil {
		return nil, err
	}
	data, err := layout.FileBytes(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", full, err)
	}
	return fileset.FromBytes(full, data, n), nil
}

// summarize says, for each folder a regeneration wrote, how many of its
// files the run adds, changes and deletes, against what the last run wrote
// (its record): what changed, not what was laid out. The results are
// tagged api.WritesTag, for a command to drop when it fails to write them.
func summarize(t *tree, revs map[string]*revOut, common *commonOut, res *results) error {
	say := func(folder string, old *folder, now map[string]*fileset.File, src string) error {
		was := expected(old)
		if len(was) == 0 {
			for _, p := range old.paths() {
				d, err := old.files[p].Digest()
				if err != nil {
					return err
				}
				was[p] = d
			}
		}
		var added, changed, deleted int
		for _, p := range config.SortedKeys(now) {
			d, err := now[p].Digest()
			if err != nil {
				return err
			}
			switch w, ok := was[p]; {
			case !ok:
				added++
			case w != d:
				changed++
			}
		}
		for p := range was {
			if _, ok := now[p]; !ok {
				deleted++
			}
		}
		// "7 files changed, 2 added, 1 deleted"
		var parts []string
		for _, c := range []struct {
			n    int
			what string
		}{{changed, "changed"}, {added, "added"}, {deleted, "deleted"}} {
			switch {
			case c.n == 0:
			case len(parts) > 0:
				parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
			case c.n == 1:
				parts = append(parts, "1 file "+c.what)
			default:
				parts = append(parts, fmt.Sprintf("%d files %s", c.n, c.what))
			}
		}
		what := "no file changed"
		if len(parts) > 0 {
			what = strings.Join(parts, ", ")
		}
		r := res.add(framework.Info, nil, "", fmt.Sprintf("%s: %s, from %s", t.runPath(folder), what, src))
		r.Tags = map[string]string{api.WritesTag: t.runPath(folder)}
		return nil
	}
	for _, rev := range t.cfg.RevisionNames() {
		ro := revs[rev]
		if !ro.regenerated {
			continue
		}
		src := t.sources[rev].Path
		if err := say(path.Join(rev, layout.Generated), t.revisions[rev], ro.files, src); err != nil {
			return err
		}
		if ro.common != nil {
			if err := say(layout.Common, t.common, common.files, src); err != nil {
				return err
			}
		}
	}
	return nil
}
