package pipeline_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/migrate"
	"github.com/istio-gitops/istio-gitops/internal/patch"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// The independent steps of an upgrade, each a commit of its own, on a tree
// of Istio's Helm charts (istiod, gateway, cni and ztunnel) for 1-30 and
// 1-31, with a tag, stable gateway Services, an Ingress per revision and
// Flux: promote, move a tag, switch the live gateways, move istio-cni,
// move ztunnel, a patch, a namespace move. `git revert` of any one of them
// must apply without a conflict whatever was committed after it, the next
// run must change nothing, and the tree must be the one a run of the
// config as reverted writes.
//
// The config keeps the lines the steps change apart (a comment between
// two of them): git takes changes to adjacent lines for a conflict, and the
// config is the user's file.
const revertConfig = treetest.ConfigHead + `  - name: 1-30
  - name: 1-31
  # the default revision
  activeRevision: 1-30
  tags:
    # the stable tag
    prod-stable: 1-30
  gateways:
    # whose gateways take public traffic
    live: 1-30
    stableServices: true
    ingress:
      liveOnlyAnnotations: ["cert-manager.io/*"]
      template:
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: public
          annotations:
            cert-manager.io/cluster-issuer: letsencrypt
        spec:
          rules:
          - host: shop.example.com
            http:
              paths:
              - {path: /, pathType: Prefix, backend: {service: {name: istio-ingress, port: {name: http2}}}}
          - host: www.example.com
            http:
              paths:
              - {path: /, pathType: Prefix, backend: {service: {name: istio-ingress, port: {name: http2}}}}
      # each host's DNS, moved one at a time
      hosts:
        shop.example.com: 1-30
        # the next host
        www.example.com: 1-30
  nodeAgents:
    # istio-cni moves first
    cni: 1-30
    # then ztunnel
    ztunnel: 1-30
  flux:
    path: ./clusters/prod/istio
    sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
`

// revertStep is one step: an edit of the tree's input (the config, a
// GitPatch, a team's Namespace) that a run then carries out.
type revertStep struct {
	name string
	// file is the input file the step edits; old and new its text before
	// and after ("" old: the step adds the file).
	file, old, new string
}

// patchedFile and patchedLine are what the patch step changes: 1-30's
// istiod memory request.
const (
	patchedFile = "1-30/generated/deployment/istiod-1-30.yaml"
	patchedLine = "            memory: 2048Mi\n"
)

const payments = `apiVersion: v1
kind: Namespace
metadata:
  name: payments
  labels:
    istio.io/rev: %s
    team: payments
`

// revertSteps are the steps, the six of TestRevertOrders first. migrated
// is the team's Namespace file as `istio-gitops migrate` writes it.
func revertSteps(gitPatch, migrated string) []revertStep {
	return []revertStep{
		{name: "promote", file: "istio-gitops.yaml", old: "  activeRevision: 1-30\n", new: "  activeRevision: 1-31\n"},
		{name: "tag", file: "istio-gitops.yaml", old: "    prod-stable: 1-30\n", new: "    prod-stable: 1-31\n"},
		{name: "live", file: "istio-gitops.yaml", old: "    live: 1-30\n", new: "    live: 1-31\n"},
		{name: "istio-cni", file: "istio-gitops.yaml", old: "    cni: 1-30\n", new: "    cni: 1-31\n"},
		{name: "patch", file: "1-30/patches/istiod-memory.yaml", new: gitPatch},
		{name: "namespace", file: "payments.yaml", old: fmt.Sprintf(payments, "1-30"), new: migrated},
		{name: "ztunnel", file: "istio-gitops.yaml", old: "    ztunnel: 1-30\n", new: "    ztunnel: 1-31\n"},
		{name: "host shop", file: "istio-gitops.yaml", old: "        shop.example.com: 1-30\n", new: "        shop.example.com: 1-31\n"},
		{name: "host www", file: "istio-gitops.yaml", old: "        www.example.com: 1-30\n", new: "        www.example.com: 1-31\n"},
	}
}

// sameObject are the steps that change the same rendered object, by
// their nature: the live switch and each DNS host move all rewrite the two
// revisions' Ingresses (the live one's annotations, the hostname
// annotation, which lists a revision's hosts on one line as external-dns
// reads it, and each file's digest). Reverting one of them under another
// may stop on a conflict in those Ingresses alone; taking either side and
// running again resolves it (TestRevertPairs does so).
var sameObject = []string{"live", "host shop", "host www"}

// conflictable are the files a revert of two sameObject steps may
// conflict in: the two rendered Ingresses, derived files.
var conflictable = []string{
	"clusters/prod/istio/1-30/generated/ingress/istio-ingress/public-1-30.yaml",
	"clusters/prod/istio/1-31/generated/ingress/istio-ingress/public-1-31.yaml",
}

// migrateNamespace is what `istio-gitops migrate` writes for the payments
// team's Namespace file, moved from 1-30 to 1-31.
func migrateNamespace(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "payments.yaml")
	treetest.Write(t, p, []byte(fmt.Sprintf(payments, "1-30")))
	cmd := migrate.Command()
	cmd.SetArgs([]string{dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", "payments"})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(payments, "1-31"); string(b) != want {
		t.Fatalf("migrate wrote\n%s\nwant\n%s", b, want)
	}
	return string(b)
}

// revertRepo is a Git repository holding the tree, reused by every order
// tried: each goes back to a commit with git reset.
type revertRepo struct {
	t     testing.TB
	repo  string
	dir   string
	steps []revertStep
	base  string // the commit of the tree before any step
	// fresh caches, by set of steps, the tree a run writes for their
	// inputs laid over the base tree.
	fresh    map[uint]map[string][]byte
	baseTree map[string][]byte
	reverts  int
	// resolved counts the reverts that stopped on a conflict of two
	// sameObject steps and were resolved as the run says.
	resolved int
}

func newRevertRepo(t testing.TB) *revertRepo {
	t.Helper()
	repo := t.TempDir()
	r := &revertRepo{t: t, repo: repo, dir: filepath.Join(repo, "clusters", "prod", "istio"), fresh: map[uint]map[string][]byte{}}
	r.write("istio-gitops.yaml", revertConfig)
	r.write("istio-system.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: istio-system\n")
	r.write("istio-ingress.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: istio-ingress\n")
	r.write("payments.yaml", fmt.Sprintf(payments, "1-30"))
	for _, rev := range []string{"1-30", "1-31"} {
		treetest.CopyFile(t, filepath.Join("../../testdata/helm", rev, "all.yaml"), filepath.Join(r.dir, rev, "istioctl-output.yaml"))
	}
	run(t, r.dir)
	r.git("init", "-q", "-b", "main")
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "istio: 1-30 and 1-31")
	r.base = r.head()
	r.baseTree = treetest.Files(t, r.dir)

	// The patch step's GitPatch, made as a user makes one: edit the
	// written file, git diff, patch import.
	b, err := os.ReadFile(filepath.Join(r.dir, patchedFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b, []byte(patchedLine)) != 1 {
		t.Fatalf("%s must hold %q once", patchedFile, patchedLine)
	}
	r.write(patchedFile, string(bytes.Replace(b, []byte(patchedLine), []byte("            memory: 3072Mi\n"), 1)))
	diff := r.git("diff")
	r.git("checkout", "--", ".")
	gp, err := patch.Import(strings.NewReader(diff), "1-30", "istiod-memory")
	if err != nil {
		t.Fatal(err)
	}
	data, err := layout.FileBytes(gp)
	if err != nil {
		t.Fatal(err)
	}
	r.steps = revertSteps(string(data), migrateNamespace(t))
	return r
}

func (r *revertRepo) write(rel, content string) {
	r.t.Helper()
	treetest.Write(r.t, filepath.Join(r.dir, filepath.FromSlash(rel)), []byte(content))
}

func (r *revertRepo) git(args ...string) string {
	r.t.Helper()
	return treetest.Git(r.t, r.repo, args...)
}

func (r *revertRepo) head() string {
	r.t.Helper()
	return strings.TrimSpace(r.git("rev-parse", "HEAD"))
}

// edit lays step i's input over the tree at dir.
func (r *revertRepo) edit(dir string, i int) {
	r.t.Helper()
	s := r.steps[i]
	p := filepath.Join(dir, filepath.FromSlash(s.file))
	if s.old == "" {
		treetest.Write(r.t, p, []byte(s.new))
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		r.t.Fatal(err)
	}
	if bytes.Count(b, []byte(s.old)) != 1 {
		r.t.Fatalf("step %s: %s must hold %q once:\n%s", s.name, s.file, s.old, b)
	}
	treetest.Write(r.t, p, bytes.Replace(b, []byte(s.old), []byte(s.new), 1))
}

// apply makes step i a commit: the edit, a run, git commit.
func (r *revertRepo) apply(i int, done uint) string {
	r.t.Helper()
	r.edit(r.dir, i)
	run(r.t, r.dir)
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "istio: "+r.steps[i].name)
	r.check(done|1<<i, "after step "+r.steps[i].name)
	if r.steps[i].name == "promote" {
		// The default tag follows activeRevision (no tags.default): the
		// promote moves its injector, and its revert moves it back.
		changed := r.git("diff", "--name-only", "HEAD~1", "HEAD")
		for _, f := range []string{"common/mutatingwebhookconfiguration/istio-revision-tag-default.yaml", "common/service/istiod.yaml"} {
			if !strings.Contains(changed, f) {
				r.t.Fatalf("the promote does not change %s:\n%s", f, changed)
			}
		}
	}
	return r.head()
}

// revert reverts the commit of step i (at commit c), wants it to apply
// without a conflict (unless i and one of the steps of others, committed
// with it, change the same object: see sameObject) and the next run to
// change nothing, and returns the new head.
func (r *revertRepo) revert(i int, c string, left, others uint, what string) string {
	r.t.Helper()
	r.reverts++
	cmd := treetest.GitCmd(r.repo, "revert", "--no-edit", c)
	if out, err := cmd.CombinedOutput(); err != nil {
		conflicted := strings.Fields(r.git("diff", "--name-only", "--diff-filter=U"))
		if !r.sameObject(i, others) || len(conflicted) == 0 || slices.ContainsFunc(conflicted, func(f string) bool { return !slices.Contains(conflictable, f) }) {
			r.t.Fatalf("%s: git revert of step %s does not apply: %v\n%s\nconflicts in: %q\n%s", what, r.steps[i].name, err, out, conflicted, r.git("diff"))
		}
		r.resolve(conflicted, what)
	}
	results := run(r.t, r.dir)
	if st := r.git("status", "--porcelain"); st != "" {
		r.t.Fatalf("%s: the run after the revert of step %s changed the tree:\n%s%s", what, r.steps[i].name, st, r.git("diff"))
	}
	for _, l := range resultLines(results) {
		if strings.Contains(l, " -> ") {
			r.t.Errorf("%s: the run after the revert of step %s said something moved: %s", what, r.steps[i].name, l)
		}
	}
	r.check(left, what)
	return r.head()
}

// sameObject reports whether step i and a step of set change the same
// rendered object by their nature (see sameObject).
func (r *revertRepo) sameObject(i int, set uint) bool {
	if !slices.Contains(sameObject, r.steps[i].name) {
		return false
	}
	for j, s := range r.steps {
		if j != i && set&(1<<j) != 0 && slices.Contains(sameObject, s.name) {
			return true
		}
	}
	return false
}

// resolve finishes a revert that stopped on a conflict in derived files
// as the run's message says: the run refuses the tree, naming a file, that
// it is a merge conflict and how to resolve it, and writes nothing; each
// file taken from one side (ours and theirs in turn), the run writes it
// anew, and the revert is committed.
func (r *revertRepo) resolve(conflicted []string, what string) {
	r.t.Helper()
	r.resolved++
	err := runFails(r.t, r.dir, "holds merge-conflict markers", "it is derived", "take either side", "run again")
	if !slices.ContainsFunc(conflicted, func(f string) bool {
		return strings.Contains(err.Error(), strings.TrimPrefix(f, "clusters/prod/istio/"))
	}) {
		r.t.Errorf("%s: the run's error names none of the conflicted files %q: %v", what, conflicted, err)
	}
	side := "--ours"
	if r.resolved%2 == 0 {
		side = "--theirs"
	}
	r.git(append([]string{"checkout", side, "--"}, conflicted...)...)
	run(r.t, r.dir)
	r.git("add", "-A")
	r.git("-c", "core.editor=true", "revert", "--continue")
}

// check compares the tree with the one a run writes for the inputs of
// the steps in set over the base tree.
func (r *revertRepo) check(set uint, what string) {
	r.t.Helper()
	want := r.freshTree(set)
	if d := treetest.Diff(treetest.Files(r.t, r.dir), want); d != "" {
		r.t.Fatalf("%s: the tree is not the one a run writes for steps %q:\n%s", what, r.names(set), d)
	}
}

func (r *revertRepo) freshTree(set uint) map[string][]byte {
	r.t.Helper()
	if tree, ok := r.fresh[set]; ok {
		return tree
	}
	dir := r.t.TempDir()
	for _, n := range treetest.Names(r.baseTree) {
		treetest.Write(r.t, filepath.Join(dir, n), r.baseTree[n])
	}
	for i := range r.steps {
		if set&(1<<i) != 0 {
			r.edit(dir, i)
		}
	}
	run(r.t, dir)
	tree := treetest.Files(r.t, dir)
	r.fresh[set] = tree
	if err := os.RemoveAll(dir); err != nil {
		r.t.Fatal(err)
	}
	return tree
}

func (r *revertRepo) names(set uint) []string {
	var out []string
	for i, s := range r.steps {
		if set&(1<<i) != 0 {
			out = append(out, s.name)
		}
	}
	return out
}

// reset goes back to commit c, the working tree with it.
func (r *revertRepo) reset(c string) {
	r.t.Helper()
	r.git("reset", "-q", "--hard", c)
}

// TestRevertPairs: for every ordered pair of the steps, a then b
// committed, reverting a (under b) applies cleanly and leaves the tree a
// run of the config as reverted writes; then reverting b leaves the tree
// as it was before both.
func TestRevertPairs(t *testing.T) {
	t.Parallel()
	r := newRevertRepo(t)
	n := len(r.steps)
	for a := range n {
		r.reset(r.base)
		ca := r.apply(a, 0)
		for b := range n {
			if b == a {
				continue
			}
			r.reset(ca)
			cb := r.apply(b, 1<<a)
			what := fmt.Sprintf("%s then %s", r.steps[a].name, r.steps[b].name)
			r.revert(a, ca, 1<<b, 1<<b, what+", revert "+r.steps[a].name)
			r.revert(b, cb, 0, 1<<a, what+", revert both")
		}
	}
	if r.resolved == 0 {
		t.Errorf("no revert of two of %q stopped on a conflict: if they no longer do, drop them from sameObject and say so in the README", sameObject)
	}
	t.Logf("%d steps, %d ordered pairs, %d reverts, %d of them resolved as the run says", n, n*(n-1), r.reverts, r.resolved)
}

// TestRevertOrders commits the first six steps one after the other and
// reverts them in every order: 720 orders. An order is a path through the
// 64 sets of steps left, one revert an edge, and each revert's outcome is
// decided by the trees alone: the commit reverted, and the tree it is
// reverted onto, which check wants byte for byte the tree of the steps
// left (the config and every file), whatever the order that led there. So
// the search reverts each step from each set once (192 reverts, going
// back with git reset) and counts the orders through them; every one of
// the 720 is made of these reverts. With ISTIO_GITOPS_REVERTS=every it
// replays each order in full instead (1956 reverts, the orders sharing
// only their beginnings: about ten times as long). Each revert applies
// cleanly, the next run changes nothing, and the tree is the one a run
// writes for the steps left. It runs with ISTIO_GITOPS_REVERTS=all (make
// test-reverts, which .ci/run runs); TestRevertPairs runs in every go
// test.
func TestRevertOrders(t *testing.T) {
	mode := os.Getenv("ISTIO_GITOPS_REVERTS")
	if mode != "all" && mode != "every" {
		t.Skip("the 720 orders run with ISTIO_GITOPS_REVERTS=all (make test-reverts)")
	}
	t.Parallel()
	start := time.Now()
	r := newRevertRepo(t)
	const six = 6
	commits := make([]string, six)
	var done uint
	for i := range six {
		commits[i] = r.apply(i, done)
		done |= 1 << i
	}
	// orders[left] is the number of orders of reverting the steps of
	// left, once the search has been through that set.
	orders := map[uint]int{}
	var search func(at string, left uint, order []int) int
	search = func(at string, left uint, order []int) int {
		if left == 0 {
			return 1
		}
		if n, ok := orders[left]; ok && mode == "all" {
			return n
		}
		n := 0
		for i := range six {
			if left&(1<<i) == 0 {
				continue
			}
			r.reset(at)
			var names []string
			for _, j := range append(slices.Clone(order), i) {
				names = append(names, r.steps[j].name)
			}
			head := r.revert(i, commits[i], left&^(1<<i), done, "revert "+strings.Join(names, ", "))
			n += search(head, left&^(1<<i), append(order, i))
		}
		orders[left] = n
		return n
	}
	got := search(r.head(), done, nil)
	want := 1
	for i := range six {
		want *= six - i
	}
	if got != want {
		t.Errorf("%d orders tried, want %d", got, want)
	}
	edges := six << (six - 1) // each step reverted from each set that holds it
	if mode == "all" && r.reverts != edges {
		t.Errorf("%d reverts, want %d: one a step and a set of steps left", r.reverts, edges)
	}
	t.Logf("%d orders of the %d steps, %d reverts, %d trees written fresh, in %s", got, six, r.reverts, len(r.fresh), time.Since(start).Round(time.Second))
}
