package e2e

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// This file holds the promise that every mode writes the same bytes: the
// stories and every istioctl profile, with the runners taking turns, so
// that every runner reads trees the others wrote. An orchestrator's run
// costs about two CPU-seconds, the binary's a twentieth of that: each
// story alternates an orchestrator (turn by turn through the table) with
// the binary, each orchestrator's tree is run again by the binary (nothing
// may change), and the trees to compare with (the golden stories, the
// binary's profile trees) are made once.

var testdata = filepath.Join(repo, "testdata")

// available are the runners whose tools are installed, in table order.
func available(t *testing.T) []runner {
	t.Helper()
	var out []runner
	for _, r := range runners {
		if r.tool != nil {
			if _, err := r.tool(); err != nil {
				if m, ok := err.(errMissing); ok && m.required {
					skipOrFail(t, err)
				}
				t.Logf("%s: %v", r.name, err)
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// withFunction adds the function annotation `kustomize fn run` (without
// --exec-path) looks for to a config that has none.
func withFunction(cfg string) string {
	if strings.Contains(cfg, "config.kubernetes.io/function") {
		return cfg
	}
	const local = "    config.kubernetes.io/local-config: \"true\"\n"
	return strings.Replace(cfg, local, local+"    config.kubernetes.io/function: |\n      exec: {path: istio-gitops}\n", 1)
}

// runIn runs r over dir, failing the test on error.
func runIn(t *testing.T, r runner, dir, what string) {
	t.Helper()
	tool := r.need(t)
	if out, err := r.run(t, tool, dir); err != nil {
		t.Fatalf("%s with %s: %v\n%s", what, r.name, err, out)
	}
}

// compareOut checks a tree against another, leaving out the Kptfile a kpt
// pipeline needs and the config, which the test writes.
func compareOut(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	got, want = withoutInputs(got), withoutInputs(want)
	if d := treetest.Diff(got, want); d != "" {
		t.Errorf("%s: tree differs:\n%s", what, d)
	}
}

func withoutInputs(files map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(files))
	for k, v := range files {
		if k != "Kptfile" && k != "istio-gitops.yaml" {
			out[k] = v
		}
	}
	return out
}

// orchestrators are the available runners other than the binary, and the
// binary.
func orchestrators(t *testing.T) (others []runner, bin runner) {
	t.Helper()
	if runners[0].name != "binary" {
		t.Fatal("runners[0] must be the binary")
	}
	others = slices.DeleteFunc(available(t), func(r runner) bool { return r.name == "binary" })
	if len(others) == 0 {
		t.Skip("no orchestrator installed")
	}
	return others, runners[0]
}

// TestStoriesInEveryMode walks each story (testdata/stories: the default
// profile's upgrade, ambient, the Helm charts' output) with the runners
// taking turns: its first step (fresh output read through kyaml) and every
// other one by an orchestrator, each story starting at another, the steps
// between by the binary. Every step must write its golden tree whichever
// runner wrote the tree before, and the binary run again over an
// orchestrator's tree must change nothing.
func TestStoriesInEveryMode(t *testing.T) {
	t.Parallel()
	others, bin := orchestrators(t)
	stories := treetest.Stories(t, testdata)
	for si, name := range slices.Sorted(maps.Keys(stories)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for i, s := range stories[name].Steps {
				r := bin
				if i%2 == 0 {
					r = others[(si+i/2)%len(others)]
				}
				ok := t.Run(s.Name+"/"+r.name, func(t *testing.T) {
					s.Lay(t, dir, testdata, withFunction)
					runIn(t, r, dir, s.Name)
					got := treetest.Files(t, dir)
					compareOut(t, s.Name, got, treetest.Files(t, filepath.Join(golden, name, s.Name)))
					if r.name != bin.name {
						runIn(t, bin, dir, s.Name+" again")
						compareOut(t, s.Name+", then the binary", treetest.Files(t, dir), got)
					}
				})
				if !ok {
					return
				}
			}
		})
	}
}

// A profile is one istioctl fixture (testdata/istioctl/<rev>/<name>.yaml)
// bootstrapped on 1-30, then 1-31 added, with what the config must say for
// the pointers its IstioOperator set (values.revisionTags,
// values.defaultRevision) to be the config's.
type profile struct {
	name string
	// boot and add are the spec lines after revisions of each step.
	boot, add string
}

var profiles = []profile{
	{name: "default", boot: "  activeRevision: 1-30\n", add: "  activeRevision: 1-30\n"},
	{name: "demo", boot: "  activeRevision: 1-30\n", add: "  activeRevision: 1-30\n"},
	{name: "ambient", boot: "  activeRevision: 1-30\n", add: "  activeRevision: 1-30\n  nodeAgents: {revision: 1-30}\n"},
	{name: "default-revision", boot: "  activeRevision: 1-30\n", add: "  activeRevision: 1-31\n"},
	{name: "tags", boot: "  activeRevision: 1-30\n  tags: {prod-stable: 1-30}\n", add: "  activeRevision: 1-30\n  tags: {prod-stable: 1-31}\n"},
	{name: "tag-default", boot: "  activeRevision: 1-30\n", add: "  activeRevision: 1-30\n  tags: {default: 1-31}\n"},
}

func (p profile) config(revs []string, spec string) string {
	var b strings.Builder
	b.WriteString(withFunction(treetest.ConfigHead))
	for _, r := range revs {
		fmt.Fprintf(&b, "  - name: %s\n", r)
	}
	b.WriteString(spec)
	return b.String()
}

// lay lays the profile's bootstrap (step 0) or the addition of 1-31
// (step 1) into dir.
func (p profile) lay(t *testing.T, dir string, step int) {
	t.Helper()
	cfg, rev := p.config([]string{"1-30"}, p.boot), "1-30"
	if step == 1 {
		cfg, rev = p.config([]string{"1-30", "1-31"}, p.add), "1-31"
	}
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg))
	treetest.CopyFile(t, filepath.Join(testdata, "istioctl", rev, p.name+".yaml"), filepath.Join(dir, rev, "istioctl-output.yaml"))
}

// TestProfilesInEveryMode: every profile of testdata/istioctl is
// bootstrapped by the binary, run again by an orchestrator (nothing may
// change), then 1-31 is added by the next orchestrator (turn by turn
// through the table): the tree must be the binary's byte for byte, and the
// binary then changes nothing.
func TestProfilesInEveryMode(t *testing.T) {
	t.Parallel()
	others, bin := orchestrators(t)
	for pi, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			dir, ref := t.TempDir(), t.TempDir()
			p.lay(t, dir, 0)
			runIn(t, bin, dir, "bootstrap 1-30")
			boot := treetest.Files(t, dir)
			treetest.Copy(t, dir, ref)
			p.lay(t, ref, 1)
			runIn(t, bin, ref, "add 1-31")

			r := others[pi%len(others)]
			runIn(t, r, dir, "bootstrap 1-30 again")
			compareOut(t, "bootstrap 1-30, then "+r.name, treetest.Files(t, dir), boot)
			r = others[(pi+1)%len(others)]
			p.lay(t, dir, 1)
			runIn(t, r, dir, "add 1-31")
			got := treetest.Files(t, dir)
			compareOut(t, "add 1-31 with "+r.name, got, treetest.Files(t, ref))
			runIn(t, bin, dir, "add 1-31 again")
			compareOut(t, "add 1-31 with "+r.name+", then the binary", treetest.Files(t, dir), got)
		})
	}
}
