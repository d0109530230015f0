// Package history reads what a Git repository's history says about
// folders of it, with go-git (no `git` output is parsed): the commits of
// HEAD's first-parent history, newest first, and at each the tree of each
// folder watched. Folders are compared by their tree hashes between
// consecutive commits, and only a changed subtree is read further, so
// that thousands of commits over tens of folders take a fraction of a
// second; what a folder's files say is the caller's to parse, once per
// distinct content.
package history

import (
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// ErrNotRepository is the error of Open outside a Git repository.
var ErrNotRepository = errors.New("not in a Git repository")

// Hash names a Git object.
type Hash = plumbing.Hash

// maxFile bounds what is read of one file of the history: configs and
// records are small, and a file of the history must not take the memory.
const maxFile = 16 << 20

// Repo is an opened Git repository.
type Repo struct {
	repo *git.Repository
	objs storer.EncodedObjectStorer
	// Root is the folder of the working tree.
	Root    string
	shallow map[Hash]bool
	// entries are trees read, by hash: most folders do not change from
	// one commit to the next.
	entries map[Hash][]Entry
}

// maxEntries bounds the trees kept read.
const maxEntries = 1 << 14

// Close releases the files the repository keeps open.
func (r *Repo) Close() error {
	if c, ok := r.repo.Storer.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// Locate opens the repository whose working tree holds dir (dir or one of
// its parents holds .git; a linked worktree too), as go-git opens it by
// default: the repository, its working tree's root folder (links
// resolved) and dir's slash path relative to it ("" for the root).
// Outside a repository the error is ErrNotRepository.
func Locate(dir string) (repo *git.Repository, root, rel string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", "", err
	}
	repo, err = git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, "", "", fmt.Errorf("%s: %w", dir, ErrNotRepository)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: open the Git repository: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: the Git repository must have a working tree: %w", dir, err)
	}
	root = resolved(wt.Filesystem.Root())
	rel, ok := within(root, resolved(abs))
	if !ok {
		return nil, "", "", fmt.Errorf("%s: must be inside the working tree of its repository %s", dir, root)
	}
	return repo, root, rel, nil
}

// resolved is p with its links resolved, as it is where it cannot be.
func resolved(p string) string {
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	return p
}

// within is the slash path of abs relative to root ("" for root); ok is
// false when abs is not below root.
func within(root, abs string) (rel string, ok bool) {
	r, err := filepath.Rel(root, abs)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	if r == "." {
		return "", true
	}
	return filepath.ToSlash(r), true
}

// Open opens the repository whose working tree holds dir (see Locate).
// Outside one the error is ErrNotRepository.
func Open(dir string) (*Repo, error) {
	r, root, _, err := Locate(dir)
	if err != nil {
		return nil, err
	}
	// Opened again on the same folders, keeping the packfiles open: by
	// default go-git opens a packfile for every object it reads.
	if fsStore, ok := r.Storer.(*filesystem.Storage); ok {
		st := filesystem.NewStorageWithOptions(fsStore.Filesystem(), cache.NewObjectLRUDefault(),
			filesystem.Options{KeepDescriptors: true, ExclusiveAccess: true})
		if wt, err := r.Worktree(); err == nil {
			if again, err := git.Open(st, wt.Filesystem); err == nil {
				r = again
			}
		}
	}
	repo := &Repo{repo: r, objs: r.Storer, Root: root, shallow: map[Hash]bool{}, entries: map[Hash][]Entry{}}
	shallow, err := r.Storer.Shallow()
	if err != nil {
		return nil, fmt.Errorf("%s: read the shallow commits: %w", root, err)
	}
	for _, h := range shallow {
		repo.shallow[h] = true
	}
	return repo, nil
}

// Shallow reports whether the clone lacks history (git clone --depth).
func (r *Repo) Shallow() bool { return len(r.shallow) > 0 }

// Rel is the slash path of a file or folder on disk relative to the
// repository's root ("" for the root); a path out of it is an error.
func (r *Repo) Rel(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rel, ok := within(r.Root, resolved(abs))
	if !ok {
		return "", fmt.Errorf("%s is not in the Git repository at %s", p, r.Root)
	}
	return rel, nil
}

// Commit is one commit of the history.
type Commit struct {
	Hash Hash
	// When is the committer time: when the change landed on the branch,
	// not when it was first written.
	When time.Time
	Tree Hash
	// Shallow reports that the commit's parents are not in the clone: the
	// history read ends here without having reached its start.
	Shallow bool
	parent  Hash
}

// Short is the commit's abbreviated hash.
func (c Commit) Short() string { return c.Hash.String()[:12] }

// Head is the commit HEAD names. A repository without a commit yet is an
// error.
func (r *Repo) Head() (Commit, error) {
	ref, err := r.repo.Head()
	if err != nil {
		return Commit{}, fmt.Errorf("%s: HEAD names no commit (%w): commit first", r.Root, err)
	}
	return r.commit(ref.Hash())
}

// Resolve reads a revision, such as main, origin/main, a tag, a hash or
// HEAD~1, to its commit.
func (r *Repo) Resolve(rev string) (Commit, error) {
	h, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return Commit{}, fmt.Errorf("%s: %q names no commit: %w", r.Root, rev, err)
	}
	return r.commit(*h)
}

func (r *Repo) commit(h Hash) (Commit, error) {
	c, err := object.GetCommit(r.objs, h)
	if err != nil {
		return Commit{}, fmt.Errorf("%s: commit %s: %w", r.Root, h, err)
	}
	out := Commit{Hash: h, When: c.Committer.When, Tree: c.TreeHash, Shallow: r.shallow[h]}
	if len(c.ParentHashes) > 0 {
		out.parent = c.ParentHashes[0]
	}
	return out, nil
}

// Walk visits start and its first-parent ancestors, newest first (the
// history of the branch, merges as one step each). For each commit, trees
// holds the tree of each of folders (slash paths relative to the
// repository's root, "" for the root), or a zero Hash where the commit has
// no such folder; fn must not keep trees, and returns false to stop. A
// commit whose parents the clone lacks ends the walk (its Shallow is set).
func (r *Repo) Walk(start Commit, folders []string, fn func(c Commit, trees []Hash) (bool, error)) error {
	w := newWalker(r, folders)
	c := start
	for {
		if err := w.descend(w.root, c.Tree); err != nil {
			return fmt.Errorf("%s: commit %s: %w", r.Root, c.Hash, err)
		}
		more, err := fn(c, w.trees)
		if err != nil || !more || c.Shallow || c.parent.IsZero() {
			return err
		}
		next, err := r.commit(c.parent)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			// A clone that lacks the parent without listing the commit as
			// shallow: the history ends here all the same.
			c.Shallow = true
			_, err = fn(c, w.trees)
			return err
		}
		if err != nil {
			return err
		}
		c = next
	}
}

// walker keeps, for each folder of the path trie, the tree it had at the
// last commit visited: an unchanged tree is not read again, nor anything
// below it.
type walker struct {
	r     *Repo
	root  *trieNode
	trees []Hash
}

type trieNode struct {
	children map[string]*trieNode
	names    []string // children's names, in order
	watched  []int    // indexes of the folders that end here
	last     Hash
	seen     bool
}

func newWalker(r *Repo, folders []string) *walker {
	w := &walker{r: r, root: &trieNode{children: map[string]*trieNode{}}, trees: make([]Hash, len(folders))}
	for i, f := range folders {
		n := w.root
		if f != "" {
			for _, seg := range strings.Split(f, "/") {
				child := n.children[seg]
				if child == nil {
					child = &trieNode{children: map[string]*trieNode{}}
					n.children[seg] = child
					n.names = append(n.names, seg)
				}
				n = child
			}
		}
		n.watched = append(n.watched, i)
	}
	return w
}

func (w *walker) descend(n *trieNode, h Hash) error {
	if n.seen && n.last == h {
		return nil
	}
	n.seen, n.last = true, h
	for _, i := range n.watched {
		w.trees[i] = h
	}
	if len(n.names) == 0 {
		return nil
	}
	var entries []Entry
	if !h.IsZero() {
		var err error
		if entries, err = w.r.Entries(h); err != nil {
			return err
		}
	}
	for _, name := range n.names {
		var child Hash
		for _, e := range entries {
			if e.Name == name && e.Dir {
				child = e.Hash
				break
			}
		}
		if err := w.descend(n.children[name], child); err != nil {
			return err
		}
	}
	return nil
}

// Entry is a file or folder at the top of a tree.
type Entry struct {
	Name string
	Hash Hash
	Dir  bool
}

// Entries lists the files and folders at the top of a tree, in Git's
// order.
func (r *Repo) Entries(tree Hash) ([]Entry, error) {
	if out, ok := r.entries[tree]; ok {
		return out, nil
	}
	t, err := object.GetTree(r.objs, tree)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", tree, err)
	}
	out := make([]Entry, 0, len(t.Entries))
	for _, e := range t.Entries {
		out = append(out, Entry{Name: e.Name, Hash: e.Hash, Dir: e.Mode == filemode.Dir})
	}
	if len(r.entries) >= maxEntries {
		clear(r.entries)
	}
	r.entries[tree] = out
	return out, nil
}

// Lookup finds the object at the slash path rel below a tree: a zero Hash
// when there is none. dir says whether it is a folder.
func (r *Repo) Lookup(tree Hash, rel string) (h Hash, dir bool, err error) {
	h, dir = tree, true
	for _, seg := range strings.Split(path.Clean(rel), "/") {
		if !dir {
			return Hash{}, false, nil
		}
		entries, err := r.Entries(h)
		if err != nil {
			return Hash{}, false, err
		}
		h = Hash{}
		for _, e := range entries {
			if e.Name == seg {
				h, dir = e.Hash, e.Dir
				break
			}
		}
		if h.IsZero() {
			return Hash{}, false, nil
		}
	}
	return h, dir, nil
}

// Blob reads a file's content by its hash.
func (r *Repo) Blob(h Hash) ([]byte, error) {
	b, err := object.GetBlob(r.objs, h)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	if b.Size > maxFile {
		return nil, fmt.Errorf("blob %s: %d bytes, more than a config or record can be", h, b.Size)
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, maxFile))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	return data, nil
}

// File reads the file at the slash path rel below a tree; ok is false when
// there is no such file.
func (r *Repo) File(tree Hash, rel string) (data []byte, ok bool, err error) {
	h, dir, err := r.Lookup(tree, rel)
	if err != nil || h.IsZero() || dir {
		return nil, false, err
	}
	data, err = r.Blob(h)
	return data, err == nil, err
}
