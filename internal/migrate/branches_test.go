package migrate

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// teamFiles are the files of examples/migrate/sample whose namespaces
// move from 1-30 to 1-31, by owning team: each team's branch must change
// these and nothing else.
var teamFiles = map[string][]string{
	"checkout": {"namespaces/checkout/checkout-api.yaml", "namespaces/checkout/checkout-cart.yaml"},
	"identity": {"namespaces/identity.yaml"},
	"payments": {"namespaces/payments.yaml"},
	"platform": {"namespaces/platform.yaml"},
	"search":   {"namespaces/search.yaml"},
}

// gitRepo is a repository of the sample's Namespace manifests, owned by
// five teams, with one commit on main.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	r := &gitRepo{t: t, dir: t.TempDir()}
	treetest.Copy(t, sampleDir, r.dir)
	// The commits' author, from the environment as git reads it.
	for k, v := range map[string]string{
		"GIT_AUTHOR_NAME": "Platform Team", "GIT_AUTHOR_EMAIL": "platform@example.com",
		"GIT_COMMITTER_NAME": "Platform Team", "GIT_COMMITTER_EMAIL": "platform@example.com",
		"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
	} {
		t.Setenv(k, v)
	}
	r.git("init", "-q", "-b", "main")
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "Namespaces of every team")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// refs are every reference with the commit it points at.
func (r *gitRepo) refs() string { return r.git("for-each-ref", "--format=%(refname) %(objectname)") }

// worktree is every file of the working tree and the index, as bytes.
func (r *gitRepo) worktree() map[string][]byte {
	files := treetest.Files(r.t, r.dir)
	for f := range files {
		if strings.HasPrefix(f, ".git/") && f != ".git/index" && f != ".git/HEAD" {
			delete(files, f)
		}
	}
	return files
}

func (r *gitRepo) migrate(args ...string) (string, error) {
	r.t.Helper()
	return execute(r.t, append([]string{r.dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team"}, args...)...)
}

// TestBranches: with --branches, one branch per team off HEAD, each one
// commit that changes only the team's files, and in them only the
// revision labels (comments and formatting kept); the commit message is
// the pull request; main, the index and the working tree stay; each patch
// of --patches applied with git am gives the branch's tree; a second run
// changes nothing.
func TestBranches(t *testing.T) {
	r := newGitRepo(t)
	head := r.git("rev-parse", "HEAD")
	before := r.worktree()
	patches := filepath.Join(t.TempDir(), "patches")
	out, err := r.migrate("--branches", "--patches", patches, "--deadline", "2026-12-31")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d := treetest.Diff(r.worktree(), before); d != "" || r.git("rev-parse", "HEAD") != head || r.git("symbolic-ref", "HEAD") != "refs/heads/main" {
		t.Errorf("main, the index or the working tree changed:\n%s", d)
	}
	if s := r.git("status", "--porcelain"); s != "" {
		t.Errorf("git status: %s", s)
	}
	if fsck := r.git("fsck", "--strict"); strings.Contains(fsck, "error") {
		t.Errorf("git fsck: %s", fsck)
	}
	var branches []string
	for _, b := range strings.Fields(r.git("branch", "--format=%(refname:short)")) {
		if b != "main" {
			branches = append(branches, b)
		}
	}
	var want []string
	for _, team := range slices.Sorted(maps.Keys(teamFiles)) {
		want = append(want, "istio-1-31/"+team)
	}
	if !slices.Equal(branches, want) {
		t.Fatalf("branches %q, want %q\n%s", branches, want, out)
	}
	am := t.TempDir()
	r.git("worktree", "add", "-q", "--detach", am, "main")
	for _, team := range slices.Sorted(maps.Keys(teamFiles)) {
		branch := "istio-1-31/" + team
		if got := r.git("rev-list", "--parents", "-n1", branch); !strings.HasSuffix(got, " "+head) || r.git("rev-list", "--count", "main.."+branch) != "1" {
			t.Errorf("%s: must be one commit whose parent is HEAD %s: %s", branch, head, got)
		}
		if files := strings.Fields(r.git("diff", "--name-only", "main", branch)); !slices.Equal(files, teamFiles[team]) {
			t.Errorf("%s changes %q, want only the team's files %q", branch, files, teamFiles[team])
		}
		for _, f := range teamFiles[team] {
			after := r.git("show", branch+":"+f)
			if !sameBesidesLabels(before[f], []byte(after+"\n")) {
				t.Errorf("%s: %s changed beyond its revision labels (comments or formatting lost):\n%s", branch, f, r.git("diff", "main", branch, "--", f))
			}
		}
		diff := r.git("diff", "-U0", "main", branch)
		for _, l := range strings.Split(diff, "\n") {
			if (strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-")) && !strings.HasPrefix(l, "+++") && !strings.HasPrefix(l, "---") &&
				!strings.Contains(l, api.RevisionLabel+": ") {
				t.Errorf("%s: a line other than istio.io/rev changed: %q", branch, l)
			}
		}
		msg := r.git("log", "-1", "--format=%B", branch)
		for _, s := range []string{
			"istio: move the namespaces of team " + team + " from 1-30 to 1-31\n\n",
			"## Team `" + team + "`", "### Moved", "Deadline: 2026-12-31.", "## How to roll back",
			"\n" + TrailerMigration + ": 1-30 -> 1-31\n" + TrailerTeam + ": " + team,
		} {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: the commit message lacks %q:\n%s", branch, s, msg)
			}
		}
		if strings.Count(msg, "## Team ") != 1 {
			t.Errorf("%s: the commit message must hold the team's rows only:\n%s", branch, msg)
		}
		for _, l := range []string{"git push origin " + branch, "gh pr create --fill --base main --head " + branch} {
			if !strings.Contains(out, l) {
				t.Errorf("the output lacks %q:\n%s", l, out)
			}
		}
		// git am of the team's patch on main gives the branch's tree.
		cmd := exec.Command("git", "am", "-q", filepath.Join(patches, team+".patch"))
		cmd.Dir = am
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git am %s.patch: %v\n%s", team, err, b)
		}
		if got, want := r.git("-C", am, "rev-parse", "HEAD^{tree}"), r.git("rev-parse", branch+"^{tree}"); got != want {
			t.Errorf("git am of %s.patch gives tree %s, the branch has %s", team, got, want)
		}
		if got, want := r.git("-C", am, "log", "-1", "--format=%s%n%b"), r.git("log", "-1", "--format=%s%n%b", branch); got != want {
			t.Errorf("git am of %s.patch gives the message\n%s\nthe branch's is\n%s", team, got, want)
		}
		r.git("-C", am, "checkout", "-q", "--detach", "main")
	}
	r.git("worktree", "remove", "--force", am)

	// A second run is a no-op: same commits, same patches.
	refs := r.refs()
	patchFiles := treetest.Files(t, patches)
	out, err = r.migrate("--branches", "--patches", patches, "--deadline", "2026-12-31")
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if got := r.refs(); got != refs {
		t.Errorf("the second run moved branches:\n%s\nwas\n%s", got, refs)
	}
	if d := treetest.Diff(treetest.Files(t, patches), patchFiles); d != "" {
		t.Errorf("the second run changed the patches:\n%s", d)
	}
	if n := strings.Count(out, ": unchanged, team "); n != 5 {
		t.Errorf("the second run must say each branch is unchanged:\n%s", out)
	}

	// Another deadline is another pull request: each branch is updated.
	out, err = r.migrate("--branches", "--deadline", "2027-01-31")
	if err != nil || strings.Count(out, ": updated, team ") != 5 {
		t.Errorf("a new deadline must update each branch (%v):\n%s", err, out)
	}
	if msg := r.git("log", "-1", "--format=%B", "istio-1-31/payments"); !strings.Contains(msg, "Deadline: 2027-01-31.") {
		t.Errorf("the updated message:\n%s", msg)
	}
}

// TestBranchesDirtyTree: a change not committed, staged or not, to a file
// a team's commit would change is refused, naming the file, and nothing
// is written; changes to other files are not in the way.
func TestBranchesDirtyTree(t *testing.T) {
	r := newGitRepo(t)
	f := filepath.Join(r.dir, "namespaces", "payments.yaml")
	orig, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		edit  func()
		want  string
		wants bool // the run succeeds
	}{
		{"changed", func() { treetest.Write(t, f, append(slices.Clone(orig), "# more\n"...)) },
			"namespaces/payments.yaml: has changes not committed (git status): commit or stash them first", false},
		{"staged", func() {
			treetest.Write(t, f, append(slices.Clone(orig), "# more\n"...))
			r.git("add", "namespaces/payments.yaml")
			treetest.Write(t, f, orig)
		}, "namespaces/payments.yaml: has changes staged and not committed", false},
		{"deleted", func() { os.Remove(f) }, "namespaces/payments.yaml: is deleted in the working tree", false},
		{"another file", func() {
			treetest.Write(t, filepath.Join(r.dir, "namespaces", "search-crawl.yaml"), []byte("# not a team's change\n"))
			treetest.Write(t, filepath.Join(r.dir, "notes.txt"), []byte("untracked\n"))
		}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.edit()
			refs := r.refs()
			out, err := r.migrate("--branches")
			if c.wants {
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q\n%s", err, c.want, out)
			}
			if got := r.refs(); got != refs {
				t.Errorf("a refused run moved branches:\n%s", got)
			}
			r.git("reset", "-q", "--hard")
		})
	}
}

// TestBranchesRefused: a branch of the same name that this command did
// not make, the current branch, and a bad prefix are refused.
func TestBranchesRefused(t *testing.T) {
	r := newGitRepo(t)
	r.git("branch", "istio-1-31/search")
	r.git("checkout", "-q", "-b", "teams/payments")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, `branch "istio-1-31/search" exists and its last commit`},
		{[]string{"--branch-prefix", "teams/"}, `branch "teams/payments" is checked out`},
		{[]string{"--branch-prefix", "bad..prefix/"}, `--branch-prefix: the branch of team "checkout": "bad..prefix/checkout" must be a Git branch name`},
	} {
		refs := r.refs()
		out, err := r.migrate(append([]string{"--branches"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q\n%s", c.args, err, c.want, out)
		}
		if r.refs() != refs {
			t.Errorf("%q: a refused run moved branches", c.args)
		}
	}
	if _, err := execute(t, r.dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--deadline", "2026-12-31"); err == nil ||
		!strings.Contains(err.Error(), "--deadline: must be given with --branches or --patches") {
		t.Errorf("--deadline alone: %v", err)
	}
	outside := t.TempDir()
	treetest.Copy(t, sampleDir, outside)
	if _, err := execute(t, outside, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--branches"); err == nil ||
		!strings.Contains(err.Error(), "must be in a Git repository") {
		t.Errorf("outside a repository: %v", err)
	}
}

// TestPatchesOnly: --patches without --branches writes the patch files and
// nothing into the repository; --output json lists each team's commit.
func TestPatchesOnly(t *testing.T) {
	r := newGitRepo(t)
	git := treetest.Files(t, filepath.Join(r.dir, ".git"))
	patches := filepath.Join(t.TempDir(), "out")
	out, err := r.migrate("--patches", patches, "--owner", "payments", "--owner", "search", "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d := treetest.Diff(treetest.Files(t, filepath.Join(r.dir, ".git")), git); d != "" {
		t.Errorf("--patches wrote into the repository:\n%s", d)
	}
	var sum Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var teams []string
	for _, b := range sum.Branches {
		teams = append(teams, b.Team)
		p, err := os.ReadFile(b.Patch)
		if err != nil || !bytes.HasPrefix(p, []byte("From "+b.Commit+" ")) || b.Action != "created" {
			t.Errorf("team %s: patch %s (%v), action %s", b.Team, b.Patch, err, b.Action)
		}
	}
	if !slices.Equal(teams, []string{"payments", "search"}) || sum.NamespacesMoved != 3 {
		t.Errorf("teams %q, %d namespaces moved; want payments and search, 3", teams, sum.NamespacesMoved)
	}
}
