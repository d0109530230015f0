package disk_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/fuzztest"
)

// A fuzzed tree is text: each entry starts with a line "=== <path>", and
// its content is the lines up to the next entry; "=== <path>/" is a
// folder, "=== <path> -> <target>" a symbolic link, "=== <path> |" a
// named pipe. Text before the first entry is the file f.yaml.
const (
	entryMark = "=== "
	// outsideDir is next to the tree: links may point into it (their
	// target must climb to it by "..", or descend only), and it holds a
	// file, a folder and a named pipe a reader must never open.
	outsideDir = "outside"
	maxEntries = 16
)

type entry struct {
	path, target, content string
	kind                  byte // 'f' file, 'd' folder, 'l' link, 'p' named pipe
}

func parseTree(b []byte) []entry {
	chunks := strings.Split("\n"+string(b), "\n"+entryMark)
	var out []entry
	if first := strings.TrimPrefix(chunks[0], "\n"); first != "" {
		out = append(out, entry{path: "f.yaml", content: first, kind: 'f'})
	}
	for _, c := range chunks[1:] {
		if len(out) == maxEntries {
			break
		}
		head, content, _ := strings.Cut(c, "\n")
		e := entry{path: head, content: content, kind: 'f'}
		switch {
		case strings.Contains(head, " -> "):
			e.path, e.target, _ = strings.Cut(head, " -> ")
			e.kind, e.content = 'l', ""
		case strings.HasSuffix(head, " |"):
			e.path, e.kind, e.content = strings.TrimSuffix(head, " |"), 'p', ""
		case strings.HasSuffix(head, "/"):
			e.path, e.kind, e.content = strings.TrimSuffix(head, "/"), 'd', ""
		}
		out = append(out, e)
	}
	return out
}

// localPath reports whether p names a path below the tree: no empty, "."
// or ".." segment, not absolute, no NUL.
func localPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return false
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}

// safeTarget reports whether a link at p may point at target: climbing
// exactly to the folder holding the tree and then into outside/, or
// descending from the link's folder. Every folder the fuzz test makes is
// a real one, and outside/ holds no link, so neither can reach beyond.
func safeTarget(p, target string) bool {
	if strings.ContainsRune(target, 0) || strings.HasPrefix(target, "/") || target == "" {
		return false
	}
	up := strings.Repeat("../", strings.Count(p, "/")+1) + outsideDir
	if rest, ok := strings.CutPrefix(target, up); ok && (rest == "" || strings.HasPrefix(rest, "/") && localPath(rest[1:])) {
		return true
	}
	return localPath(target)
}

// makeParents makes the folders above p, never through a link; false when
// something else stands in the way.
func makeParents(root, p string) bool {
	cur := root
	segs := strings.Split(p, "/")
	for _, s := range segs[:len(segs)-1] {
		cur = filepath.Join(cur, s)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if os.Mkdir(cur, 0o755) != nil {
				return false
			}
		case err != nil || !fi.IsDir():
			return false
		}
	}
	return true
}

// writeTree makes the entries below root (skipping those the file system
// or the rules above refuse) and returns those made.
func writeTree(root string, entries []entry) []entry {
	var made []entry
	for _, e := range entries {
		if !localPath(e.path) || !makeParents(root, e.path) {
			continue
		}
		full := filepath.Join(root, filepath.FromSlash(e.path))
		var err error
		switch e.kind {
		case 'f':
			var f *os.File
			f, err = os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
			if err == nil {
				_, err = f.WriteString(e.content)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		case 'd':
			err = os.Mkdir(full, 0o755)
		case 'l':
			if !safeTarget(e.path, e.target) {
				continue
			}
			err = os.Symlink(e.target, full)
		case 'p':
			err = syscall.Mkfifo(full, 0o644)
		}
		if err == nil {
			made = append(made, e)
		}
	}
	return made
}

// snapshot is every entry below dir: its type and, for a file, content.
func snapshot(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			out[rel] = "link " + t
			return err
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			out[rel] = "file " + string(b)
			return err
		default:
			out[rel] = d.Type().String()
		}
		return nil
	})
	return out, err
}

func isTemp(base string) bool {
	return strings.HasPrefix(base, ".istio-gitops-") && strings.HasSuffix(base, ".tmp") || base == disk.JournalFile+".tmp"
}

func yamlName(base string) bool {
	for _, g := range kio.MatchAll {
		if ok, _ := filepath.Match(g, base); ok {
			return true
		}
	}
	return false
}

// FuzzRead: a tree of any files, folders, links and pipes, oddly named, is
// read without a panic or a hang, never through a link or from a pipe,
// without a change to it; read, it lists every YAML and JSON file, and the
// fileset over it gives each file's bytes, digest and objects.
func FuzzRead(f *testing.F) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
	for _, s := range []string{
		cm,
		"=== a.yaml\n" + cm + "=== b/c.yml\n" + cm + "---\n" + cm + "=== d.json\n{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"j\"}}\n=== e.txt\nnot read\n",
		"=== 1-30/generated/configmap/x.yaml\n" + cm + "=== 1-30/generated/state.yaml\nfiles: {}\n=== empty.yaml\n=== only-comment.yaml\n# x\n",
		"=== link.yaml -> a.yaml\n=== a.yaml\n" + cm,
		"=== d -> ../outside/dir\n=== a.yaml\n" + cm,
		"=== x/y/secret.yaml -> ../../../outside/secret.yaml\n",
		"=== pipe.yaml |\n=== a.yaml\n" + cm,
		"=== .krmignore\nignored/\n*.json\n=== ignored/a.yaml\n" + cm + "=== b.json\n{}\n=== c.yaml\n" + cm,
		"=== .krmignore\nlink.yaml\n=== link.yaml -> ../outside/secret.yaml\n",
		"=== .istio-gitops-journal\n{\"renames\": []}\n",
		"=== .istio-gitops-1234.tmp\nleft\n=== .istio-gitops-journal.tmp\n{}\n=== a.yaml\n" + cm,
		"=== we ird/na\tme \x01.yaml\n" + cm + "=== \xff\xfe.yaml\n" + cm + "=== .yaml\n" + cm + "=== -.yml\n" + cm,
		"=== " + strings.Repeat("n", 250) + ".yaml\n" + cm + "=== " + strings.Repeat("n", 260) + ".yaml\n" + cm,
		"=== a.yaml/\n=== a.yaml/b.yaml\n" + cm,
		"=== a.yaml\n\xef\xbb\xbf" + cm + "=== b.yaml\nkind: [\n=== c.yaml\n- a\n- b\n=== d.yaml\na: &x [1]\nb: *x\n",
		"=== crlf.yaml\r\napiVersion: v1\r\nkind: ConfigMap\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		base := t.TempDir()
		root, outside := filepath.Join(base, "tree"), filepath.Join(base, outsideDir)
		for _, d := range []string{root, outside, filepath.Join(outside, "dir")} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		secret := []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: outside\n")
		for _, p := range []string{"secret.yaml", "dir/secret.yaml"} {
			if err := os.WriteFile(filepath.Join(outside, p), secret, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		pipes := []string{filepath.Join(outside, "pipe"), filepath.Join(outside, "pipe.yaml")}
		for _, p := range pipes {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		made := writeTree(root, parseTree(b))
		for _, e := range made {
			if e.kind == 'p' {
				pipes = append(pipes, filepath.Join(root, filepath.FromSlash(e.path)))
			}
		}
		before, err := snapshot(base)
		if err != nil {
			t.Fatal(err)
		}
		// A reader stuck opening a pipe is let go once the input failed.
		unblock := func() {
			for _, p := range pipes {
				if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
			}
		}
		fuzztest.Run(t, fuzztest.Limit, unblock, func() error {
			if err := checkRead(root, made); err != nil {
				return err
			}
			after, err := snapshot(base)
			if err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(before)) {
				if after[k] != before[k] {
					return fmt.Errorf("reading the tree changed %s", k)
				}
			}
			if len(after) != len(before) {
				return fmt.Errorf("reading the tree added files: %d entries, then %d", len(before), len(after))
			}
			return nil
		})
	})
}

func checkRead(root string, made []entry) error {
	tree, err := disk.Read(root)
	ignores, links, journal := false, false, false
	want := map[string]string{}
	for _, e := range made {
		switch {
		case e.path == ".krmignore":
			ignores = true
		case e.path == disk.JournalFile:
			journal = true
		}
		if e.kind == 'l' {
			links = true
		}
		if e.kind == 'f' && yamlName(path.Base(e.path)) && !isTemp(path.Base(e.path)) {
			want[e.path] = e.content
		}
	}
	switch {
	case err != nil:
		_ = err.Error()
		return nil
	case journal:
		return fmt.Errorf("Read accepts a tree holding the journal of an unfinished commit")
	case links && !ignores:
		return fmt.Errorf("Read accepts a tree holding a symbolic link")
	}
	var got []string
	for _, f := range tree.Files {
		got = append(got, f.Path)
		if !localPath(f.Path) || path.Clean(f.Path) != f.Path {
			return fmt.Errorf("Read lists %q: not a clean path inside the tree", f.Path)
		}
		content, ok := want[f.Path]
		if !ok && !ignores {
			return fmt.Errorf("Read lists %q, which is not a YAML or JSON file of the tree", f.Path)
		}
		b, err := f.Bytes()
		if err != nil {
			return fmt.Errorf("%s: listed, then unreadable: %v", f.Path, err)
		}
		if ok && string(b) != content {
			return fmt.Errorf("%s: read %q, holds %q", f.Path, b, content)
		}
		if f.Size() != int64(len(b)) {
			return fmt.Errorf("%s: size %d, holds %d bytes", f.Path, f.Size(), len(b))
		}
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		return fmt.Errorf("Read lists %q: must be sorted, each once", got)
	}
	if !ignores {
		if w := slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
			return fmt.Errorf("Read lists %q, the tree's YAML and JSON files are %q", got, w)
		}
	}
	return checkFileset(tree)
}

// checkFileset reads every file through the fileset the way a run does.
func checkFileset(tree *disk.Tree) error {
	in := fileset.FromTree(tree)
	for i, f := range in {
		raw, err := f.Bytes()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		if d, err := f.Digest(); err != nil || d != "sha256:"+hex.EncodeToString(sum[:]) {
			return fmt.Errorf("%s: digest %s (%v)", f.Path, d, err)
		}
		if ok, err := f.Mentions("kind", "IstioGitOps"); err != nil || ok != (bytes.Contains(raw, []byte("kind")) || bytes.Contains(raw, []byte("IstioGitOps"))) {
			return fmt.Errorf("%s: Mentions says %v (%v)", f.Path, ok, err)
		}
		// Streamed from disk and parsed whole, a file gives the same objects.
		var streamed []string
		serr := fileset.FromDisk(tree.Files[i]).Stream(func(n *yaml.RNode) error {
			s, err := n.String()
			streamed = append(streamed, s)
			return err
		})
		objs, oerr := f.Objects()
		if (serr == nil) != (oerr == nil) {
			return fmt.Errorf("%s: streamed (%v) and parsed (%v) disagree", f.Path, serr, oerr)
		}
		if oerr != nil {
			continue
		}
		if len(objs) != len(streamed) {
			return fmt.Errorf("%s: %d objects streamed, %d parsed", f.Path, len(streamed), len(objs))
		}
		for i, o := range objs {
			if s, err := o.String(); err != nil || s != streamed[i] {
				return fmt.Errorf("%s: object %d streamed as %q, parsed as %q", f.Path, i, streamed[i], s)
			}
		}
	}
	if _, err := in.Items(); err != nil {
		_ = err.Error()
	}
	writes, deletes, err := fileset.Changes(in, in)
	if err == nil && (len(writes) > 0 || len(deletes) > 0) {
		return fmt.Errorf("a tree written back over itself changes %d files and deletes %q", len(writes), deletes)
	}
	return nil
}
