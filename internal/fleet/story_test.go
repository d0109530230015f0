package fleet_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

func TestMain(m *testing.M) { os.Exit(treetest.Main(m)) }

// base is the story's first day; every commit and clock is counted from it.
var base = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func at(days, hours int) time.Time {
	return base.Add(time.Duration(days)*24*time.Hour + time.Duration(hours)*time.Hour)
}

// fleetRepo is a Git repository of three clusters' trees, built by the
// test with the real git and set commit times.
type fleetRepo struct {
	t    *testing.T
	dir  string
	now  time.Time
	last string // the last run's results and error, for messages
}

func newFleet(t *testing.T) *fleetRepo {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found")
	}
	dir := t.TempDir()
	treetest.Git(t, dir, "init", "-q", "-b", "main")
	return &fleetRepo{t: t, dir: dir}
}

func (f *fleetRepo) tree(name string) string { return filepath.Join(f.dir, "clusters", name, "istio") }

// spec is a cluster's config.
type spec struct {
	revisions []string
	active    string
	after     string
	soak      string
	more      string // more lines of spec, indented
}

func (f *fleetRepo) config(name string, s spec) {
	f.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: IstioGitOps\nmetadata:\n  name: %s\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nspec:\n  revisions:\n", name)
	for _, r := range s.revisions {
		fmt.Fprintf(&b, "  - name: %s\n", r)
	}
	fmt.Fprintf(&b, "  activeRevision: %s\n", s.active)
	if s.after != "" {
		fmt.Fprintf(&b, "  promotion:\n    after: [../../%s/istio]\n    soak: %s\n", s.after, s.soak)
	}
	b.WriteString(s.more)
	treetest.Write(f.t, filepath.Join(f.tree(name), "istio-gitops.yaml"), []byte(b.String()))
}

// source writes a revision's istioctl output into a cluster's tree.
func (f *fleetRepo) source(name, rev string) {
	f.t.Helper()
	treetest.CopyFile(f.t, filepath.Join("..", "..", "testdata", "istioctl", rev, "default.yaml"),
		filepath.Join(f.tree(name), rev, "istioctl-output.yaml"))
}

// run runs a cluster's tree (or the folder dir) as istio-gitops run does,
// at the story's clock.
func (f *fleetRepo) run(dir string) error {
	f.t.Helper()
	ps := krm.Processors{config.Kind: fleet.Processor{Root: dir, Clock: func() time.Time { return f.now }}}
	results, err := ps.RunDir(dir)
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%s: %s\n", r.Severity, r.Message)
	}
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	f.last = b.String()
	return err
}

// allowed runs the cluster and fails the test if the order refuses it.
func (f *fleetRepo) allowed(name string, says ...string) {
	f.t.Helper()
	if err := f.run(f.tree(name)); err != nil {
		f.t.Fatalf("%s at %s: refused:\n%s", name, f.now.Format(time.RFC3339), f.last)
	}
	f.says(says...)
}

// refused runs the cluster: the order must refuse it, saying says, and
// leave the tree byte for byte.
func (f *fleetRepo) refused(name string, says ...string) {
	f.t.Helper()
	before := treetest.Snapshot(f.t, f.dir)
	if err := f.run(f.tree(name)); err == nil {
		f.t.Fatalf("%s at %s: allowed, want refused:\n%s", name, f.now.Format(time.RFC3339), f.last)
	}
	f.says(says...)
	if d := treetest.Diff(treetest.Files(f.t, f.dir), bytesOf(before)); d != "" {
		f.t.Errorf("a refused run wrote:\n%s", d)
	}
}

func (f *fleetRepo) says(says ...string) {
	f.t.Helper()
	for _, s := range says {
		if !strings.Contains(f.last, s) {
			f.t.Errorf("the run must say %q:\n%s", s, f.last)
		}
	}
}

func bytesOf(snap map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range snap {
		if !strings.HasSuffix(k, "/") {
			out[k] = []byte(v)
		}
	}
	return out
}

// commit commits everything at when.
func (f *fleetRepo) commit(when time.Time, msg string) {
	f.t.Helper()
	stamp := when.Format(time.RFC3339)
	treetest.GitAt(f.t, f.dir, stamp, "add", "-A")
	treetest.GitAt(f.t, f.dir, stamp, "commit", "-q", "-m", msg)
}

func (f *fleetRepo) git(when time.Time, args ...string) string {
	f.t.Helper()
	return treetest.GitAt(f.t, f.dir, when.Format(time.RFC3339), args...)
}

// TestFleetStory is the article's order, "staging, then pre-production,
// then production", kept by three clusters in one Git repository:
// preprod follows staging with a soak of 24h, prod follows preprod with
// 72h. Each refusal and allowance, a step merged from a branch, an
// uncommitted upstream, a rollback, a retirement, the bypass and its
// expiry, a shallow clone, the fleet's status and its CI check.
func TestFleetStory(t *testing.T) {
	f := newFleet(t)
	staging := spec{revisions: []string{"1-30"}, active: "1-30", more: "  tags:\n    stable: 1-30\n"}
	preprod := spec{revisions: []string{"1-30"}, active: "1-30", after: "staging", soak: "24h"}
	prod := spec{revisions: []string{"1-30"}, active: "1-30", after: "preprod", soak: "72h"}

	// Day 0: staging bootstraps 1-30; it follows no one.
	f.now = at(0, 0)
	f.config("staging", staging)
	f.source("staging", "1-30")
	f.allowed("staging")
	f.commit(at(0, 0), "staging: bootstrap 1-30")

	// Day 1: preprod bootstraps on what staging has run for 24h.
	f.now = at(1, 0)
	f.config("preprod", preprod)
	f.source("preprod", "1-30")
	f.allowed("preprod")
	f.commit(at(1, 0), "preprod: bootstrap 1-30")

	// prod, an hour later, must wait for preprod's 72h.
	f.now = at(1, 1)
	f.config("prod", prod)
	f.source("prod", "1-30")
	f.refused("prod", `spec.activeRevision: "1-30" is Istio 1.30.2, which preprod (`, "has run for 1h only (since 2026-03-02T09:00:00Z",
		"the soak is 72h, so the step is allowed in 2d23h (at 2026-03-05T09:00:00Z)")
	f.now = at(4, 0)
	f.allowed("prod")
	f.commit(at(4, 0), "prod: bootstrap 1-30")

	// Day 6: staging adds the canary 1-31, not committed yet: what the
	// upstream's working tree holds does not count.
	f.now = at(6, 0)
	staging.revisions = []string{"1-30", "1-31"}
	f.config("staging", staging)
	f.source("staging", "1-31")
	f.allowed("staging")
	preprod.revisions = []string{"1-30", "1-31"}
	f.config("preprod", preprod)
	f.source("preprod", "1-31")
	f.refused("preprod", `spec.revisions[1]: revision "1-31" is Istio 1.31.0, which no cluster this one follows lists in the committed history (HEAD): staging (`,
		"lists 1.30.2; add 1.31.0 there first")
	os.Remove(filepath.Join(f.tree("preprod"), "1-31", "istioctl-output.yaml"))
	f.config("preprod", spec{revisions: []string{"1-30"}, active: "1-30", after: "staging", soak: "24h"})
	f.commit(at(6, 0), "staging: add 1-31")

	// prod cannot add 1-31 before preprod lists it; preprod can now.
	f.now = at(6, 1)
	prodWith131 := prod
	prodWith131.revisions = []string{"1-30", "1-31"}
	f.config("prod", prodWith131)
	f.source("prod", "1-31")
	f.refused("prod", `revision "1-31" is Istio 1.31.0, which no cluster this one follows lists`, "preprod (")
	os.Remove(filepath.Join(f.tree("prod"), "1-31", "istioctl-output.yaml"))
	f.config("prod", prod)
	f.config("preprod", preprod)
	f.source("preprod", "1-31")
	f.allowed("preprod")
	f.commit(at(6, 2), "preprod: add 1-31")

	// Day 7: staging promotes 1-31 on a branch, merged three hours later:
	// the soak counts from the merge, the first-parent commit.
	f.git(at(7, 0), "checkout", "-q", "-b", "promote-staging")
	staging.active = "1-31"
	staging.more = "  tags:\n    stable: 1-31\n"
	f.config("staging", staging)
	f.now = at(7, 0)
	f.allowed("staging", "activeRevision 1-30 -> 1-31", "tags.stable 1-30 -> 1-31")
	f.commit(at(7, 0), "staging: promote 1-31")
	f.git(at(7, 3), "checkout", "-q", "main")
	f.git(at(7, 3), "merge", "-q", "--no-ff", "-m", "Merge promote-staging", "promote-staging")

	// Day 8, 22h after the merge (25h after the branch's commit): too early.
	f.now = at(8, 1)
	preprod.active = "1-31"
	f.config("preprod", preprod)
	f.refused("preprod", "has run for 22h only (since 2026-03-08T12:00:00Z", "the soak is 24h, so the step is allowed in 2h (at 2026-03-09T12:00:00Z)")
	// The fleet meanwhile: preprod's promotion is not committed, and
	// waits two more hours.
	rep, err := fleet.Status(f.dir, f.now)
	if err != nil {
		t.Fatal(err)
	}
	goldenReport(t, rep, "story-day8")
	f.now = at(8, 4)
	f.allowed("preprod", "activeRevision 1-30 -> 1-31")
	f.commit(at(8, 4), "preprod: promote 1-31")

	// prod adds 1-31 (preprod lists it), but may not promote it for 72h.
	f.now = at(8, 5)
	f.config("prod", prodWith131)
	f.source("prod", "1-31")
	f.allowed("prod")
	f.commit(at(8, 5), "prod: add 1-31")
	f.now = at(9, 0)
	prodOn131 := prodWith131
	prodOn131.active = "1-31"
	f.config("prod", prodOn131)
	f.refused("prod", "has run for 20h only (since 2026-03-09T13:00:00Z", "the soak is 72h, so the step is allowed in 2d4h (at 2026-03-12T13:00:00Z)")

	// A CVE: the bypass lets it through, and says so.
	withOverride := prodOn131
	withOverride.more = "    override:\n      reason: \"CVE-2026-0042: istiod crash\"\n      expires: \"2026-03-11T09:00:00Z\"\n"
	f.config("prod", withOverride)
	f.allowed("prod", "spec.promotion.override: the order of spec.promotion.after is bypassed until 2026-03-11T09:00:00Z (in 24h): CVE-2026-0042: istiod crash",
		"let through by spec.promotion.override: ", "has run for 20h only", "activeRevision 1-30 -> 1-31")
	f.commit(at(9, 1), "prod: promote 1-31 (CVE-2026-0042)")
	// Its pull request shows the bypass, and what it let through, as
	// warnings: CI passes.
	out, failed := fleetCheck(t, f.dir, "HEAD~1", f.now)
	for _, w := range []string{
		"::warning file=clusters/prod/istio/istio-gitops.yaml,line=15,title=istio-gitops spec.promotion.override::spec.promotion.override: the order of spec.promotion.after is bypassed until 2026-03-11T09:00:00Z (in 24h): CVE-2026-0042: istiod crash",
		"::warning file=clusters/prod/istio/istio-gitops.yaml,line=11,title=istio-gitops spec.activeRevision::let through by spec.promotion.override: spec.activeRevision: \"1-31\" is Istio 1.31.0, which preprod (",
		"clusters/prod/istio (prod): 0 error(s), 2 warning(s)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("fleet check must say %q:\n%s", w, out)
		}
	}
	if failed || strings.Contains(out, "::error") {
		t.Errorf("the bypass must let the pull request through:\n%s", out)
	}

	// Once expired, the override fails every run until it is removed.
	f.now = at(10, 1)
	f.refused("prod", "spec.promotion.override expired at 2026-03-11T09:00:00Z (1h ago): remove it")
	f.config("prod", prodOn131)
	f.allowed("prod")
	f.commit(at(10, 2), "prod: the override is over")

	// Rolling back is never refused: prod goes back to 1-30, which it ran.
	f.now = at(10, 3)
	f.config("prod", prodWith131)
	f.allowed("prod", "activeRevision 1-31 -> 1-30")
	f.commit(at(10, 3), "prod: roll back to 1-30")

	// Retiring is never refused by the order: preprod retires 1-30, its
	// teams' namespaces (spec.namespaces.from) moved first.
	f.now = at(11, 0)
	treetest.Write(t, filepath.Join(f.dir, "teams", "preprod", "payments.yaml"),
		[]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n  labels:\n    istio.io/rev: 1-30\n"))
	preprod.revisions = []string{"1-31"}
	preprod.more = "  namespaces:\n    from: [../../../teams/preprod]\n"
	f.config("preprod", preprod)
	f.refused("preprod", `Namespace "payments" still selects revision "1-30"`, "teams/preprod/payments.yaml")
	treetest.Write(t, filepath.Join(f.dir, "teams", "preprod", "payments.yaml"),
		[]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n  labels:\n    istio.io/rev: 1-31\n"))
	f.allowed("preprod", `retired revision "1-30"`)
	if strings.Contains(f.last, "no namespace source is configured") {
		t.Errorf("preprod has a namespace source:\n%s", f.last)
	}
	f.commit(at(11, 0), "preprod: retire 1-30")
	// staging has none: retiring warns that namespaces elsewhere went
	// unchecked.
	staging.revisions = []string{"1-31"}
	f.config("staging", staging)
	f.allowed("staging", `retiring ["1-30"]: no namespace source is configured`)
	f.commit(at(11, 1), "staging: retire 1-30")

	// The fleet at a glance.
	f.now = at(12, 0)
	rep, err = fleet.Status(f.dir, f.now)
	if err != nil {
		t.Fatal(err)
	}
	goldenReport(t, rep, "story")

	// prod promotes 1-31 again in a shallow clone: the soak cannot be
	// read from one commit of history.
	clone := filepath.Join(t.TempDir(), "clone")
	treetest.Git(t, f.dir, "clone", "-q", "--depth", "1", "file://"+f.dir, clone)
	cloned := &fleetRepo{t: t, dir: clone, now: at(12, 0)}
	cloned.config("prod", prodOn131)
	cloned.refused("prod", "where this shallow clone's history starts: a soak of 72h cannot be read from it; fetch the whole history (git fetch --unshallow; actions/checkout: fetch-depth: 0)")
	// The whole history shows prod ran 1-31 before: allowed.
	f.config("prod", prodOn131)
	f.allowed("prod")

	// CI on a pull request whose base is main: prod's promotion checks
	// out; a tree changed past its order does not.
	f.git(at(12, 1), "checkout", "-q", "-b", "pr")
	f.commit(at(12, 1), "prod: promote 1-31")
	check := func(want ...string) {
		t.Helper()
		out, failed := fleetCheck(t, f.dir, "main", f.now)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("fleet check must say %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, "::error") != failed {
			t.Errorf("failed %v:\n%s", failed, out)
		}
	}
	check("clusters/prod/istio (prod): ok", "clusters/staging/istio (staging): unchanged since main", "clusters/preprod/istio (preprod): unchanged since main")
	// preprod adds a 1.32 that staging does not list: refused, with the
	// file and line.
	preprodJump := preprod
	preprodJump.revisions = []string{"1-31", "1-32"}
	f.config("preprod", preprodJump)
	treetest.Write(t, filepath.Join(f.tree("preprod"), "1-32", "istioctl-output.yaml"),
		bytes.ReplaceAll(bytes.ReplaceAll(treetest.Read(t, filepath.Join("..", "..", "testdata", "istioctl", "1-31", "default.yaml")), []byte("1-31"), []byte("1-32")), []byte("1.31.0"), []byte("1.32.0")))
	// Written without the guard, as a pull request might be.
	if _, err := (krm.Processors{config.Kind: pipeline.Processor{}}).RunDir(f.tree("preprod")); err != nil {
		t.Fatal(err)
	}
	f.commit(at(12, 2), "preprod: add 1-32")
	check(`::error file=clusters/preprod/istio/istio-gitops.yaml,line=10,title=istio-gitops spec.revisions[1]::`,
		`revision "1-32" is Istio 1.32.0, which no cluster this one follows lists`, "clusters/preprod/istio (preprod): 1 error(s), 0 warning(s)")
}

// fleetCheck runs fleet check over dir from base: its annotations, and
// whether it fails.
func fleetCheck(t *testing.T, dir, base string, now time.Time) (string, bool) {
	t.Helper()
	rep, err := fleet.Check(dir, base, now)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.Annotations(&b)
	return b.String(), rep.Failed()
}

// goldenReport compares the report in each format with
// testdata/fleet/<name>.{txt,md,json}.
func goldenReport(t *testing.T, rep *fleet.Report, name string) {
	t.Helper()
	var txt, md bytes.Buffer
	rep.Text(&txt)
	rep.Markdown(&md)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// Commit hashes are kept out of the goldens: git's object format is
	// the same everywhere, but a golden should not turn on it.
	scrub := func(b []byte) []byte {
		s := string(b)
		if rep.Head != "" {
			s = strings.ReplaceAll(s, rep.Head, "HEAD")
			s = strings.ReplaceAll(s, rep.Head[:12], "HEAD")
		}
		for _, c := range rep.Clusters {
			for _, p := range c.Pointers {
				if p.Commit != "" {
					s = strings.ReplaceAll(s, p.Commit, "<commit>")
				}
			}
		}
		return []byte(s)
	}
	dir := filepath.Join("..", "..", "testdata", "fleet")
	treetest.GoldenFile(t, filepath.Join(dir, name+".txt"), scrub(txt.Bytes()))
	treetest.GoldenFile(t, filepath.Join(dir, name+".md"), scrub(md.Bytes()))
	treetest.GoldenFile(t, filepath.Join(dir, name+".json"), scrub(append(js, '\n')))
}
