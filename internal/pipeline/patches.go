package pipeline

import (
	"cmp"
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
	// carriedFrom is the revision a carried-forward copy came from, origin
	// the file of the patch it was made from.
	carriedFrom, origin string
}

// patchesOf parses a revision's GitPatches, sorted by name: the order they
// apply in.
func (r *run) patchesOf(rev string) ([]gitPatch, error) {
	var ps []gitPatch
	for _, n := range r.patches[rev] {
		p, err := patch.Parse(n)
		if err != nil {
			return nil, atFile(krm.Path(n), err)
		}
		ps = append(ps, gitPatch{Patch: p, file: krm.Path(n)})
	}
	slices.SortFunc(ps, func(a, b gitPatch) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.file, b.file))
	})
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
		out = append(out, gitPatch{Patch: p, file: file, carriedFrom: rev.PatchesFrom, origin: f.file})
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
			return fmt.Errorf("%s: GitPatch %q was applied to %s/generated/ and then removed from %s; a patch cannot be undone in place: %s",
				r.abs(path.Join(rev, layout.Generated, layout.StateFile)), a.Name, rev, r.abs(path.Join(rev, layout.Patches)), regen)
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
	// Only the patched files are the function's new output: the others
	// keep their recorded digests, so a hand edit is still reported when
	// the revision is regenerated.
	for i, o := range objs {
		if o == r.objs[rev][i] {
			continue
		}
		b, err := layout.FileBytes(o)
		if err != nil {
			return fmt.Errorf("%s: %w", krm.Path(o), err)
		}
		p, _ := r.rel(o)
		st.Spec.Files[strings.TrimPrefix(p, rev+"/")] = state.Digest(b)
	}
	r.objs[rev] = objs
	return nil
}

// apply applies patches in order to a revision's objects and records them.
// Each patched file must still hold the same single object.
func (r *run) apply(rev string, objs []*yaml.RNode, ps []gitPatch) ([]*yaml.RNode, error) {
	if len(ps) == 0 {
		return objs, nil
	}
	objs = slices.Clone(objs)
	at := map[string]int{}
	for i, o := range objs {
		p, _ := r.rel(o)
		at[p] = i
	}
	// files holds the bytes of the files patched so far: a patch touches a
	// few files, so only its targets are laid out.
	files := map[string][]byte{}
	load := func(p gitPatch) error {
		targets, err := p.Targets(rev)
		if err != nil {
			return nil // Apply reports it, naming the patch.
		}
		for _, t := range targets {
			i, ok := at[t]
			if _, done := files[t]; done || !ok {
				continue
			}
			b, err := layout.FileBytes(objs[i])
			if err != nil {
				return fmt.Errorf("%s: %w", r.abs(t), err)
			}
			files[t] = b
		}
		return nil
	}
	st := r.records[rev]
	// changedBy names the patch of this run that last changed each file.
	changedBy := map[string]string{}
	for _, p := range ps {
		if err := load(p); err != nil {
			return nil, err
		}
		changes, err := p.Apply(rev, files)
		if err != nil {
			return nil, r.patchError(rev, p, files, changedBy, err)
		}
		for _, c := range changes {
			node, err := patch.CheckSameObject(c.Path, files[c.Path], c.Content)
			if err != nil {
				return nil, r.patchError(rev, p, files, changedBy, err)
			}
			if err := krm.SetPath(node, r.abs(c.Path)); err != nil {
				return nil, err
			}
			files[c.Path] = c.Content
			objs[at[c.Path]] = node
			changedBy[c.Path] = p.Name
		}
		st.Spec.Patches = append(st.Spec.Patches, state.Patch{Name: p.Name, Digest: p.Digest})
		r.info(p.Node, p.file, fmt.Sprintf("applied to %d file(s) of %s/generated/", len(changes), rev))
	}
	return objs, nil
}

// patchError names the patch and its file, once, and says what to do
// when the file already carries the patch's change.
func (r *run) patchError(rev string, p gitPatch, files map[string][]byte, changedBy map[string]string, err error) error {
	if named := fmt.Sprintf("%s %q", patch.Kind, p.Name); !strings.Contains(err.Error(), named) {
		err = fmt.Errorf("%s: %w", named, err)
	}
	err = atFile(p.file, err)
	var conflict *patch.ConflictError
	if errors.As(err, &conflict) && conflict.Applied {
		return fmt.Errorf("%w: %s", err, r.alreadyApplied(rev, p, conflict.Path, files[conflict.Path], changedBy[conflict.Path]))
	}
	if p.carriedFrom != "" {
		err = fmt.Errorf("%w; it was carried forward from %s of revision %q: port it by hand and save it as %s", err, p.origin, p.carriedFrom, p.file)
	}
	return err
}

// atFile names file in err, unless err names it already.
func atFile(file string, err error) error {
	if strings.Contains(err.Error(), file) {
		return err
	}
	return fmt.Errorf("%s: %w", file, err)
}

// alreadyApplied says why a file can already carry a patch's change that
// the record does not list, and what to do about it. by is the patch of
// this run that changed the file last, if any.
func (r *run) alreadyApplied(rev string, p gitPatch, file string, content []byte, by string) string {
	_, fresh := r.sources[rev]
	recorded, known := r.records[rev].Spec.Files[strings.TrimPrefix(file, rev+"/")]
	switch {
	case by != "":
		return fmt.Sprintf("GitPatch %q, applied before it in name order, made the change already: the two patches overlap, delete one", by)
	case p.carriedFrom != "":
		// Only patchesFrom decides what is carried: a patch that is no
		// longer needed cannot be left behind on its own.
		return fmt.Sprintf("revision %q's fresh files make the change without %s, so it must not be carried forward: "+
			"remove patchesFrom from revision %q and copy the patches it still needs into %s by hand",
			rev, p.origin, rev, path.Dir(p.file))
	case fresh && r.cfg.DriftGuards():
		return fmt.Sprintf("revision %q's fresh files make the change without the patch (istioctl's output or the drift guards): delete %s", rev, p.file)
	case fresh:
		return fmt.Sprintf("revision %q's fresh files make the change without the patch (istioctl's output has it): delete %s", rev, p.file)
	case known && recorded != state.Digest(content):
		return fmt.Sprintf("%s was edited by hand since the last run: restore it (git checkout -- %s) and run again, and the patch makes the change",
			r.abs(file), r.abs(file))
	default:
		return fmt.Sprintf("revision %q's files make the change without the patch: delete %s", rev, p.file)
	}
}

func (r *run) sourceOf(rev string) string {
	if c, ok := r.cfg.Revision(rev); ok {
		return c.Source
	}
	return path.Join(rev, config.SourceFile)
}
