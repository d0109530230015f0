package disk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ConflictError is a file that holds the markers of a merge conflict git
// left unresolved (a merge, a rebase or a revert that stopped): told as
// such, with the way to resolve it, rather than as the YAML error it makes.
type ConflictError struct {
	// Path is the file; Lines the lines of its markers.
	Path  string
	Lines []int
	// Advice is how to resolve it, which depends on whose the file is
	// (the run's or the user's); a generic word when empty.
	Advice string
}

// Derived and Yours are the two ways to resolve a conflict: in a file the
// run writes, and in a file of the user's.
const (
	Derived = "it is derived: the run writes it from the config and the revisions' files, so take either side (git checkout --ours -- FILE, or --theirs) and run again, and the run writes it anew (for a revision's generated files or records: if the run then says they do not match their record, regenerate the revision, writing its istioctl output, and run)"
	Yours   = "it is yours (the run reads it and never writes it): resolve it by hand, keeping what both sides meant (both changes, where they touch different fields), delete the marker lines, then run again"
)

func (e *ConflictError) Error() string {
	lines := make([]string, len(e.Lines))
	for i, l := range e.Lines {
		lines[i] = strconv.Itoa(l)
	}
	advice := e.Advice
	if advice == "" {
		advice = "if it is a file the run writes (under generated/ or common/, in flux/ or argocd/, a kustomization.yaml or a state.yaml), " + strings.TrimPrefix(Derived, "it is derived: ") +
			"; if it is yours (the config, a GitPatch, your own objects), " + strings.TrimPrefix(Yours, "it is yours (the run reads it and never writes it): ")
	}
	return fmt.Sprintf("%s holds merge-conflict markers (line %s): a merge or revert stopped on a conflict in it, unresolved; %s",
		e.Path, strings.Join(lines, ", "), strings.ReplaceAll(advice, "FILE", e.Path))
}

// ConflictLines are the 1-based lines of b that are merge-conflict markers
// (<<<<<<<, |||||||, =======, >>>>>>>), when b has an opening or a closing
// one (a document of a file may hold only one end of a conflict); nothing
// otherwise.
func ConflictLines(b []byte) []int {
	var lines []int
	open, closed := false, false
	for i, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSuffix(l, []byte("\r"))
		switch {
		case marker(l, '<'):
			open = true
		case marker(l, '>'):
			closed = true
		case marker(l, '|'), bytes.Equal(l, []byte("=======")):
		default:
			continue
		}
		lines = append(lines, i+1)
	}
	if !open && !closed {
		return nil
	}
	return lines
}

// marker reports whether a line is seven c's, alone or before a space.
func marker(l []byte, c byte) bool {
	if len(l) < 7 || bytes.Count(l[:7], []byte{c}) != 7 {
		return false
	}
	return len(l) == 7 || l[7] == ' '
}
