package pipeline

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/layout"
)

// old is what the check stage found of the tree as the last run left it.
type old struct {
	// rendered are the files the last run rendered from the config, which
	// this run renders again.
	rendered []*fileset.File
	// records are what those of them rendered files say of themselves
	// (readRendered), in path order: read once, by the check stage.
	records []renderedFile
}

// maxProblems bounds the problems one error lists.
const maxProblems = 8

// listed joins at most maxProblems items with sep and says how many more
// there are: "a; b; and 3 more".
func listed(items []string, sep string) string {
	if len(items) > maxProblems {
		items = append(slices.Clone(items[:maxProblems]), fmt.Sprintf("and %d more", len(items)-maxProblems))
	}
	return strings.Join(items, sep)
}

// check compares the tree with its records before anything is decided.
// Every generated file of a revision that is kept (not regenerated), and
// of common/ when the newest revision is kept, must be on disk with the
// bytes its record lists: a file lost or emptied by a killed write, a bad
// merge or a hand edit would otherwise drop or change an object silently,
// and Flux would prune it, istiod included. A file in a generated folder
// that no record lists is refused too. The run fails with a message that
// says how to repair. Files the last run rendered are set apart: they are
// rendered again.
func check(t *tree, res *results) (*old, error) {
	o := &old{}
	for _, f := range t.noPath {
		if objs, err := f.Objects(); err == nil {
			for _, obj := range objs {
				res.warn(obj, "", "passed through untouched: it has no config.kubernetes.io/path annotation, so it is in no file of the tree")
			}
		}
	}
	for _, f := range t.deployers {
		r, err := isRendered(f)
		if err != nil {
			return nil, err
		}
		if r {
			o.rendered = append(o.rendered, f)
		} else {
			t.user = append(t.user, f)
		}
	}
	newest := t.cfg.Newest()
	for _, rev := range t.cfg.RevisionNames() {
		fo := t.revisions[rev]
		_, fresh := t.sources[rev]
		repair := fmt.Sprintf("restore the revision's files from Git (git checkout -- %s), or regenerate it from istioctl output (write %s and run again)",
			t.runPath(path.Join(rev, layout.Generated)), t.runPath(sourceOf(t.cfg, rev)))
		rendered, err := verify(t, fo, rev, !fresh, repair)
		if err != nil {
			return nil, err
		}
		o.rendered = append(o.rendered, rendered...)
		if !fresh && len(fo.files) == 0 && fo.record == nil {
			i := indexOf(t.cfg, rev)
			return nil, fmt.Errorf("spec.revisions[%d]: revision %q must have its istioctl output at %s or generated files from an earlier run",
				i, rev, t.runPath(sourceOf(t.cfg, rev)))
		}
	}
	_, fresh := t.sources[newest]
	repair := fmt.Sprintf("restore common/ from Git (git checkout -- %s), or regenerate the newest revision %q from istioctl output (write %s and run again)",
		t.runPath(layout.Common), newest, t.runPath(sourceOf(t.cfg, newest)))
	rendered, err := verify(t, t.common, layout.Common, !fresh, repair)
	if err != nil {
		return nil, err
	}
	o.rendered = append(o.rendered, rendered...)
	if err := checkRendered(t, o, res); err != nil {
		return nil, err
	}
	return o, nil
}

// checkHidden refuses a tree whose .krmignore hides what the run owns:
// a record, a generated folder or file, a kustomization, a source, the
// patches or flux/. The run would take a hidden record for a missing one
// and write over files it never read.
func checkHidden(t *tree, hidden func(string, bool) bool) error {
	if hidden == nil {
		return nil
	}
	var owned []string
	dirs := map[string]bool{}
	add := func(p string, dir bool) {
		owned = append(owned, t.runPath(p))
		dirs[t.runPath(p)] = dir
	}
	add(layout.Kustomization, false)
	add(layout.Common, true)
	add(path.Join(layout.Common, layout.StateFile), false)
	add(path.Join(layout.Common, layout.Kustomization), false)
	add(layout.Flux, true)
	for _, rev := range t.cfg.RevisionNames() {
		add(path.Join(rev, layout.Generated), true)
		add(path.Join(rev, layout.Generated, layout.StateFile), false)
		add(path.Join(rev, layout.Kustomization), false)
		add(path.Join(rev, layout.Patches), true)
		add(sourceOf(t.cfg, rev), false)
		if fo := t.revisions[rev]; fo.record != nil {
			for _, p := range config.SortedKeys(fo.record.Spec.Files) {
				add(path.Join(rev, p), false)
			}
		}
	}
	if t.common.record != nil {
		for _, p := range config.SortedKeys(t.common.record.Spec.Files) {
			add(path.Join(layout.Common, p), false)
		}
	}
	for _, p := range owned {
		if hidden(p, dirs[p]) {
			return fmt.Errorf("%s is hidden by a pattern of %s, but the run owns it and must read it (a hidden record or generated file would be taken for a lost one, and a hidden file written over): remove the pattern from %s",
				p, t.runPath(".krmignore"), t.runPath(".krmignore"))
		}
	}
	return nil
}

// checkRendered refuses a rendered file edited by hand since the last run
// (its bytes no longer match the digest it records): the run renders it
// again from the config, and the edit would be lost without a word. It
// notes, once, a tree whose rendered files and record an older
// istio-gitops wrote.
func checkRendered(t *tree, o *old, res *results) error {
	t.rendered = map[string]string{}
	var problems []string
	older := t.common.record != nil && t.common.record.Spec.Pointers != nil
	for _, f := range sortedFiles(o.rendered) {
		rf, ok := readRendered(f)
		if !ok {
			continue
		}
		o.records = append(o.records, rf)
		t.rendered[f.Path] = rf.field
		if !rf.sealed {
			older = true
			continue
		}
		if rf.recorded != rf.digest {
			problems = append(problems, fmt.Sprintf("%s (rendered from %s: %s)", f.Path, rf.field, carryHint(t, rf)))
		}
	}
	if older {
		res.note(framework.Info, fmt.Sprintf("%s: written by an older istio-gitops: from this run on, each object rendered from the config records its own pointer (annotation %s) and digest, and the record no longer lists the pointers, so that git revert of any one step applies cleanly whatever came after it (for the commits made from now on)",
			t.runPath(path.Join(layout.Common, layout.StateFile)), api.PointsAtAnnotation))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("rendered files must not be edited by hand: every run renders them again from the config, and the edit would be lost: %s; restore each from Git (git checkout -- FILE) and carry the change where it comes from",
		listed(problems, "; "))
}

// carryHint says where a change to a rendered file belongs.
func carryHint(t *tree, rf renderedFile) string {
	switch {
	case rf.field == fieldFlux, rf.field == fieldArgoCD, isIngress(rf.field):
		return renderedInstead(rf.field)
	case rf.pointsAt == "":
		return "change the config instead"
	}
	patches := t.runPath(path.Join(rf.pointsAt, layout.Patches)) + "/"
	if rf.field == fieldCNI || rf.field == fieldZtunnel || rf.field == fieldNodeAgentsOld {
		if rel, ok := t.rel(rf.file.Path); ok {
			src := t.runPath(path.Join(rf.pointsAt, layout.Generated, nodeAgentsDir, strings.TrimPrefix(rel, layout.Common+"/")))
			return fmt.Sprintf("carry it as a GitPatch on %s in %s (istio-gitops patch import)", src, patches)
		}
	}
	return fmt.Sprintf("carry it as a GitPatch on the file of %s it is rendered from, in %s (istio-gitops patch import)",
		t.runPath(path.Join(rf.pointsAt, layout.Generated))+"/", patches)
}

// verify sets apart a folder's rendered files and, when the folder is
// kept, checks its other files against the record. A kept folder with
// generated files must have its record: without one (deleted, hidden, or
// left by an interrupted write) the run cannot tell its own output from a
// hand edit or a lost file, and refuses.
func verify(t *tree, fo *folder, where string, kept bool, repair string) ([]*fileset.File, error) {
	want := expected(fo)
	var (
		rendered []*fileset.File
		problems []string
	)
	for _, p := range fo.paths() {
		f := fo.files[p]
		if _, recorded := want[p]; recorded {
			continue
		}
		r, err := isRendered(f)
		if err != nil {
			var ce *disk.ConflictError
			if errors.As(err, &ce) {
				// A file of a folder the run owns: derived.
				if ce.Advice == "" {
					ce.Advice = disk.Derived
				}
				return nil, err
			}
			if kept {
				return nil, fmt.Errorf("%w: %s", err, repair)
			}
			// A regeneration replaces it.
			continue
		}
		if r {
			rendered = append(rendered, f)
			delete(fo.files, p)
			continue
		}
		if kept && fo.record != nil {
			problems = append(problems, fmt.Sprintf("%s is not in the record %s: files of their own belong outside generated folders", f.Path, t.runPath(recordPath(fo))))
		}
	}
	if kept && fo.record == nil && len(fo.files) > 0 {
		return nil, fmt.Errorf("%s holds %d generated files but no record %s (deleted, hidden, or lost with an interrupted write): the run must not take the folder as it stands (Flux would prune what is missing); %s",
			t.runPath(path.Dir(recordPath(fo)))+"/", len(fo.files), t.runPath(recordPath(fo)), repair)
	}
	if !kept || fo.record == nil {
		return rendered, nil
	}
	for _, p := range config.SortedKeys(want) {
		f, ok := fo.files[p]
		full := t.runPath(path.Join(fo.name, p))
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is missing (its record lists it)", full))
			continue
		}
		if f.Size() == 0 {
			problems = append(problems, fmt.Sprintf("%s is empty (an interrupted write?)", full))
			continue
		}
		d, err := f.Digest()
		if err != nil {
			return nil, err
		}
		if d != want[p] {
			if b, err := f.Bytes(); err == nil {
				if lines := disk.ConflictLines(b); len(lines) > 0 {
					ce := &disk.ConflictError{Path: full, Lines: lines, Advice: disk.Derived}
					problems = append(problems, ce.Error())
					continue
				}
			}
			problems = append(problems, fmt.Sprintf("%s changed since the last run (keep changes as GitPatches in %s/patches/)", full, fo.name))
		}
	}
	if len(problems) == 0 {
		return rendered, nil
	}
	return nil, fmt.Errorf("%s does not match its record %s, and the run must not deploy it so (Flux would prune or change objects): %s; %s",
		t.runPath(where)+"/", t.runPath(recordPath(fo)), listed(problems, "; "), repair)
}

// expected are the digests a folder's record (and the records of patches
// applied since) lists, by path.
func expected(fo *folder) map[string]string {
	want := map[string]string{}
	if fo.record == nil {
		return want
	}
	for p, d := range fo.record.Spec.Files {
		want[p] = d
	}
	for _, name := range config.SortedKeys(fo.applied) {
		for p, d := range fo.applied[name].Spec.Files {
			want[p] = d
		}
	}
	return want
}

func recordPath(fo *folder) string {
	if fo.name == layout.Common {
		return path.Join(layout.Common, layout.StateFile)
	}
	return path.Join(fo.name, layout.Generated, layout.StateFile)
}

func sourceOf(cfg *config.IstioGitOps, rev string) string {
	if c, ok := cfg.Revision(rev); ok {
		return c.Source
	}
	return path.Join(rev, config.SourceFile)
}

func indexOf(cfg *config.IstioGitOps, rev string) int {
	for i, r := range cfg.Spec.Revisions {
		if r.Name == rev {
			return i
		}
	}
	return -1
}
