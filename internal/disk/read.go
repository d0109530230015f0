// Package disk reads a folder of YAML files as `kustomize fn run` reads it
// and writes it back all or nothing.
//
// Reading refuses symbolic links (a run never follows one, in or out of the
// folder) and leaves parsing to the caller, file by file, so a file that is
// not needed is never parsed and a large one is never held whole.
//
// Writing checks every path before anything is written (inside the folder,
// not in .git, no link on the way, segments a file system takes, no file
// where a folder must be) and that no file changed since it was read,
// stages new content in temporary files next to their targets, then
// commits with a journal that proves each change by digests: the next
// command finishes it if this one is killed or the power fails, and syncs
// make each step durable before the next. One command at a time holds a
// tree (Lock).
package disk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	gitignore "github.com/monochromegane/go-gitignore"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Names of the files a commit leaves while it runs; a reader never takes
// them for objects (they do not end in .yaml, .yml or .json), and no file
// of a tree may be named so (CheckPath).
const (
	// JournalFile lists a commit's changes once every new file is staged:
	// its presence means the commit must be finished.
	JournalFile = ".istio-gitops-journal"
	// Temporary files are .istio-gitops-<run id>-<n>.tmp.
	tempPrefix = ".istio-gitops-"
	tempSuffix = ".tmp"
)

// Tree is a folder of YAML files.
type Tree struct {
	// Root is the folder as given.
	Root string
	// Files are the YAML and JSON files kio reads, by path.
	Files []*File
	// Origin is the run the tree's commit belongs to, for its journal.
	Origin Origin
	// Strays are files named like istio-gitops's temporary files that no
	// journal names (left by an older version): never read, never
	// removed.
	Strays []string
	fs     FS
	// seen are the folders a check looked at.
	seen map[string]fs.FileInfo
	// byPath indexes Files.
	byPath map[string]*File
	// ignore matches the patterns of the root's .krmignore.
	ignore gitignore.IgnoreMatcher
}

// File is one YAML or JSON file of a tree.
type File struct {
	// Path is the file's slash path relative to the tree's root.
	Path string
	full string
	size int64
	// info is what Read found: a commit refuses to go on if the file
	// changed since.
	info fs.FileInfo
	fs   FS
}

// Size is the file's size in bytes as read.
func (f *File) Size() int64 { return f.size }

// Bytes reads the file.
func (f *File) Bytes() ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := readAll(r, f.size)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	return b, nil
}

// readAll is io.ReadAll into a buffer of the size the file had when it
// was listed, and one byte more to see the end, as os.ReadFile does: a run
// reads thousands of files, and io.ReadAll's growing buffer allocated
// twice what they hold. A file that grew since is read whole all the same.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > 1<<30 {
		size = 0
	}
	b := make([]byte, 0, size+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return b, nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// Open opens the file for reading, refusing a file that became a link.
func (f *File) Open() (io.ReadCloser, error) {
	r, err := f.fs.Open(f.full)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	return r, nil
}

// Objects decodes the file's objects (see Decode).
func (f *File) Objects() ([]*yaml.RNode, error) {
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var objs []*yaml.RNode
	err = Decode(r, f.Path, func(n *yaml.RNode) error {
		objs = append(objs, n)
		return nil
	})
	return objs, err
}

// Read lists the YAML and JSON files below root as kio.LocalPackageReader
// does for `kustomize fn run` (same files, same .krmignore rules). A
// symbolic link among them, to a file or a folder, is an error naming it:
// a run must not read or write through one. A folder holding the journal
// of an unfinished commit, at its root or below, is an error too: Recover
// finishes it.
func Read(root string) (*Tree, error) {
	return read(root, OS)
}

func read(root string, fsys FS) (*Tree, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("read %s: must be a folder", root)
	}
	t := &Tree{Root: root, fs: fsys}
	for _, name := range []string{JournalFile, stagingJournal} {
		if _, err := fsys.Lstat(filepath.Join(root, name)); err == nil {
			return nil, interrupted(root, name)
		}
	}
	ignores, err := checkIgnoreFile(root, fsys)
	if err != nil {
		return nil, err
	}
	if ignores != nil {
		t.ignore = gitignore.NewGitIgnoreFromReader("/", bytes.NewReader(ignores))
	}
	var problems []string
	walker := kio.LocalPackageReader{
		PackagePath: root,
		FileSkipFunc: func(rel string) bool {
			rel = filepath.ToSlash(rel)
			full := filepath.Join(root, filepath.FromSlash(rel))
			fi, err := fsys.Lstat(full)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s: %v", rel, err))
			case fi.Mode()&fs.ModeSymlink != 0:
				problems = append(problems, fmt.Sprintf("%s is a symbolic link: istio-gitops must not follow links, in or out of the tree (replace it with what it points at, or list it in .krmignore)", rel))
			case path.Base(rel) == JournalFile || path.Base(rel) == stagingJournal:
				problems = append(problems, interrupted(filepath.Join(root, filepath.FromSlash(path.Dir(rel))), path.Base(rel)).Error())
			case isTemp(path.Base(rel)):
				t.Strays = append(t.Strays, rel)
			case fi.Mode().IsRegular() && matches(rel):
				t.Files = append(t.Files, &File{Path: rel, full: full, size: fi.Size(), info: fi, fs: fsys})
			}
			// The walker only lists; callers parse what they need.
			return true
		},
	}
	if _, err := walker.Read(); err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	slices.SortFunc(t.Files, func(a, b *File) int { return strings.Compare(a.Path, b.Path) })
	slices.Sort(t.Strays)
	return t, nil
}

// interrupted is the error of a folder holding the journal of a command
// that was interrupted.
func interrupted(dir, journal string) error {
	return fmt.Errorf("%s: a command was interrupted while it wrote this folder (%s is left): run `istio-gitops run %s` (or the same migrate) to finish it",
		dir, journal, dir)
}

// StraysWarning says which stray temporary files a tree holds ("" for
// none).
func (t *Tree) StraysWarning() string {
	if len(t.Strays) == 0 {
		return ""
	}
	list := t.Strays
	more := ""
	if len(list) > maxListed {
		more = fmt.Sprintf(" and %d more", len(list)-maxListed)
		list = list[:maxListed]
	}
	return fmt.Sprintf("%s%s: named like istio-gitops's temporary files, but no journal names them (left by an older istio-gitops?): they are not read; remove them if no command is running",
		strings.Join(list, ", "), more)
}

// IgnoreFile is the file of patterns of files `kustomize fn run` and a run
// do not read, at the tree's root.
const IgnoreFile = ".krmignore"

// maxIgnoreFile bounds what is read of the ignore file.
const maxIgnoreFile = 1 << 20

// checkIgnoreFile checks the root's .krmignore before kyaml's walker reads
// it: the walker opens it through a link (out of the tree, or into a pipe
// that never ends) and its pattern parser panics on a pattern with nothing
// after "!" and "/". It returns the file's bytes (nil without one).
func checkIgnoreFile(root string, fsys FS) ([]byte, error) {
	name := filepath.Join(root, IgnoreFile)
	fi, err := fsys.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", name, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s is a symbolic link: istio-gitops must not follow links, in or out of the tree (replace it with what it points at)", IgnoreFile)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s must be a regular file, not a %s", IgnoreFile, fi.Mode().Type())
	case fi.Size() > maxIgnoreFile:
		return nil, fmt.Errorf("%s must be at most %d bytes, it has %d", IgnoreFile, maxIgnoreFile, fi.Size())
	}
	r, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxIgnoreFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	// The parser's own reading: lines trimmed of spaces, comments and blank
	// lines skipped, a leading "\" before "#" and one "!" taken off.
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.Trim(strings.TrimSuffix(line, "\r"), " ")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pattern := line
		if strings.HasPrefix(pattern, `\#`) {
			pattern = pattern[1:]
		}
		pattern = strings.TrimPrefix(pattern, "!")
		if strings.TrimPrefix(pattern, "/") == "" {
			return nil, fmt.Errorf("%s line %d: %q must name files or folders: it has no pattern", IgnoreFile, i+1, line)
		}
	}
	return b, nil
}

// Hidden reports whether the root's .krmignore hides the file or folder
// at rel (a slash path in the tree) from the reader, by a pattern that
// matches it or a folder above it.
func (t *Tree) Hidden(rel string, dir bool) bool {
	if t.ignore == nil {
		return false
	}
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		if t.ignore.Match("/"+strings.Join(parts[:i], "/"), true) {
			return true
		}
	}
	return t.ignore.Match("/"+rel, dir)
}

// KptFile is the file kpt keeps a package's pipeline in: kpt hands it to
// functions as an item like any object.
const KptFile = "Kptfile"

// CheckItemPath reports why p cannot be the path of an item of a
// ResourceList (its config.kubernetes.io/path): kustomize and kpt write
// each item to its path, so it must be a file Read reads back: a clean
// relative path inside the tree, not in .git nor named like the journal
// or a temporary file (CheckPath), of a YAML or JSON file (or kpt's
// Kptfile). An absolute path, "..", or README.md would be written outside
// the tree, or never read again.
func CheckItemPath(p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	if !matches(p) && path.Base(p) != KptFile {
		return fmt.Errorf("%q must be a .yaml, .yml or .json file: the tree's readers read only those", p)
	}
	return nil
}

func matches(rel string) bool {
	for _, g := range kio.MatchAll {
		if ok, _ := filepath.Match(g, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

func isTemp(base string) bool {
	return strings.HasPrefix(base, tempPrefix) && strings.HasSuffix(base, tempSuffix) ||
		base == stagingJournal
}

// Objects decodes every file of the tree, in path order.
func (t *Tree) Objects() ([]*yaml.RNode, error) {
	return ParallelObjects(len(t.Files), func(i int) ([]*yaml.RNode, error) { return t.Files[i].Objects() })
}

// ParallelObjects calls objects for 0 to n-1 on every core (see Parallel)
// and returns all their objects, in the order of i.
func ParallelObjects(n int, objects func(i int) ([]*yaml.RNode, error)) ([]*yaml.RNode, error) {
	parsed := make([][]*yaml.RNode, n)
	err := Parallel(n, func(i int) error {
		var err error
		parsed[i], err = objects(i)
		return err
	})
	if err != nil {
		return nil, err
	}
	var all []*yaml.RNode
	for _, objs := range parsed {
		all = append(all, objs...)
	}
	return all, nil
}

// ReadObjects reads the tree at root and decodes every file.
func ReadObjects(root string) ([]*yaml.RNode, error) {
	t, err := Read(root)
	if err != nil {
		return nil, err
	}
	return t.Objects()
}

// ReadFile is one YAML or JSON file given by path, outside any tree; it
// must be a regular file, not a link.
func ReadFile(p string) (*File, error) {
	fi, err := os.Lstat(p)
	switch {
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", p, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s is a symbolic link: istio-gitops must not follow links (give the file it points at)", p)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("read %s: must be a file", p)
	case !matches(filepath.ToSlash(p)):
		return nil, fmt.Errorf("%s must be a .yaml, .yml or .json file", p)
	}
	return &File{Path: filepath.ToSlash(p), full: p, size: fi.Size(), info: fi, fs: OS}, nil
}
