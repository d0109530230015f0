package patch

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// ConflictError is a hunk that does not apply to the current file.
type ConflictError struct {
	// Patch is the GitPatch's name.
	Patch string
	// Path is the tree-relative target file.
	Path string
	// Hunk is the hunk header, "@@ -a,b +c,d @@".
	Hunk string
	// Line is the 1-based line of the file where the hunk stops matching
	// when laid at the position its header states.
	Line int64
	// Expected is the hunk's line there, Found the file's (without line
	// breaks); Found is empty past the end of the file.
	Expected, Found string
	// Reason explains a conflict that is not a line mismatch.
	Reason string
	// Applied is set when the file already carries the patch's change (its
	// reverse applies): the file was edited in place, or the fix is in
	// istioctl's output now.
	Applied bool

	err error
}

func (e *ConflictError) Error() string {
	var what string
	switch {
	case e.Reason != "":
		what = e.Reason
	default:
		what = fmt.Sprintf("line %d must read %q, but it reads %q", e.Line, e.Expected, e.Found)
	}
	msg := fmt.Sprintf("%s %q: file %q: hunk %q does not apply: %s; no other place in the file matches the hunk's context either",
		Kind, e.Patch, e.Path, e.Hunk, what)
	if e.Applied {
		msg += "; the file already carries the patch's change"
	}
	return msg
}

// Unwrap returns go-gitdiff's error, a *gitdiff.ApplyError wrapping a
// *gitdiff.Conflict, when there is one.
func (e *ConflictError) Unwrap() error { return e.err }

// Apply applies the patch to the files of revision folder revDir. files maps
// tree-relative slash paths to their current content; it is only looked up.
// The changes are returned sorted by path; nothing is changed on error: a
// missing target, a path outside revDir/generated/ or a hunk that does not
// apply (a *ConflictError).
func (p *Patch) Apply(revDir string, files map[string][]byte) ([]Change, error) {
	targets, err := p.Targets(revDir)
	if err != nil {
		return nil, err
	}
	byTarget := map[string]*gitdiff.File{}
	for _, f := range p.Files {
		byTarget[targetOf(f.NewName, revDir)] = f
	}
	changes := make([]Change, 0, len(targets))
	for _, t := range targets {
		src, ok := files[t]
		if !ok {
			return nil, fmt.Errorf("%s: file %q must exist: %s", p.describe(), t, onlyModify)
		}
		out, err := p.applyFile(t, byTarget[t], src)
		if err != nil {
			var ce *ConflictError
			if errors.As(err, &ce) {
				_, rerr := p.applyFile(t, reverse(byTarget[t]), src)
				ce.Applied = rerr == nil
			}
			return nil, err
		}
		changes = append(changes, Change{Path: t, Content: out})
	}
	return changes, nil
}

// reverse is the file change that undoes f.
func reverse(f *gitdiff.File) *gitdiff.File {
	r := *f
	r.TextFragments = make([]*gitdiff.TextFragment, 0, len(f.TextFragments))
	for _, frag := range f.TextFragments {
		g := *frag
		g.OldPosition, g.NewPosition = frag.NewPosition, frag.OldPosition
		g.OldLines, g.NewLines = frag.NewLines, frag.OldLines
		g.LinesAdded, g.LinesDeleted = frag.LinesDeleted, frag.LinesAdded
		g.Lines = make([]gitdiff.Line, len(frag.Lines))
		for i, l := range frag.Lines {
			switch l.Op {
			case gitdiff.OpAdd:
				l.Op = gitdiff.OpDelete
			case gitdiff.OpDelete:
				l.Op = gitdiff.OpAdd
			}
			g.Lines[i] = l
		}
		r.TextFragments = append(r.TextFragments, &g)
	}
	return &r
}

// applyFile applies one file's hunks in order. Each hunk is placed where
// its old lines match exactly, nearest to where its header says (shifted by
// the offset of the hunk before it), as `git apply` does; go-gitdiff then
// applies it there.
func (p *Patch) applyFile(target string, f *gitdiff.File, src []byte) ([]byte, error) {
	lines := splitLines(src)
	frags := slices.Clone(f.TextFragments)
	slices.SortStableFunc(frags, func(a, b *gitdiff.TextFragment) int { return cmp.Compare(a.OldPosition, b.OldPosition) })
	var out bytes.Buffer
	applier := gitdiff.NewTextApplier(&out, bytes.NewReader(src))
	next, delta := int64(0), int64(0)
	for _, frag := range frags {
		at, ok := locate(frag, lines, next, delta)
		if !ok {
			return nil, p.conflict(target, frag, src, lines, next)
		}
		placed := *frag
		placed.OldPosition = at + 1
		if err := applier.ApplyFragment(&placed); err != nil {
			return nil, fmt.Errorf("%s: file %q: hunk %q: %w", p.describe(), target, hunkHeaderOf(frag), err)
		}
		delta = at - stated(frag)
		next = at + frag.OldLines
	}
	if err := applier.Close(); err != nil {
		return nil, fmt.Errorf("%s: file %q: %w", p.describe(), target, err)
	}
	return out.Bytes(), nil
}

// stated is the 0-based line a hunk's header places it at.
func stated(frag *gitdiff.TextFragment) int64 {
	return max(frag.OldPosition-1, 0)
}

// locate finds the 0-based line where the hunk's old lines match, at or
// after next, trying the expected place first and then alternately one line
// further before and after it. A hunk starting at line 1 must match there;
// one without trailing context must end at the end of the file.
func locate(frag *gitdiff.TextFragment, lines []string, next, delta int64) (int64, bool) {
	var old []string
	for _, l := range frag.Lines {
		if l.Old() {
			old = append(old, l.Line)
		}
	}
	n, total := int64(len(old)), int64(len(lines))
	matches := func(at int64) bool {
		if at < next || at+n > total ||
			(frag.OldPosition <= 1 && at != 0) ||
			(frag.TrailingContext == 0 && at+n != total) {
			return false
		}
		return slices.Equal(lines[at:at+n], old)
	}
	want := stated(frag) + delta
	for d := int64(0); want-d >= next || want+d+n <= total; d++ {
		if matches(want - d) {
			return want - d, true
		}
		if d > 0 && matches(want+d) {
			return want + d, true
		}
	}
	return 0, false
}

// conflict explains why a hunk does not apply, by laying it where its header
// says and letting go-gitdiff find the first line that differs.
func (p *Patch) conflict(target string, frag *gitdiff.TextFragment, src []byte, lines []string, next int64) error {
	e := &ConflictError{Patch: p.Name, Path: target, Hunk: hunkHeaderOf(frag)}
	err := gitdiff.NewTextApplier(io.Discard, bytes.NewReader(src)).ApplyFragment(frag)
	e.err = err
	var ae *gitdiff.ApplyError
	switch {
	case errors.As(err, &ae) && ae.FragmentLine > 0 && ae.Line > 0 && ae.Line <= int64(len(lines)):
		e.Line = ae.Line
		e.Expected = strings.TrimSuffix(frag.Lines[ae.FragmentLine-1].Line, "\n")
		e.Found = strings.TrimSuffix(lines[ae.Line-1], "\n")
	case errors.Is(err, &gitdiff.Conflict{}):
		e.Line = stated(frag) + frag.OldLines
		e.Reason = fmt.Sprintf("it needs lines %d to %d, but the file has %d lines", stated(frag)+1, e.Line, len(lines))
	case err != nil:
		e.Reason = err.Error()
	case frag.TrailingContext == 0 && stated(frag)+frag.OldLines != int64(len(lines)):
		e.Line = stated(frag) + frag.OldLines
		e.Reason = fmt.Sprintf("it has no trailing context, so it must end at the last line of the file (line %d), but it ends at line %d", len(lines), e.Line)
	case stated(frag) < next:
		e.Reason = fmt.Sprintf("it overlaps the hunk before it, which was applied to lines up to %d", next)
	default:
		e.Reason = "its context matches nowhere after the hunk before it"
	}
	return e
}

// hunkHeaderOf is the hunk's header as git writes it, less the function
// context that follows it.
func hunkHeaderOf(frag *gitdiff.TextFragment) string {
	r := func(pos, n int64) string {
		if n == 1 {
			return fmt.Sprint(pos)
		}
		return fmt.Sprintf("%d,%d", pos, n)
	}
	return fmt.Sprintf("@@ -%s +%s @@", r(frag.OldPosition, frag.OldLines), r(frag.NewPosition, frag.NewLines))
}

// splitLines splits content into lines that keep their line break, as
// go-gitdiff compares them.
func splitLines(b []byte) []string {
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// CheckSameObject checks that a patched file still holds exactly the one
// object it held before (same apiVersion, kind, namespace and name) and
// returns it as parsed. The caller names the patch.
func CheckSameObject(path string, before, after []byte) (*yaml.RNode, error) {
	was, err := readObjects(before)
	if err != nil || len(was) != 1 {
		return nil, fmt.Errorf("file %q: before the patch it must hold exactly one object: %v", path, countOrErr(was, err))
	}
	is, err := readObjects(after)
	if err != nil {
		return nil, fmt.Errorf("file %q: after the patch it must still be valid YAML: %w", path, err)
	}
	if len(is) != 1 {
		return nil, fmt.Errorf("file %q: after the patch it must still hold exactly one object, it holds %d", path, len(is))
	}
	for _, n := range [...]*yaml.RNode{was[0], is[0]} {
		if err := object.CheckShape(n); err != nil {
			return nil, fmt.Errorf("file %q: after the patch: %w", path, err)
		}
	}
	if err := object.CheckNoAliases(is[0]); err != nil {
		return nil, fmt.Errorf("file %q: after the patch: %w", path, err)
	}
	w, n := identity(was[0]), identity(is[0])
	if w != n {
		return nil, fmt.Errorf("file %q: after the patch it must still hold %s, it holds %s", path, w, n)
	}
	return is[0], nil
}

func countOrErr(nodes []*yaml.RNode, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("it holds %d", len(nodes))
}

func readObjects(b []byte) ([]*yaml.RNode, error) {
	return (&kio.ByteReader{Reader: bytes.NewReader(b), OmitReaderAnnotations: true, DisableUnwrapping: true}).Read()
}

// identity names an object by what a patch must not change.
func identity(n *yaml.RNode) string {
	id := fmt.Sprintf("%s %s", n.GetApiVersion(), n.GetKind())
	if ns := n.GetNamespace(); ns != "" {
		id += " " + ns + "/"
	} else {
		id += " "
	}
	return id + n.GetName()
}
