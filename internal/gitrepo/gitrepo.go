// Package gitrepo reads a Git repository and makes commits and branches in
// it without touching its working tree, its index or its current branch:
// what `migrate --branches` needs to give each team a branch of its own
// off HEAD. It uses go-git's object model, never the git binary's output.
//
// New objects are kept in memory until Write: a run that fails half way,
// or one that only prints patches, leaves the repository as it was.
package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/istio-gitops/istio-gitops/internal/history"
)

// Repo is a repository opened at its HEAD.
type Repo struct {
	// Root is the working tree's root folder.
	Root string
	repo *git.Repository
	// head is HEAD's reference (a branch, or a hash when detached) and
	// commit.
	head       *plumbing.Reference
	headCommit *object.Commit
	objects    *overlay
}

// Open opens the repository holding dir (dir or a parent folder has its
// .git) and returns it with dir's slash path relative to its root ("."
// for the root).
func Open(dir string) (*Repo, string, error) {
	repo, root, rel, err := history.Locate(dir)
	if err != nil {
		return nil, "", fmt.Errorf("%s: must be in a Git repository with a working tree: %w", dir, err)
	}
	if rel == "" {
		rel = "."
	}
	head, err := repo.Head()
	if err != nil {
		return nil, "", fmt.Errorf("%s: the repository must have a commit to branch off (HEAD: %w)", root, err)
	}
	commit, err := repo.CommitObject(head.Hash())
	if err != nil {
		return nil, "", fmt.Errorf("%s: HEAD %s: %w", root, head.Hash(), err)
	}
	r := &Repo{Root: root, repo: repo, head: head, headCommit: commit,
		objects: &overlay{EncodedObjectStorer: repo.Storer, mem: memory.NewStorage()}}
	return r, rel, nil
}

// Head is HEAD's commit.
func (r *Repo) Head() *object.Commit { return r.headCommit }

// HeadBranch is the branch HEAD is on ("main"); "" when HEAD is detached.
func (r *Repo) HeadBranch() string {
	if r.head.Name().IsBranch() {
		return r.head.Name().Short()
	}
	return ""
}

// Remote is the remote branches are pushed to: origin, else the only
// remote, else "origin" (for the commands printed).
func (r *Repo) Remote() string {
	remotes, err := r.repo.Remotes()
	if err != nil || len(remotes) == 0 {
		return "origin"
	}
	var names []string
	for _, rm := range remotes {
		names = append(names, rm.Config().Name)
	}
	if slices.Contains(names, "origin") || len(names) > 1 {
		return "origin"
	}
	return names[0]
}

// Extract writes the files of HEAD under the folder rel into dst, as
// they are committed: regular files with their content, links as links
// (a reader of dst refuses them, as it refuses them in the working tree).
func (r *Repo) Extract(rel, dst string) error {
	tree, err := r.headCommit.Tree()
	if err != nil {
		return err
	}
	if rel != "." {
		if tree, err = tree.Tree(rel); err != nil {
			return fmt.Errorf("%s: not in HEAD (%s): %w", rel, r.headCommit.Hash, err)
		}
	}
	return tree.Files().ForEach(func(f *object.File) error {
		full := filepath.Join(dst, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		switch f.Mode {
		case filemode.Symlink:
			target, err := f.Contents()
			if err != nil {
				return err
			}
			return os.Symlink(target, full)
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			rd, err := f.Reader()
			if err != nil {
				return err
			}
			defer rd.Close()
			out, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, rd); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil
	})
}

// CheckClean makes sure that each file (a slash path from the root) is in
// the index and the working tree as HEAD has it: a commit made off HEAD
// that changes it must not pass over changes not committed yet. The error
// names the first file that differs, and how.
func (r *Repo) CheckClean(files []string) error {
	tree, err := r.headCommit.Tree()
	if err != nil {
		return err
	}
	idx, err := r.repo.Storer.Index()
	if err != nil {
		return fmt.Errorf("%s: reading the index: %w", r.Root, err)
	}
	for _, p := range slices.Sorted(slices.Values(files)) {
		entry, err := tree.FindEntry(p)
		if err != nil {
			return fmt.Errorf("%s: not in HEAD: %w", p, err)
		}
		staged, err := idx.Entry(p)
		switch {
		case err != nil:
			return fmt.Errorf("%s: is removed from the index (git status): commit or restore it first", p)
		case staged.Hash != entry.Hash:
			return fmt.Errorf("%s: has changes staged and not committed (git status): commit or stash them first", p)
		}
		b, err := os.ReadFile(filepath.Join(r.Root, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("%s: is deleted in the working tree (git status): commit or restore it first", p)
		case err != nil:
			return err
		case plumbing.ComputeHash(plumbing.BlobObject, b) != entry.Hash:
			return fmt.Errorf("%s: has changes not committed (git status): commit or stash them first", p)
		}
	}
	return nil
}

// Identity is who commits: GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL, else
// user.name and user.email of Git's configuration (the repository's,
// global, system), dated as HEAD was committed so that the same change
// makes the same commit again.
func (r *Repo) Identity() (object.Signature, error) {
	cfg, err := r.repo.ConfigScoped(config.SystemScope)
	if err != nil {
		return object.Signature{}, fmt.Errorf("%s: reading Git's configuration: %w", r.Root, err)
	}
	name, email := os.Getenv("GIT_AUTHOR_NAME"), os.Getenv("GIT_AUTHOR_EMAIL")
	if name == "" {
		name = cfg.User.Name
	}
	if email == "" {
		email = cfg.User.Email
	}
	if name == "" || email == "" {
		return object.Signature{}, fmt.Errorf("%s: commits need an author: set git config user.name and user.email (or GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL)", r.Root)
	}
	return object.Signature{Name: name, Email: email, When: r.headCommit.Committer.When}, nil
}

// Commit makes, in memory, the commit that changes files (slash paths
// from the root, to their new content) of HEAD's tree, with HEAD as its
// parent. Only existing regular files may change.
func (r *Repo) Commit(files map[string][]byte, message string, who object.Signature) (*object.Commit, error) {
	tree, err := r.headCommit.Tree()
	if err != nil {
		return nil, err
	}
	hash, err := r.replace(tree, "", files)
	if err != nil {
		return nil, err
	}
	c := &object.Commit{Author: who, Committer: who, Message: message, TreeHash: hash, ParentHashes: []plumbing.Hash{r.headCommit.Hash}}
	obj := r.objects.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return nil, err
	}
	h, err := r.objects.SetEncodedObject(obj)
	if err != nil {
		return nil, err
	}
	return object.GetCommit(r.objects, h)
}

// replace writes the tree at dir with files changed, and returns its hash.
func (r *Repo) replace(t *object.Tree, dir string, files map[string][]byte) (plumbing.Hash, error) {
	here := map[string][]byte{}
	sub := map[string]map[string][]byte{}
	for p, b := range files {
		if b == nil {
			b = []byte{}
		}
		first, rest, nested := strings.Cut(p, "/")
		if nested {
			if sub[first] == nil {
				sub[first] = map[string][]byte{}
			}
			sub[first][rest] = b
		} else {
			here[first] = b
		}
	}
	out := &object.Tree{}
	done := map[string]bool{}
	for _, e := range t.Entries {
		full := path.Join(dir, e.Name)
		switch {
		case here[e.Name] != nil:
			if e.Mode != filemode.Regular && e.Mode != filemode.Executable && e.Mode != filemode.Deprecated {
				return plumbing.ZeroHash, fmt.Errorf("%s: must be a regular file in HEAD to be changed, not %s", full, e.Mode)
			}
			obj := r.objects.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			w, err := obj.Writer()
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if _, err := w.Write(here[e.Name]); err != nil {
				return plumbing.ZeroHash, err
			}
			if err := w.Close(); err != nil {
				return plumbing.ZeroHash, err
			}
			h, err := r.objects.SetEncodedObject(obj)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			e.Hash = h
			done[e.Name] = true
		case sub[e.Name] != nil:
			if e.Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s: must be a folder in HEAD, not %s", full, e.Mode)
			}
			st, err := object.GetTree(r.objects, e.Hash)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if e.Hash, err = r.replace(st, full, sub[e.Name]); err != nil {
				return plumbing.ZeroHash, err
			}
			done[e.Name] = true
		}
		out.Entries = append(out.Entries, e)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range here {
			if !yield(n) {
				return
			}
		}
		for n := range sub {
			if !yield(n) {
				return
			}
		}
	}) {
		if !done[name] {
			return plumbing.ZeroHash, fmt.Errorf("%s: must be a file of HEAD to be changed", path.Join(dir, name))
		}
	}
	obj := r.objects.NewEncodedObject()
	if err := out.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.objects.SetEncodedObject(obj)
}

// Branch is the commit at the tip of a local branch; nil when there is no
// such branch.
func (r *Repo) Branch(name string) (*object.Commit, error) {
	ref, err := r.repo.Storer.Reference(plumbing.NewBranchReferenceName(name))
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("branch %q: %w", name, err)
	}
	c, err := r.repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, fmt.Errorf("branch %q: %w", name, err)
	}
	return c, nil
}

// CheckBranchName reports why name cannot be a branch.
func CheckBranchName(name string) error {
	ref := plumbing.NewBranchReferenceName(name)
	if err := ref.Validate(); err != nil || name == "" || strings.HasPrefix(name, "-") {
		return fmt.Errorf("%q must be a Git branch name", name)
	}
	return nil
}

// SetBranch writes the objects made so far into the repository and points
// branch name at c; was is the commit it pointed at when read (nil for a
// new branch), so that a branch moved meanwhile is not overwritten.
func (r *Repo) SetBranch(name string, c *object.Commit, was *object.Commit) error {
	if err := r.flush(); err != nil {
		return err
	}
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(name), c.Hash)
	var old *plumbing.Reference
	if was != nil {
		old = plumbing.NewHashReference(ref.Name(), was.Hash)
	} else if _, err := r.repo.Storer.Reference(ref.Name()); err == nil {
		return fmt.Errorf("branch %q: was made while this run ran: run again", name)
	}
	if err := r.repo.Storer.CheckAndSetReference(ref, old); err != nil {
		return fmt.Errorf("branch %q: %w", name, err)
	}
	return nil
}

// flush copies the objects made in memory into the repository.
func (r *Repo) flush() error {
	iter, err := r.objects.mem.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		return err
	}
	var objs []plumbing.EncodedObject
	if err := iter.ForEach(func(o plumbing.EncodedObject) error {
		objs = append(objs, o)
		return nil
	}); err != nil {
		return err
	}
	for _, o := range objs {
		if r.repo.Storer.HasEncodedObject(o.Hash()) == nil {
			continue
		}
		if _, err := r.repo.Storer.SetEncodedObject(o); err != nil {
			return fmt.Errorf("%s: writing object %s: %w", r.Root, o.Hash(), err)
		}
	}
	return nil
}

// Diff is the unified diff of a commit against its parent, as `git diff`
// prints it (a/ and b/ prefixes, index lines), and its diffstat.
func (r *Repo) Diff(c *object.Commit) (diff, stat string, err error) {
	parent, err := object.GetCommit(r.objects, c.ParentHashes[0])
	if err != nil {
		return "", "", err
	}
	p, err := parent.Patch(c)
	if err != nil {
		return "", "", err
	}
	var b bytes.Buffer
	if err := p.Encode(&b); err != nil {
		return "", "", err
	}
	return b.String(), p.Stats().String(), nil
}

// FormatPatch is commit c as `git format-patch` writes it: a mail whose
// subject is the message's first line and whose body is the rest, then the
// diffstat and the diff. `git am` of it makes a commit with c's tree.
func (r *Repo) FormatPatch(c *object.Commit) ([]byte, error) {
	diff, stat, err := r.Diff(c)
	if err != nil {
		return nil, err
	}
	subject, body, _ := strings.Cut(c.Message, "\n")
	body = strings.TrimLeft(body, "\n")
	var b bytes.Buffer
	fmt.Fprintf(&b, "From %s Mon Sep 17 00:00:00 2001\n", c.Hash)
	fmt.Fprintf(&b, "From: %s\n", (&mail.Address{Name: c.Author.Name, Address: c.Author.Email}).String())
	fmt.Fprintf(&b, "Date: %s\n", c.Author.When.Format("Mon, 2 Jan 2006 15:04:05 -0700"))
	fmt.Fprintf(&b, "Subject: [PATCH] %s\n", mime.QEncoding.Encode("utf-8", subject))
	b.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n")
	if body != "" {
		b.WriteString(strings.TrimRight(body, "\n") + "\n")
	}
	fmt.Fprintf(&b, "---\n%s\n%s-- \nistio-gitops\n\n", stat, diff)
	return b.Bytes(), nil
}

// overlay reads objects from the repository and from memory, and writes
// them to memory only.
type overlay struct {
	storer.EncodedObjectStorer
	mem *memory.Storage
}

func (o *overlay) NewEncodedObject() plumbing.EncodedObject { return o.mem.NewEncodedObject() }

func (o *overlay) SetEncodedObject(obj plumbing.EncodedObject) (plumbing.Hash, error) {
	return o.mem.SetEncodedObject(obj)
}

func (o *overlay) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if obj, err := o.mem.EncodedObject(t, h); err == nil {
		return obj, nil
	}
	return o.EncodedObjectStorer.EncodedObject(t, h)
}

func (o *overlay) HasEncodedObject(h plumbing.Hash) error {
	if o.mem.HasEncodedObject(h) == nil {
		return nil
	}
	return o.EncodedObjectStorer.HasEncodedObject(h)
}

func (o *overlay) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if s, err := o.mem.EncodedObjectSize(h); err == nil {
		return s, nil
	}
	return o.EncodedObjectStorer.EncodedObjectSize(h)
}
