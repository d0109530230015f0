package history_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/istio-gitops/istio-gitops/internal/history"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// repo is a repository built with go-git's own commit API, each commit at
// a set time.
type repo struct {
	t    *testing.T
	dir  string
	r    *git.Repository
	wt   *git.Worktree
	when time.Time
}

func newRepo(t *testing.T) *repo {
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	return &repo{t: t, dir: dir, r: r, wt: wt, when: t0}
}

// commit writes files and commits them an hour after the last commit.
func (g *repo) commit(files map[string]string, parents ...plumbing.Hash) plumbing.Hash {
	g.t.Helper()
	for name, content := range files {
		treetest.Write(g.t, filepath.Join(g.dir, name), []byte(content))
	}
	if err := g.wt.AddGlob("."); err != nil {
		g.t.Fatal(err)
	}
	sig := &object.Signature{Name: "Platform Team", Email: "platform@example.com", When: g.when}
	h, err := g.wt.Commit("step", &git.CommitOptions{Author: sig, Committer: sig, Parents: parents, AllowEmptyCommits: true})
	if err != nil {
		g.t.Fatal(err)
	}
	g.when = g.when.Add(time.Hour)
	return h
}

func (g *repo) checkout(branch string, create bool, at plumbing.Hash) {
	g.t.Helper()
	opts := &git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create, Keep: true}
	if create {
		opts.Hash = at
	}
	if err := g.wt.Checkout(opts); err != nil {
		g.t.Fatal(err)
	}
}

// walked is one commit of a walk: its hash, time and the folders' trees.
type walked struct {
	hash    plumbing.Hash
	when    time.Time
	trees   []history.Hash
	shallow bool
}

func walk(t *testing.T, r *history.Repo, from history.Commit, folders ...string) []walked {
	t.Helper()
	var out []walked
	err := r.Walk(from, folders, func(c history.Commit, trees []history.Hash) (bool, error) {
		out = append(out, walked{c.Hash, c.When, append([]history.Hash(nil), trees...), c.Shallow})
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWalk: the first-parent history, newest first, with committer times;
// a merge is one step, the branch's own commits are not visited; each
// folder's tree changes exactly where its files did.
func TestWalk(t *testing.T) {
	g := newRepo(t)
	c1 := g.commit(map[string]string{"clusters/a/x.yaml": "1\n", "clusters/b/y.yaml": "1\n"})
	c2 := g.commit(map[string]string{"clusters/a/x.yaml": "2\n"})
	g.checkout("side", true, c2)
	s1 := g.commit(map[string]string{"clusters/b/y.yaml": "2\n"})
	g.checkout("master", false, plumbing.ZeroHash)
	treetest.Write(t, filepath.Join(g.dir, "clusters/b/y.yaml"), []byte("1\n"))
	c3 := g.commit(map[string]string{"README.md": "fleet\n"})
	treetest.Write(t, filepath.Join(g.dir, "clusters/b/y.yaml"), []byte("2\n"))
	m := g.commit(nil, c3, s1)

	r, err := history.Open(filepath.Join(g.dir, "clusters"))
	if err != nil {
		t.Fatal(err)
	}
	head, err := r.Head()
	if err != nil || head.Hash != m {
		t.Fatalf("HEAD %v %v, want the merge %s", head.Hash, err, m)
	}
	got := walk(t, r, head, "clusters/a", "clusters/b", "clusters/c")
	want := []plumbing.Hash{m, c3, c2, c1}
	if len(got) != len(want) {
		t.Fatalf("walked %d commits, want %d (first parents only)", len(got), len(want))
	}
	for i, w := range got {
		if w.hash != want[i] {
			t.Errorf("commit %d is %s, want %s", i, w.hash, want[i])
		}
		// The side branch's commit took the hour between c2 and c3.
		if hours := []int{4, 3, 1, 0}[i]; !w.when.Equal(t0.Add(time.Duration(hours) * time.Hour)) {
			t.Errorf("commit %d at %s", i, w.when)
		}
		if !w.trees[2].IsZero() {
			t.Errorf("commit %d: clusters/c is no folder, its tree must be zero", i)
		}
	}
	// a: changed at c2 only; b: changed by the merge only.
	same := func(i, j, f int) bool { return got[i].trees[f] == got[j].trees[f] }
	if !same(0, 1, 0) || !same(1, 2, 0) || same(2, 3, 0) {
		t.Error("clusters/a's tree must change at c2 only")
	}
	if same(0, 1, 1) || !same(1, 2, 1) || !same(2, 3, 1) {
		t.Error("clusters/b's tree must change at the merge only")
	}
	if data, ok, err := r.File(got[0].trees[1], "y.yaml"); err != nil || !ok || string(data) != "2\n" {
		t.Errorf("clusters/b/y.yaml at the merge: %q %v %v", data, ok, err)
	}
	if _, ok, err := r.File(got[0].trees[1], "nope.yaml"); ok || err != nil {
		t.Errorf("a missing file: %v %v", ok, err)
	}
	if rel, err := r.Rel(filepath.Join(g.dir, "clusters", "a")); err != nil || rel != "clusters/a" {
		t.Errorf("Rel: %q %v", rel, err)
	}
	if rel, err := r.Rel(g.dir); err != nil || rel != "" {
		t.Errorf("Rel of the root: %q %v, want \"\"", rel, err)
	}
	if _, err := r.Rel(t.TempDir()); err == nil {
		t.Error("a folder out of the repository has no path in it")
	}
	// Locate: a folder's path in its repository, the root's own "".
	for dir, want := range map[string]string{filepath.Join(g.dir, "clusters", "b"): "clusters/b", g.dir: ""} {
		if _, root, rel, err := history.Locate(dir); err != nil || root != r.Root || rel != want {
			t.Errorf("Locate(%s) = %q %q %v, want %q in %s", dir, root, rel, err, want, r.Root)
		}
	}
	// Stopping early.
	n := 0
	_ = r.Walk(head, nil, func(history.Commit, []history.Hash) (bool, error) { n++; return n < 2, nil })
	if n != 2 {
		t.Errorf("the walk went on after fn said stop: %d", n)
	}
	if c, err := r.Resolve("HEAD~2"); err != nil || c.Hash != c2 {
		t.Errorf("Resolve(HEAD~2) = %v %v, want c2", c.Hash, err)
	}
}

// TestShallow: a shallow clone's history ends early, and says so.
func TestShallow(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found")
	}
	g := newRepo(t)
	for i := range 4 {
		g.commit(map[string]string{"a/x.yaml": string(rune('0'+i)) + "\n"})
	}
	clone := filepath.Join(t.TempDir(), "clone")
	treetest.Git(t, t.TempDir(), "clone", "-q", "--depth", "2", "file://"+g.dir, clone)
	r, err := history.Open(clone)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Shallow() {
		t.Error("a --depth 2 clone must be shallow")
	}
	head, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	got := walk(t, r, head, "a")
	if len(got) != 2 || got[0].shallow || !got[1].shallow {
		t.Errorf("walked %d commits, the last one shallow: %+v", len(got), got)
	}
}

func TestNotRepository(t *testing.T) {
	dir := t.TempDir()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			t.Skip("the temporary folder is inside a repository")
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if _, err := history.Open(dir); !errors.Is(err, history.ErrNotRepository) {
		t.Errorf("Open outside a repository: %v", err)
	}
	g := newRepo(t)
	if err := os.WriteFile(filepath.Join(g.dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := history.Open(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Head(); err == nil {
		t.Error("a repository without a commit has no HEAD commit")
	}
}
