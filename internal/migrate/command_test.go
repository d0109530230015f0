package migrate

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
	"github.com/spf13/cobra"
)

const sampleDir = "../../examples/migrate/sample"

// asBinary makes the test executable act as the istio-gitops binary (with
// only the migrate subcommand), so the example script can run against it.
const asBinary = "ISTIO_GITOPS_MIGRATE_TEST_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(asBinary) == "1" {
		root := &cobra.Command{Use: "istio-gitops", SilenceUsage: true}
		root.AddCommand(Command())
		root.SetArgs(os.Args[1:])
		if err := root.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(treetest.Main(m))
}

// execute runs `migrate args...` and returns its output.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := Command()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// changed lists the files that differ between two trees.
func changed(a, b map[string][]byte) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(a)) {
		if !bytes.Equal(a[p], b[p]) {
			out = append(out, p)
		}
	}
	return out
}

func TestCommand(t *testing.T) {
	in := readTree(t, sampleDir)
	dir := t.TempDir()
	writeTree(t, dir, in)
	report := filepath.Join(t.TempDir(), "payments.md")
	out, err := execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", "payments", "--report", report)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	after := readTree(t, dir)
	if got := changed(in, after); !slices.Equal(got, []string{"namespaces/payments.yaml"}) {
		t.Errorf("changed files %q, want only namespaces/payments.yaml", got)
	}
	want := strings.Replace(strings.Replace(string(in["namespaces/payments.yaml"]),
		"    team: payments\n    istio.io/rev: 1-30\n", "    team: payments\n    istio.io/rev: 1-31\n", 1),
		"    # moved together with payments-api\n    istio.io/rev: 1-30\n", "    # moved together with payments-api\n    istio.io/rev: 1-31\n", 1)
	if got := string(after["namespaces/payments.yaml"]); got != want {
		t.Errorf("namespaces/payments.yaml:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range []string{
		"info    namespaces/payments.yaml  Namespace payments-api (team=payments): istio.io/rev=1-30 -> istio.io/rev=1-31\n",
		"info    namespaces/payments.yaml  Namespace payments-batch (team=payments): left alone: istio-injection=disabled is never touched\n",
		"info    namespaces/search.yaml  Namespace search-web (team=search): left alone: team \"search\" is not in this run\n",
		"moved 2 namespaces and 0 workloads from 1-30 to 1-31 in 1 files\n",
		"wrote " + report + "\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	md, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"## Team `payments`\n\n2 moved, 1 left alone, 0 overriding workloads, 0 warnings.\n",
		"| `payments-api` | `namespaces/payments.yaml` | `istio.io/rev=1-30` | `istio.io/rev=1-31` |\n",
		"| `payments-batch` | `namespaces/payments.yaml` | `istio-injection=disabled` | istio-injection=disabled is never touched |\n",
	} {
		if !strings.Contains(string(md), s) {
			t.Errorf("report lacks %q:\n%s", s, md)
		}
	}
	if strings.Contains(string(md), "## Team `search`") {
		t.Errorf("report lists a team not in the run:\n%s", md)
	}

	// Every team, pod templates too: the crawler's namespace has no
	// revision label, so only --workloads moves it.
	out, err = execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--workloads", "--selector", "team=search")
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	after2 := readTree(t, dir)
	if got := changed(after, after2); !slices.Equal(got, []string{"apps/search-crawler.yaml", "namespaces/search.yaml"}) {
		t.Errorf("changed files %q, want the search team's", got)
	}
	if !strings.Contains(out, "Deployment search-crawl/crawler (team=search): istio.io/rev=1-30: pod template istio.io/rev 1-30 -> 1-31") {
		t.Errorf("output lacks the crawler:\n%s", out)
	}
}

func TestCommandErrors(t *testing.T) {
	in := readTree(t, sampleDir)
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"missing flags", []string{"--from", "1-30"}, `required flag(s) "owner-key", "to" not set`},
		{"bad selector", []string{"--from", "1-30", "--to", "1-31", "--owner-key", "team", "--selector", "team"}, `--selector: "team" must be key=value`},
		{"bad revision", []string{"--from", "1-30", "--to", "1.31", "--owner-key", "team"}, `spec.to: "1.31" must be a revision or tag name`},
		{"same revision", []string{"--from", "1-30", "--to", "1-30", "--owner-key", "team"}, `spec.to: "1-30" must differ from spec.from`},
		{"bad exclude", []string{"--from", "1-30", "--to", "1-31", "--owner-key", "team", "--exclude", "Kube_System"}, `spec.exclude[0]: "Kube_System" must be a namespace name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, in)
			out, err := execute(t, append([]string{dir}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q\n%s", err, tc.err, out)
			}
			if got := changed(in, readTree(t, dir)); len(got) != 0 {
				t.Errorf("files written despite the error: %q", got)
			}
		})
	}

	// An error found in the tree writes nothing either, and no report.
	dir := t.TempDir()
	broken := maps.Clone(in)
	broken["namespaces/zz-broken.yaml"] = []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: broken\n  labels: [team]\n")
	writeTree(t, dir, broken)
	report := filepath.Join(t.TempDir(), "r.md")
	out, err := execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--report", report)
	if err == nil || !strings.Contains(err.Error(), "namespaces/zz-broken.yaml: document 0: metadata.labels (line 5): must be a map of strings") {
		t.Fatalf("error %v\n%s", err, out)
	}
	if got := changed(broken, readTree(t, dir)); len(got) != 0 {
		t.Errorf("files written despite the error: %q", got)
	}
	if _, err := os.Stat(report); !os.IsNotExist(err) {
		t.Errorf("report written despite the error")
	}
}

// TestCommandReformatWarning: a file kyaml rewrites beyond the labels
// (here: 4-space indentation) is named in a warning and in the report.
func TestCommandReformatWarning(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{
		"two.yaml":  []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: two\n  labels:\n    team: a\n    istio.io/rev: 1-30\n"),
		"four.yaml": []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n    name: four\n    labels:\n        team: a\n        istio.io/rev: 1-30\n"),
	})
	report := filepath.Join(t.TempDir(), "r.md")
	out, err := execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--report", report)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "warning four.yaml  the YAML writer also reformatted this file") {
		t.Errorf("no reformat warning for four.yaml:\n%s", out)
	}
	if strings.Contains(out, "warning two.yaml") {
		t.Errorf("reformat warning for two.yaml, which only changed its label:\n%s", out)
	}
	md, _ := os.ReadFile(report)
	if !strings.Contains(string(md), "- warning: four.yaml: the YAML writer also reformatted this file") {
		t.Errorf("report lacks the reformat note:\n%s", md)
	}
}

// TestPerTeamBranchesScript runs the example script, with this test
// executable standing in for the binary, and checks each team's branch.
func TestPerTeamBranchesScript(t *testing.T) {
	for _, tool := range []string{"bash", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	cmd := exec.Command("bash", "../../examples/migrate/per-team-branches.sh", work)
	cmd.Env = append(os.Environ(), "ISTIO_GITOPS="+self, asBinary+"=1",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	repo := filepath.Join(work, "namespaces")
	git := func(args ...string) string {
		t.Helper()
		b, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	// identity-legacy (istio-injection=enabled) needs a run from the
	// default revision, and search-index is already on 1-31, so every
	// team has something to move.
	want := map[string][]string{
		"checkout": {"namespaces/checkout/checkout-api.yaml", "namespaces/checkout/checkout-cart.yaml"},
		"identity": {"namespaces/identity.yaml"},
		"payments": {"namespaces/payments.yaml"},
		"platform": {"namespaces/platform.yaml"},
		"search":   {"namespaces/search.yaml"},
	}
	var branches []string
	for _, b := range strings.Fields(git("branch", "--format=%(refname:short)")) {
		if b != "main" {
			branches = append(branches, b)
		}
	}
	var wantBranches []string
	for _, team := range slices.Sorted(maps.Keys(want)) {
		wantBranches = append(wantBranches, "istio-1-31/"+team)
	}
	if !slices.Equal(branches, wantBranches) {
		t.Fatalf("branches %q, want %q\n%s", branches, wantBranches, out)
	}
	if git("status", "--porcelain") != "" || git("rev-list", "--count", "main") != "1" {
		t.Errorf("main must stay as committed, with a clean tree")
	}
	for _, team := range slices.Sorted(maps.Keys(want)) {
		branch := "istio-1-31/" + team
		if n := git("rev-list", "--count", "main.."+branch); n != "1" {
			t.Errorf("%s: %s commits, want 1", branch, n)
		}
		if files := strings.Fields(git("diff", "--name-only", "main", branch)); !slices.Equal(files, want[team]) {
			t.Errorf("%s changes %q, want %q", branch, files, want[team])
		}
		diff := git("diff", "-U0", "main", branch)
		for _, l := range strings.Split(diff, "\n") {
			if (strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-")) && !strings.HasPrefix(l, "+++") && !strings.HasPrefix(l, "---") &&
				!strings.Contains(l, api.RevisionLabel+": ") {
				t.Errorf("%s: a line other than istio.io/rev changed: %q", branch, l)
			}
		}
		msg := git("log", "-1", "--format=%B", branch)
		if !strings.HasPrefix(msg, "istio: move the namespaces of team "+team+" from 1-30 to 1-31\n") ||
			!strings.Contains(msg, "## Team `"+team+"`") || strings.Count(msg, "## Team ") != 1 {
			t.Errorf("%s: commit message must be the team's report:\n%s", branch, msg)
		}
		if _, err := os.Stat(filepath.Join(work, "patches", team+".patch")); err != nil {
			t.Errorf("%s: no patch: %v", branch, err)
		}
		for _, l := range []string{"git push origin " + branch, "gh pr create --fill --base main --head " + branch} {
			if !strings.Contains(string(out), l) {
				t.Errorf("script output lacks %q:\n%s", l, out)
			}
		}
	}
}

func TestSameBesidesLabels(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"a: 1\n  istio.io/rev: 1-30\nb: 2\n", "a: 1\n  istio.io/rev: 1-31\nb: 2\n", true},
		{"a: 1\n  istio-injection: enabled\nb: 2\n", "a: 1\n  istio.io/rev: 1-31\nb: 2\n", true},
		{"a: 1\n  istio-injection: enabled\n  istio.io/rev: 1-30\nb: 2\n", "a: 1\n  istio.io/rev: 1-31\nb: 2\n", true},
		{"a: 1\n  istio.io/rev: 1-30\nb: 2\n", "a: 1\n  istio.io/rev: 1-31\nb: 3\n", false},
		{"# head\na: 1\n", "a: 1\n", false},
		{"a: 1\n", "a: 1\n---\n", false},
		{"", "", true},
	} {
		if got := sameBesidesLabels([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("sameBesidesLabels(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestTreeAndDryRun: --tree checks --from and --to against the cluster's
// tree, and tells whether --from is its default revision; --dry-run
// prints what would move and the report, and writes nothing.
func TestTreeAndDryRun(t *testing.T) {
	in := readTree(t, sampleDir)
	dir := t.TempDir()
	writeTree(t, dir, in)
	tree := filepath.Join(t.TempDir(), "istio")
	treetest.CopyFile(t, "../../testdata/golden/story/2-add-1-31/istio-gitops.yaml", filepath.Join(tree, "istio-gitops.yaml"))
	report := filepath.Join(t.TempDir(), "payments.md")

	// A revision that exists nowhere: refused, naming what is listed.
	out, err := execute(t, dir, "--from", "1-30", "--to", "1-32", "--owner-key", "team", "--tree", tree)
	if err == nil || !strings.Contains(err.Error(), `--to: "1-32" must be a revision or tag of IstioGitOps "prod" in `+filepath.ToSlash(tree)+`/istio-gitops.yaml: it lists the revisions ["1-30" "1-31"] and the tags ["prod-canary" "prod-stable"]`) {
		t.Errorf("--to 1-32: %v\n%s", err, out)
	}
	if _, err := execute(t, dir, "--from", "1-29", "--to", "1-31", "--owner-key", "team", "--tree", tree); err == nil || !strings.Contains(err.Error(), `--from: "1-29" must be a revision or tag`) {
		t.Errorf("--from 1-29: %v", err)
	}
	if _, err := execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--tree", t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no IstioGitOps config") {
		t.Errorf("--tree without a config: %v", err)
	}
	if got := changed(in, readTree(t, dir)); len(got) > 0 {
		t.Errorf("a refused migration changed %q", got)
	}

	// A tag of the tree, dry: the report on stdout, nothing written.
	out, err = execute(t, dir, "--from", "prod-stable", "--to", "prod-canary", "--owner-key", "team", "--owner", "payments", "--tree", tree,
		"--dry-run", "--report", report)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := changed(in, readTree(t, dir)); len(got) > 0 {
		t.Errorf("--dry-run changed %q", got)
	}
	if _, err := os.Stat(report); err == nil {
		t.Error("--dry-run wrote the report file")
	}
	for _, s := range []string{"(--dry-run: nothing written)", "## Team `payments`", `"prod-canary" is a revision or tag of IstioGitOps "prod" in `} {
		if !strings.Contains(out, s) {
			t.Errorf("--dry-run output lacks %q:\n%s", s, out)
		}
	}
	// The real run moves what the dry run said.
	out, err = execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", "payments", "--tree", tree, "--dry-run")
	if err != nil || !strings.Contains(out, "would move 2 namespaces and 0 workloads from 1-30 to 1-31 in 1 files") {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", "payments", "--tree", tree)
	if err != nil || !strings.Contains(out, "moved 2 namespaces and 0 workloads from 1-30 to 1-31 in 1 files") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestCommandList: Namespaces and workloads inside a List, as `kubectl get
// -o yaml` writes them, are moved inside the List; the file keeps its
// layout and comments, and only the labels moved change.
func TestCommandList(t *testing.T) {
	in, err := os.ReadFile("../../testdata/migrate/kubectl-list.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"namespaces.yaml": in})
	out, err := execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", "payments", "--workloads")
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "moved 1 namespaces and 1 workloads from 1-30 to 1-31 in 1 files") {
		t.Errorf("the output must say what moved:\n%s", out)
	}
	if !strings.Contains(out, "Namespace search (team=search): left alone: team \"search\" is not in this run") {
		t.Errorf("the other team's Namespace in the List must be reported:\n%s", out)
	}
	if strings.Contains(out, "reformatted") {
		t.Errorf("the writer must keep the List's layout:\n%s", out)
	}
	want := strings.Replace(strings.Replace(string(in),
		"      istio.io/rev: 1-30 # the canary comes next\n", "      istio.io/rev: 1-31 # the canary comes next\n", 1),
		"          app: api\n          istio.io/rev: 1-30\n", "          app: api\n          istio.io/rev: 1-31\n", 1)
	if got := string(readTree(t, dir)["namespaces.yaml"]); got != want {
		t.Errorf("namespaces.yaml:\n%s\nwant:\n%s", got, want)
	}
	// Run again: nothing left to move on 1-30 for payments.
	if out, err = execute(t, dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team", "--owner", "payments", "--workloads"); err != nil {
		t.Fatalf("migrate again: %v\n%s", err, out)
	}
	if got := string(readTree(t, dir)["namespaces.yaml"]); got != want {
		t.Errorf("a second migration changed namespaces.yaml:\n%s", got)
	}
}
