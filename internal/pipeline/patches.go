package pipeline

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/patch"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// gitPatch is a parsed GitPatch and the file it lives in.
type gitPatch struct {
	*patch.Patch
	file string
	// carriedFrom is the revision a carried-forward copy came from.
	carriedFrom string
}

// patchesOf parses a revision's GitPatches, sorted by name: the order they
// apply in.
func (r *run) patchesOf(rev string) ([]gitPatch, error) {
	var ps []gitPatch
	for _, n := range r.patches[rev] {
		p, err := patch.Parse(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", krm.Path(n), err)
		}
		ps = append(ps, gitPatch{Patch: p, file: krm.Path(n)})
	}
	slices.SortFunc(ps, func(a, b gitPatch) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(ps); i++ {
		if ps[i].Name == ps[i-1].Name {
			return nil, fmt.Errorf("%s and %s: two GitPatches of revision %q must not share the name %q", ps[i-1].file, ps[i].file, rev, ps[i].Name)
		}
	}
	return ps, nil
}

// carried copies the patches of rev.PatchesFrom that rev has no patch of
// the same name for, rewriting the revision in paths and content. The
// copies are written into rev's patches/ folder.
func (r *run) carried(rev config.Revision, own []gitPatch) ([]gitPatch, error) {
	if rev.PatchesFrom == "" {
		return nil, nil
	}
	from, err := r.patchesOf(rev.PatchesFrom)
	if err != nil {
		return nil, err
	}
	var out []gitPatch
	for _, f := range from {
		c, err := patch.CarryForward(f.Node, rev.PatchesFrom, rev.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: carry forward to %q: %w", f.file, rev.Name, err)
		}
		if slices.ContainsFunc(own, func(p gitPatch) bool { return p.Name == c.GetName() }) {
			continue
		}
		file := r.abs(path.Join(rev.Name, layout.Patches, c.GetName()+".yaml"))
		if err := krm.SetPath(c, file); err != nil {
			return nil, err
		}
		p, err := patch.Parse(c)
		if err != nil {
			return nil, fmt.Errorf("%s: carried from %s: %w", file, f.file, err)
		}
		r.out = append(r.out, c)
		r.info(c, file, fmt.Sprintf("carried forward from %s", f.file))
		out = append(out, gitPatch{Patch: p, file: file, carriedFrom: rev.PatchesFrom})
	}
	return out, nil
}

// applyPatches applies a regenerated revision's patches, its own and those
// carried forward, to its fresh objects, in name order.
func (r *run) applyPatches(rev config.Revision, objs []*yaml.RNode) ([]*yaml.RNode, error) {
	own, err := r.patchesOf(rev.Name)
	if err != nil {
		return nil, err
	}
	carried, err := r.carried(rev, own)
	if err != nil {
		return nil, err
	}
	all := append(own, carried...)
	slices.SortFunc(all, func(a, b gitPatch) int { return strings.Compare(a.Name, b.Name) })
	return r.apply(rev.Name, objs, all)
}

// applyNewPatches applies to a kept revision the patches added since its
// files were written. A recorded patch that changed or went away cannot be
// undone in place.
func (r *run) applyNewPatches(rev string) error {
	ps, err := r.patchesOf(rev)
	if err != nil {
		return err
	}
	st := r.records[rev]
	current := map[string]gitPatch{}
	for _, p := range ps {
		current[p.Name] = p
	}
	regen := fmt.Sprintf("regenerate revision %q from istioctl output (write %s and run again)", rev, r.abs(r.sourceOf(rev)))
	for _, a := range st.Spec.Patches {
		p, ok := current[a.Name]
		switch {
		case !ok:
			return fmt.Errorf("%s: GitPatch %q was applied to %s/generated/ and then removed; a patch cannot be undone in place: %s",
				r.abs(rev), a.Name, rev, regen)
		case p.Digest != a.Digest:
			return fmt.Errorf("%s: GitPatch %q changed after it was applied to %s/generated/ (recorded %s, now %s); a patch cannot be undone in place: %s",
				p.file, a.Name, rev, a.Digest, p.Digest, regen)
		}
	}
	var fresh []gitPatch
	for _, p := range ps {
		if !slices.ContainsFunc(st.Spec.Patches, func(a state.Patch) bool { return a.Name == p.Name }) {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if r.states[rev] == nil {
		return fmt.Errorf("%s: revision %q has no record of the patches its files carry (%s/generated/%s): %s",
			fresh[0].file, rev, rev, layout.StateFile, regen)
	}
	objs, err := r.apply(rev, r.objs[rev], fresh)
	if err != nil {
		return err
	}
	r.objs[rev] = objs
	return r.record(rev, objs)
}

// apply applies patches in order to a revision's objects and records them.
// Each patched file must still hold the same single object.
func (r *run) apply(rev string, objs []*yaml.RNode, ps []gitPatch) ([]*yaml.RNode, error) {
	if len(ps) == 0 {
		return objs, nil
	}
	objs = slices.Clone(objs)
	files := map[string][]byte{}
	at := map[string]int{}
	for i, o := range objs {
		p, _ := r.rel(o)
		b, err := layout.FileBytes(o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.abs(p), err)
		}
		files[p] = b
		at[p] = i
	}
	st := r.records[rev]
	for _, p := range ps {
		changes, err := p.Apply(rev, files)
		if err != nil {
			return nil, r.patchError(p, err)
		}
		for _, c := range changes {
			node, err := patch.CheckSameObject(c.Path, files[c.Path], c.Content)
			if err != nil {
				return nil, r.patchError(p, err)
			}
			if err := krm.SetPath(node, r.abs(c.Path)); err != nil {
				return nil, err
			}
			files[c.Path] = c.Content
			objs[at[c.Path]] = node
		}
		st.Spec.Patches = append(st.Spec.Patches, state.Patch{Name: p.Name, Digest: p.Digest})
		r.info(p.Node, p.file, fmt.Sprintf("applied to %d file(s) of %s/generated/", len(changes), rev))
	}
	return objs, nil
}

func (r *run) patchError(p gitPatch, err error) error {
	msg := fmt.Errorf("%s: %w", p.file, err)
	if p.carriedFrom != "" {
		msg = fmt.Errorf("%w; it was carried forward from revision %q: port it by hand and save it as %s", msg, p.carriedFrom, p.file)
	}
	var conflict *patch.ConflictError
	if errors.As(err, &conflict) && conflict.Applied {
		msg = fmt.Errorf("%w (the file already carries the change: drop the patch, or regenerate the revision)", msg)
	}
	return msg
}

func (r *run) sourceOf(rev string) string {
	if c, ok := r.cfg.Revision(rev); ok {
		return c.Source
	}
	return path.Join(rev, config.SourceFile)
}
