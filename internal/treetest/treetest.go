// Package treetest holds what tests of written trees share: copying and
// comparing trees, golden updates, and building every folder the way
// kustomize and Flux do.
package treetest

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Update rewrites golden files instead of comparing with them.
var Update = flag.Bool("update", false, "rewrite golden files")

// Files reads every file below dir, by slash path relative to dir.
func Files(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", dir, err)
	}
	return files
}

// Names lists a tree's files, sorted.
func Names(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Copy copies the tree at src into dst.
func Copy(t testing.TB, src, dst string) {
	t.Helper()
	for _, name := range Names(Files(t, src)) {
		CopyFile(t, filepath.Join(src, name), filepath.Join(dst, name))
	}
}

// CopyFile copies one file, creating its folder.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	Write(t, dst, Read(t, src))
}

// Read reads one file.
func Read(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Write writes a file, creating its folder.
func Write(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Diff describes how tree got differs from tree want; "" when equal.
func Diff(got, want map[string][]byte) string {
	var out []string
	for _, n := range Names(want) {
		g, ok := got[n]
		switch {
		case !ok:
			out = append(out, "missing "+n)
		case !bytes.Equal(g, want[n]):
			out = append(out, fmt.Sprintf("differs %s:\n%s", n, LineDiff(g, want[n])))
		}
	}
	for _, n := range Names(got) {
		if _, ok := want[n]; !ok {
			out = append(out, "unexpected "+n)
		}
	}
	return strings.Join(out, "\n")
}

// LineDiff shows the first lines where got and want differ, numbered.
func LineDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	var out []string
	for i := 0; i < max(len(g), len(w)) && len(out) < 10; i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			out = append(out, fmt.Sprintf("  line %d\n  got:  %q\n  want: %q", i+1, gl, wl))
		}
	}
	return strings.Join(out, "\n")
}

// GoldenFile compares got with the golden file at path, or rewrites it
// with -update.
func GoldenFile(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		Write(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, LineDiff(got, want))
	}
}

// Git runs the real git in dir, isolated from the user's and the system's
// configuration (diff.noPrefix, colours, hooks), with a fixed identity and
// clock so commits are reproducible; it returns git's output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return GitAt(t, dir, gitDate, args...)
}

// gitDate is the author and committer date of Git and GitCmd's commits.
const gitDate = "2026-01-02T03:04:05Z"

// GitAt is Git with the author and committer dates at when (RFC 3339):
// the commits of a history whose times matter.
func GitAt(t testing.TB, dir, when string, args ...string) string {
	t.Helper()
	cmd := gitCmdAt(dir, when, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// GitCmd is the command Git runs, for a test that looks at its failure.
func GitCmd(dir string, args ...string) *exec.Cmd {
	return gitCmdAt(dir, gitDate, args...)
}

func gitCmdAt(dir, when string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "LC_ALL=C",
		"GIT_AUTHOR_NAME=Platform Team", "GIT_AUTHOR_EMAIL=platform@example.com", "GIT_AUTHOR_DATE="+when,
		"GIT_COMMITTER_NAME=Platform Team", "GIT_COMMITTER_EMAIL=platform@example.com", "GIT_COMMITTER_DATE="+when)
	return cmd
}

// Golden compares the tree at dir with the golden tree at want, or
// rewrites the golden tree with -update.
func Golden(t testing.TB, dir, want string) {
	t.Helper()
	got := Files(t, dir)
	if *Update {
		if err := os.RemoveAll(want); err != nil {
			t.Fatal(err)
		}
		for _, n := range Names(got) {
			Write(t, filepath.Join(want, n), got[n])
		}
		return
	}
	if d := Diff(got, Files(t, want)); d != "" {
		t.Errorf("tree %s differs from golden %s (rerun with -update to accept):\n%s", dir, want, d)
	}
}

// Kustomizations lists the folders of a tree holding a kustomization.yaml.
func Kustomizations(t testing.TB, dir string) []string {
	t.Helper()
	var dirs []string
	for _, n := range Names(Files(t, dir)) {
		if filepath.Base(n) == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(n))
		}
	}
	return dirs
}
