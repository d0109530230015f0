package pipeline

import (
	"fmt"
	"path"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// output is the tree after the run, kustomizations apart: every file that
// stays as it was is passed through as read (it is not written again),
// every other is new; sources and retired folders are gone.
func output(t *tree, revs map[string]*revOut, common *commonOut, r *rendered, pointers *state.Pointers) (fileset.Set, error) {
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
	common.record.Spec.Pointers = pointers
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
