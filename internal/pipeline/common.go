package pipeline

import (
	"fmt"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// commonOut is common/ after the run, rendered objects apart.
type commonOut struct {
	// files are common/'s generated files, by path relative to common/.
	files map[string]*fileset.File
	// record is common/'s record after the run (its pointers are set by
	// the moves stage); recordFile the record as read.
	record     *state.State
	recordFile *fileset.File
}

// commonFolder takes common/ from the newest revision's fresh output, or
// keeps it as it is when the newest revision is not regenerated (after a
// retirement of the newest, common/ keeps what it holds until a revision
// is regenerated).
func commonFolder(t *tree, revs map[string]*revOut, o *old, opts Options, res *results) (*commonOut, error) {
	newest := t.cfg.Newest()
	fresh := revs[newest].common
	if fresh == nil {
		out := &commonOut{files: t.common.files, recordFile: t.common.recordFile}
		if t.common.record != nil {
			// A copy: the moves stage sets its pointers, and the record as
			// read must stay what the tree said.
			out.record = t.common.record.Clone()
		} else {
			out.record = state.New(api.KindCommonState, layout.Common)
			if err := recordFiles(out.record, out.files); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	rev, _ := t.cfg.Revision(newest)
	src := t.sources[newest]
	allow := rev.AllowRemovals || opts.AllowRemovals
	if err := guardRemovals(t, t.common, fresh, src, allow, fmt.Sprintf("spec.revisions[%d].allowRemovals", indexOf(t.cfg, newest))); err != nil {
		return nil, err
	}
	if err := reportReplaced(t, t.common, fresh, res); err != nil {
		return nil, err
	}
	st := state.New(api.KindCommonState, layout.Common)
	st.Spec.Revision = newest
	st.Spec.Version = revs[newest].version
	if err := recordFiles(st, fresh); err != nil {
		return nil, err
	}
	return &commonOut{files: fresh, record: st}, nil
}
