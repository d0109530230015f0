package patch

import (
	"regexp"
	"strconv"
	"strings"
)

// lineKind says what part of a git diff a line belongs to. go-gitdiff parses
// the diff; this scanner only finds the lines whose text matters on its own:
// the file names (to check and normalise them) and the hunk bodies (whose
// whitespace is content).
type lineKind int

const (
	textLine   lineKind = iota // mail header, message, diffstat, signature
	gitHeader                  // "diff --git a/x b/x"
	headerLine                 // index, mode and other extended header lines
	oldName                    // "--- a/x"
	newName                    // "+++ b/x"
	hunkHeader                 // "@@ -a,b +c,d @@"
	hunkLine                   // ' ', '-', '+' or '\' line of a hunk
)

type scannedLine struct {
	kind lineKind
	text string // without the line break
}

var hunkHeaderExpr = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@`)

// scanLines splits a diff into lines and classifies them. It counts hunk
// lines by the hunk header, as git does, so that a deleted line reading
// "-- foo" is never taken for a file name and a format-patch signature
// ("-- ") is never taken for a deleted line.
func scanLines(diff string) []scannedLine {
	lines := strings.SplitAfter(diff, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	out := make([]scannedLine, 0, len(lines))
	const (
		outside = iota
		inHeader
		inHunk
		afterHunk
	)
	state := outside
	var oldLeft, newLeft int
	for _, raw := range lines {
		l := strings.TrimSuffix(raw, "\n")
		if state == inHunk {
			op := byte(' ')
			if l != "" {
				op = l[0]
			}
			switch op {
			case ' ':
				oldLeft--
				newLeft--
			case '-':
				oldLeft--
			case '+':
				newLeft--
			case '\\':
			default:
				// a short hunk: leave it to go-gitdiff to report
				state = outside
			}
			if state == inHunk {
				out = append(out, scannedLine{hunkLine, l})
				if oldLeft <= 0 && newLeft <= 0 {
					state = afterHunk
				}
				continue
			}
		}
		switch {
		case strings.HasPrefix(l, "diff --git "):
			state = inHeader
			out = append(out, scannedLine{gitHeader, l})
		case (state == inHeader || state == afterHunk) && hunkHeaderExpr.MatchString(l):
			m := hunkHeaderExpr.FindStringSubmatch(l)
			oldLeft, newLeft = hunkCount(m[2]), hunkCount(m[4])
			state = inHunk
			if oldLeft == 0 && newLeft == 0 {
				state = afterHunk
			}
			out = append(out, scannedLine{hunkHeader, l})
		case state == afterHunk && strings.HasPrefix(l, `\ `):
			out = append(out, scannedLine{hunkLine, l})
		case state == inHeader && strings.HasPrefix(l, "--- "):
			out = append(out, scannedLine{oldName, l})
		case state == inHeader && strings.HasPrefix(l, "+++ "):
			out = append(out, scannedLine{newName, l})
		case state == inHeader:
			out = append(out, scannedLine{headerLine, l})
		default:
			state = outside
			out = append(out, scannedLine{textLine, l})
		}
	}
	return out
}

func hunkCount(s string) int {
	if s == "" {
		return 1
	}
	n, _ := strconv.Atoi(s)
	return n
}

// gitPrefixes are the one-letter source and destination prefixes git writes:
// a/ b/ by default, c/ i/ o/ w/ with diff.mnemonicPrefix, 1/ 2/ for
// `git diff --no-index`.
const gitPrefixes = "abciow12"

// hasGitPrefix reports whether a path from a diff header starts with one of
// git's prefixes, as go-gitdiff drops the first path segment unconditionally.
func hasGitPrefix(p string) bool {
	p = strings.TrimPrefix(p, `"`)
	return len(p) > 2 && p[1] == '/' && strings.IndexByte(gitPrefixes, p[0]) >= 0
}

// headerPaths returns the two paths of a "diff --git" line, or false when
// they cannot be told apart (quoted or containing spaces: never the case for
// generated files, whose names are DNS names).
func headerPaths(l string) (string, string, bool) {
	f := strings.Fields(strings.TrimPrefix(l, "diff --git "))
	if len(f) != 2 || strings.ContainsAny(l, `"`) {
		return "", "", false
	}
	return f[0], f[1], true
}

// namePath returns the path of a "--- x" or "+++ x" line, less a trailing
// tab and timestamp.
func namePath(l string) string {
	p := l[len("--- "):]
	if i := strings.IndexByte(p, '\t'); i >= 0 {
		p = p[:i]
	}
	return p
}
