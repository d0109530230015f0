package pipeline

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
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
	// madeFor is, on a GitPatch of spec.patchesFrom rewritten for this
	// revision, the revision it was made for; file is the shared file.
	madeFor string
}

// patchesOf parses a revision's GitPatches, sorted by name: the order they
// apply in.
func patchesOf(t *tree, rev string) ([]gitPatch, error) {
	var ps []gitPatch
	for _, f := range t.patches[rev] {
		objs, err := f.Objects()
		if err != nil {
			return nil, err
		}
		for _, n := range objs {
			if n.GetKind() != patch.Kind || !object.IsOurs(n) {
				continue
			}
			p, err := patch.Parse(n)
			if err != nil {
				return nil, atFile(f.Path, err)
			}
			if p.MadeFor != "" && p.MadeFor != rev {
				return nil, fmt.Errorf("%s: GitPatch %q: spec.revision: %q must be %q, the revision whose patches/ holds it (or be left out)", f.Path, p.Name, p.MadeFor, rev)
			}
			ps = append(ps, gitPatch{Patch: p, file: f.Path})
		}
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
func carried(t *tree, rev config.Revision, own []gitPatch, out *revOut, res *results) ([]gitPatch, error) {
	if rev.PatchesFrom == "" {
		return nil, nil
	}
	if _, listed := t.cfg.Revision(rev.PatchesFrom); !listed {
		return nil, fmt.Errorf("spec.revisions[%d].patchesFrom: %q is no longer listed, so revision %q cannot carry its patches when it is generated: the copies made when %q was first generated are in %s; remove patchesFrom",
			indexOf(t.cfg, rev.Name), rev.PatchesFrom, rev.Name, rev.Name, t.runPath(path.Join(rev.Name, layout.Patches))+"/")
	}
	from, err := patchesOf(t, rev.PatchesFrom)
	if err != nil {
		return nil, err
	}
	var ps []gitPatch
	for _, f := range from {
		c, err := patch.CarryForward(f.Node, rev.PatchesFrom, rev.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: carry forward to %q: %w", f.file, rev.Name, err)
		}
		if slices.ContainsFunc(own, func(p gitPatch) bool { return p.Name == c.GetName() }) {
			continue
		}
		file := t.runPath(path.Join(rev.Name, layout.Patches, c.GetName()+".yaml"))
		pf, err := fileset.FromObjects(file, c)
		if err != nil {
			return nil, err
		}
		p, err := patch.Parse(c)
		if err != nil {
			return nil, fmt.Errorf("%s: carried from %s: %w", file, f.file, err)
		}
		out.carried = append(out.carried, pf)
		res.info(c, file, fmt.Sprintf("carried forward from %s", f.file))
		ps = append(ps, gitPatch{Patch: p, file: file, carriedFrom: rev.PatchesFrom, origin: f.file})
	}
	return ps, nil
}

// applyPatches applies a regenerated revision's patches, its own and those
// carried forward, to its fresh files, in name order, and records them.
func applyPatches(t *tree, rev config.Revision, out *revOut, res *results) error {
	own, err := patchesOf(t, rev.Name)
	if err != nil {
		return err
	}
	carry, err := carried(t, rev, own, out, res)
	if err != nil {
		return err
	}
	all := append(own, carry...)
	shared, err := sharedFor(t, rev.Name, all, res)
	if err != nil {
		return err
	}
	all = append(all, shared...)
	slices.SortFunc(all, func(a, b gitPatch) int { return strings.Compare(a.Name, b.Name) })
	a := &applier{t: t, rev: rev.Name, out: out, fresh: true, res: res}
	for _, p := range all {
		if _, err := a.apply(p); err != nil {
			return err
		}
		out.record.Spec.Patches = append(out.record.Spec.Patches, state.Patch{Name: p.Name, Digest: p.Digest})
	}
	return nil
}

// applyNewPatches applies to a kept revision the patches added since its
// files were written, each recorded in a file of its own (so that two
// pull requests adding patches merge cleanly). A recorded patch that
// changed or went away cannot be undone in place.
func applyNewPatches(t *tree, rev string, out *revOut, res *results) error {
	ps, err := patchesOf(t, rev)
	if err != nil {
		return err
	}
	// A port is said when the revision is generated, not on every run.
	shared, err := sharedFor(t, rev, ps, &results{})
	if err != nil {
		return err
	}
	ps = append(ps, shared...)
	slices.SortFunc(ps, func(a, b gitPatch) int { return strings.Compare(a.Name, b.Name) })
	fo := t.revisions[rev]
	current := map[string]gitPatch{}
	for _, p := range ps {
		current[p.Name] = p
	}
	regen := fmt.Sprintf("regenerate revision %q from istioctl output (write %s and run again)", rev, t.runPath(sourceOf(t.cfg, rev)))
	applied := map[string]string{}
	if fo.record != nil {
		for _, a := range fo.record.Spec.Patches {
			applied[a.Name] = a.Digest
		}
	}
	for name, a := range fo.applied {
		applied[name] = a.Spec.Digest
	}
	for _, name := range config.SortedKeys(applied) {
		p, ok := current[name]
		switch {
		case !ok:
			return fmt.Errorf("%s: GitPatch %q was applied to %s/generated/ and then removed from %s; a patch cannot be undone in place: %s",
				t.runPath(recordPath(fo)), name, rev, t.runPath(path.Join(rev, layout.Patches)), regen)
		case p.Digest != applied[name]:
			return fmt.Errorf("%s: GitPatch %q changed after it was applied to %s/generated/ (recorded %s, now %s); a patch cannot be undone in place: %s",
				p.file, name, rev, applied[name], p.Digest, regen)
		}
	}
	var fresh []gitPatch
	for _, p := range ps {
		if _, done := applied[p.Name]; !done {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if fo.record == nil {
		return fmt.Errorf("%s: revision %q has no record of the patches its files carry (%s): %s",
			fresh[0].file, rev, t.runPath(recordPath(fo)), regen)
	}
	out.files = maps.Clone(out.files)
	a := &applier{t: t, rev: rev, out: out, res: res}
	for _, p := range fresh {
		changed, err := a.apply(p)
		if err != nil {
			return err
		}
		rec := state.NewApplied(p.Name, p.Digest)
		for _, c := range changed {
			d, err := out.files[c].Digest()
			if err != nil {
				return err
			}
			rec.Spec.Files[c] = d
		}
		n, err := rec.Node()
		if err != nil {
			return err
		}
		f, err := fileset.FromObjects(t.runPath(path.Join(rev, layout.Generated, appliedDir, p.Name+".yaml")), n)
		if err != nil {
			return err
		}
		out.applied[p.Name] = f
		out.patched = append(out.patched, p.Name)
	}
	return nil
}

// applier applies patches in order to a revision's files. Each patched
// file must still hold the same single object.
type applier struct {
	t     *tree
	rev   string
	out   *revOut
	fresh bool
	res   *results
	// changedBy names the patch of this run that last changed each file
	// (tree-relative path).
	changedBy map[string]string
}

// apply applies one patch and returns the files it changed, relative to
// the revision folder.
func (a *applier) apply(p gitPatch) ([]string, error) {
	if a.changedBy == nil {
		a.changedBy = map[string]string{}
	}
	// A patch touches a few files: only its targets are read.
	files := map[string][]byte{}
	if targets, err := p.Targets(a.rev); err == nil {
		for _, target := range targets {
			if field, ok := a.t.rendered[a.t.runPath(target)]; ok {
				return nil, atFile(p.file, fmt.Errorf("%s %q: %s is rendered from the config (%s), not generated from istioctl output, and every run renders it again: %s",
					patch.Kind, p.Name, a.t.runPath(target), field, renderedInstead(field)))
			}
			f, ok := a.out.files[strings.TrimPrefix(target, a.rev+"/")]
			if !ok {
				continue
			}
			b, err := f.Bytes()
			if err != nil {
				return nil, err
			}
			files[target] = b
		}
	}
	changes, err := p.Apply(a.rev, files)
	if err != nil {
		return nil, a.patchError(p, files, err)
	}
	var changed []string
	for _, c := range changes {
		node, err := patch.CheckSameObject(c.Path, files[c.Path], c.Content)
		if err != nil {
			return nil, a.patchError(p, files, err)
		}
		full := a.t.runPath(c.Path)
		if err := object.SetPath(node, full, 0); err != nil {
			return nil, err
		}
		rel := strings.TrimPrefix(c.Path, a.rev+"/")
		a.out.files[rel] = fileset.FromBytes(full, c.Content, node)
		a.changedBy[c.Path] = p.Name
		changed = append(changed, rel)
	}
	a.res.info(p.Node, p.file, fmt.Sprintf("applied to %d file(s) of %s/generated/", len(changes), a.rev))
	return changed, nil
}

// patchError names the patch and its file, once, and says what to do
// when the file already carries the patch's change.
func (a *applier) patchError(p gitPatch, files map[string][]byte, err error) error {
	if named := fmt.Sprintf("%s %q", patch.Kind, p.Name); !strings.Contains(err.Error(), named) {
		err = fmt.Errorf("%s: %w", named, err)
	}
	err = atFile(p.file, err)
	var conflict *patch.ConflictError
	if errors.As(err, &conflict) && conflict.Applied {
		return fmt.Errorf("%w: %s", err, a.alreadyApplied(p, conflict.Path, files[conflict.Path], a.changedBy[conflict.Path]))
	}
	if p.carriedFrom != "" {
		err = fmt.Errorf("%w; it was carried forward from %s of revision %q: port it by hand and save it as %s", err, p.origin, p.carriedFrom, p.file)
	}
	if p.madeFor != "" {
		err = fmt.Errorf("%w; it is shared by spec.patchesFrom, made for revision %q: port it for revision %q by hand and save it as %s, which is used instead",
			err, p.madeFor, a.rev, a.t.runPath(path.Join(a.rev, layout.Patches, p.Name+".yaml")))
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
func (a *applier) alreadyApplied(p gitPatch, file string, content []byte, by string) string {
	switch {
	case by != "":
		return fmt.Sprintf("GitPatch %q, applied before it in name order, made the change already: the two patches overlap, delete one", by)
	case p.carriedFrom != "":
		// Only patchesFrom decides what is carried: a patch that is no
		// longer needed cannot be left behind on its own.
		return fmt.Sprintf("revision %q's fresh files make the change without %s, so it must not be carried forward: "+
			"remove patchesFrom from revision %q and copy the patches it still needs into %s by hand",
			a.rev, p.origin, a.rev, path.Dir(p.file))
	case a.fresh && a.t.cfg.DriftGuards():
		return fmt.Sprintf("revision %q's fresh files make the change without the patch (istioctl's output or the drift guards): delete %s", a.rev, p.file)
	case a.fresh:
		return fmt.Sprintf("revision %q's fresh files make the change without the patch (istioctl's output has it): delete %s", a.rev, p.file)
	}
	return fmt.Sprintf("revision %q's files make the change without the patch: delete %s", a.rev, p.file)
}

// renderedInstead says what to change instead of a file rendered from
// field: the field itself for the objects that deploy the tree and the
// Ingresses, which no revision's generated file is the source of.
func renderedInstead(field string) string {
	switch {
	case field == fieldFlux, field == fieldArgoCD:
		return fmt.Sprintf("change %s instead", field)
	case isIngress(field):
		return fmt.Sprintf("change %s (its template, perRevision values, hosts or liveOnlyAnnotations) instead", field)
	}
	return fmt.Sprintf("change %s, or patch the file of the revision's generated/ it is rendered from", field)
}

// readShared parses the GitPatches of spec.patchesFrom: read from disk by
// istio-gitops run (opts.SharedPatches), else taken from the input, which
// must hold them.
func readShared(t *tree, opts Options) error {
	seen := map[string]string{}
	for i, from := range t.cfg.Spec.PatchesFrom {
		field := fmt.Sprintf("spec.patchesFrom[%d]", i)
		files, ok := opts.SharedPatches[from]
		if opts.SharedPatches == nil {
			var err error
			if files, err = t.under(from, field, "the GitPatches"); err != nil {
				return err
			}
			ok = len(files) > 0
		}
		if !ok {
			return fmt.Errorf("%s: %s: %q must be a folder or file of GitPatches", t.runPath(t.cfgFile), field, from)
		}
		n := 0
		for _, f := range sortedFiles(files) {
			objs, err := f.Objects()
			if err != nil {
				return err
			}
			for _, o := range objs {
				if o.GetKind() != patch.Kind || !object.IsOurs(o) {
					continue
				}
				p, err := patch.Parse(o)
				if err != nil {
					return atFile(f.Path, err)
				}
				if p.MadeFor == "" {
					return fmt.Errorf("%s: GitPatch %q: spec.revision must name the revision its diff was made against (such as 1-30): a GitPatch of %s is rewritten for each revision it applies to",
						f.Path, p.Name, field)
				}
				if other, dup := seen[p.Name]; dup {
					return fmt.Errorf("%s and %s: two shared GitPatches must not share the name %q", other, f.Path, p.Name)
				}
				seen[p.Name] = f.Path
				t.shared = append(t.shared, gitPatch{Patch: p, file: f.Path, madeFor: p.MadeFor})
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("%s: %s: %q holds no GitPatch", t.runPath(t.cfgFile), field, from)
		}
	}
	return nil
}

// under are the files of the input at or below the config-relative path
// p: a path out of the input is an error that says how to run instead.
func (t *tree) under(p, field, what string) ([]*fileset.File, error) {
	full := path.Join(t.root, p)
	if full == ".." || strings.HasPrefix(full, "../") {
		return nil, fmt.Errorf("%s: %s: %q is outside the function's input, which holds %s only under istio-gitops run (it reads them from disk): run `istio-gitops run`, or run kustomize or kpt over a folder that holds both",
			t.runPath(t.cfgFile), field, p, what)
	}
	var out []*fileset.File
	for _, f := range t.all {
		if f.Path == full || strings.HasPrefix(f.Path, full+"/") || full == "." {
			out = append(out, f)
		}
	}
	return out, nil
}

// sharedFor are the shared GitPatches made for revision rev, rewritten
// for it, less those a patch of the revision's own (a port) takes the
// place of.
func sharedFor(t *tree, rev string, own []gitPatch, res *results) ([]gitPatch, error) {
	var out []gitPatch
	for _, s := range t.shared {
		if i := slices.IndexFunc(own, func(p gitPatch) bool { return p.Name == s.Name }); i >= 0 {
			res.info(own[i].Node, own[i].file, fmt.Sprintf("used for revision %q instead of the shared GitPatch %s", rev, s.file))
			continue
		}
		p := s
		if s.MadeFor != rev {
			c, err := s.Rewrite(s.MadeFor, rev)
			if err == nil {
				p.Patch, err = patch.Parse(c)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: rewritten for revision %q: %w", s.file, rev, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}
