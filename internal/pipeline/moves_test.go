package pipeline_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/patch"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// fromGolden copies a golden tree (testdata/golden/<name>) to a temporary
// folder.
func fromGolden(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	treetest.Copy(t, golden(name), dir)
	return dir
}

// said wants each of want among the results' lines, and none of not.
func said(t *testing.T, results framework.Results, want, not []string) {
	t.Helper()
	lines := resultLines(results)
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
			t.Errorf("the results must say %q:\n%s", w, strings.Join(lines, "\n"))
		}
	}
	for _, n := range not {
		if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, n) }) {
			t.Errorf("the results must not say %q:\n%s", n, strings.Join(lines, "\n"))
		}
	}
}

// TestChangesSaid: a run that changes rendered files for another reason
// than a pointer move says so, one line a cause (a field set, unset or
// changed, a revision patched or regenerated), and a regeneration says how
// many files it changed, not how many it laid out.
func TestChangesSaid(t *testing.T) {
	t.Parallel()
	dir := fromGolden(t, "story/2-add-1-31")
	flux := "flux/1-30.yaml, flux/1-31.yaml, flux/common.yaml"
	const fluxConfig = "  flux:\n    path: ./clusters/prod/istio\n    sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}\n    interval: 10m\n"

	editConfig(t, dir, "interval: 10m", "interval: 5m")
	said(t, run(t, dir), []string{"info spec.flux (the config changed): " + flux}, []string{" -> "})

	editConfig(t, dir, strings.Replace(fluxConfig, "10m", "5m", 1), "")
	said(t, run(t, dir), []string{"info spec.flux (no longer rendered): " + flux}, []string{" -> "})

	editConfig(t, dir, "    stableServices: true\n", "    stableServices: true\n"+fluxConfig)
	said(t, run(t, dir), []string{"info spec.flux (newly rendered): " + flux}, []string{" -> "})

	// A patch of the injector of 1-31 reaches the tag that points at it.
	patchFile := filepath.Join(dir, "1-31", "patches", "reinvocation.yaml")
	treetest.Write(t, patchFile, gitPatch(t, dir, "1-31", "reinvocation", "mutatingwebhookconfiguration/istio-sidecar-injector-1-31.yaml",
		"  reinvocationPolicy: Never\n", "  reinvocationPolicy: IfNeeded\n"))
	said(t, run(t, dir), []string{
		`info spec.tags.prod-canary (revision "1-31" patched: GitPatch reinvocation): common/mutatingwebhookconfiguration/istio-revision-tag-prod-canary.yaml`,
	}, []string{" -> ", "prod-stable"})

	// Regenerated from the same output: nothing changes, and it says so.
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/default.yaml"), filepath.Join(dir, "1-30", "istioctl-output.yaml"))
	said(t, run(t, dir), []string{"info 1-30/generated: no file changed, from 1-30/istioctl-output.yaml"}, []string{"common:", "spec.", " -> "})

	// Regenerated with the patch removed: the patch is undone, the
	// injector changes back, and the tag says why.
	if err := os.Remove(patchFile); err != nil {
		t.Fatal(err)
	}
	treetest.CopyFile(t, filepath.Join(fixtures, "1-31/default.yaml"), filepath.Join(dir, "1-31", "istioctl-output.yaml"))
	results := run(t, dir)
	said(t, results, []string{
		"info 1-31/generated: 1 file changed, from 1-31/istioctl-output.yaml",
		"info common: no file changed, from 1-31/istioctl-output.yaml",
		`info spec.tags.prod-canary (revision "1-31" regenerated from 1-31/istioctl-output.yaml): common/mutatingwebhookconfiguration/istio-revision-tag-prod-canary.yaml`,
	}, []string{" -> "})
	for _, r := range results {
		if strings.Contains(r.Message, "from 1-31/istioctl-output.yaml") && strings.Contains(r.Message, "generated:") && r.Tags[api.WritesTag] == "" {
			t.Errorf("%q must be tagged %s: a command that fails to write drops it", r.Message, api.WritesTag)
		}
	}
}

// gitPatch is a GitPatch of rev that replaces old (every time) by new in the
// revision's file generated/<file> of the tree at dir, made as a user
// makes one: the edit, git diff, patch import.
func gitPatch(t *testing.T, dir, rev, name, file, old, new string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rev, "generated", file))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s/generated/%s must hold %q", rev, file, old)
	}
	repo := t.TempDir()
	treetest.Write(t, filepath.Join(repo, "generated", file), b)
	treetest.Git(t, repo, "init", "-q")
	treetest.Git(t, repo, "add", "-A")
	treetest.Git(t, repo, "commit", "-q", "-m", "as written")
	treetest.Write(t, filepath.Join(repo, "generated", file), []byte(strings.ReplaceAll(string(b), old, new)))
	n, err := patch.Import(strings.NewReader(treetest.Git(t, repo, "diff")), rev, name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := layout.FileBytes(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOlderTreeMigrated: a tree written by an older istio-gitops (the
// pointers listed in common/state.yaml, rendered objects without their
// own record) is migrated by its next run, which says so, still says what
// moved (from the old record), and writes the tree a run of this version
// writes.
func TestOlderTreeMigrated(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, golden, pointers, old, new string
		moves                            []string
	}{
		{"default profile", "story/2-add-1-31",
			"  pointers:\n    activeRevision: 1-30\n    gatewaysLive: 1-30\n    tags:\n      prod-canary: 1-31\n      prod-stable: 1-30\n",
			"  activeRevision: 1-30\n", "  activeRevision: 1-31\n",
			[]string{"info activeRevision 1-30 -> 1-31: common/mutatingwebhookconfiguration/istio-revision-tag-default.yaml, common/service/istiod-revision-tag-default.yaml, common/service/istiod.yaml, common/validatingwebhookconfiguration/istiod-default-validator.yaml"}},
		{"ambient", "ambient/2-add-1-31",
			"  pointers:\n    activeRevision: 1-30\n    nodeAgents: 1-30\n",
			"    revision: 1-30\n", "    revision: 1-31\n",
			[]string{"info nodeAgents.cni 1-30 -> 1-31: common/clusterrole/istio-cni-ambient.yaml", "info nodeAgents.ztunnel 1-30 -> 1-31: common/daemonset/ztunnel.yaml, common/serviceaccount/ztunnel.yaml"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			want := fromGolden(t, c.golden)
			editConfig(t, want, c.old, c.new)
			run(t, want)

			dir := fromGolden(t, c.golden)
			olden(t, dir, c.pointers)
			editConfig(t, dir, c.old, c.new)
			results := run(t, dir)
			said(t, results, append([]string{"info common/state.yaml: written by an older istio-gitops", "info records moved onto the rendered objects (a tree written by an older istio-gitops): "}, c.moves...),
				[]string{"prod-stable 1-30 ->", "prod-canary 1-31 ->", "gateways.live 1-30 ->", "activeRevision 1-30 -> 1-30"})
			if d := treetest.Diff(treetest.Files(t, dir), treetest.Files(t, want)); d != "" {
				t.Errorf("the migrated tree is not the one this version writes:\n%s", d)
			}
			said(t, run(t, dir), nil, []string{"older istio-gitops", " -> "})
		})
	}
}

// olden makes the tree at dir look as an older istio-gitops wrote it: the
// pointers in common/state.yaml, and the rendered objects without
// points-at or digest (the node agents rendered from
// spec.nodeAgents.revision).
func olden(t *testing.T, dir, pointers string) {
	t.Helper()
	ours := regexp.MustCompile(`(?m)^\s+fn\.istio-gitops\.dev/(points-at|rendered-digest): .*\n`)
	agents := regexp.MustCompile(`spec\.nodeAgents\.(cni|ztunnel)\b`)
	files := treetest.Files(t, dir)
	for _, n := range treetest.Names(files) {
		b := files[n]
		if !strings.Contains(string(b), api.RenderedFromAnnotation) {
			continue
		}
		b = ours.ReplaceAll(b, nil)
		b = agents.ReplaceAll(b, []byte("spec.nodeAgents.revision"))
		treetest.Write(t, filepath.Join(dir, n), b)
	}
	st := filepath.Join(dir, "common", "state.yaml")
	b, err := os.ReadFile(st)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "  revision: ", pointers+"  revision: ", 1)
	treetest.Write(t, st, []byte(s))
}

// TestNodeAgentsOrder: a node agent may run a revision newer than the
// active one (Istio's guide moves istio-cni and ztunnel before the tags
// and the default revision); ztunnel ahead of istio-cni is the reverse of
// Istio's order, warned of.
func TestNodeAgentsOrder(t *testing.T) {
	t.Parallel()
	dir := fromGolden(t, "ambient/2-add-1-31")
	editConfig(t, dir, "    revision: 1-30\n", "    revision: 1-30\n    ztunnel: 1-31\n")
	said(t, run(t, dir), []string{
		"info nodeAgents.ztunnel 1-30 -> 1-31: common/daemonset/ztunnel.yaml, common/serviceaccount/ztunnel.yaml",
		`warning spec.nodeAgents.ztunnel: ztunnel runs revision "1-31" (Istio 1.31.0), newer than istio-cni's "1-30" (Istio 1.30.2): Istio's upgrade guide moves istio-cni first, then ztunnel`,
	}, []string{"nodeAgents.cni", "activeRevision"})
	editConfig(t, dir, "    revision: 1-30\n", "    revision: 1-30\n    cni: 1-31\n")
	said(t, run(t, dir), []string{"info nodeAgents.cni 1-30 -> 1-31"}, []string{"warning", "nodeAgents.ztunnel"})
}

// TestFailedRunSaysNothingWritten: a run that regenerates two revisions and
// then fails (the node agents' revision is not set) says nothing of what
// it would have written: only the error.
func TestFailedRunSaysNothingWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(treetest.ConfigHead+"  - name: 1-30\n  - name: 1-31\n"))
	for _, rev := range []string{"1-30", "1-31"} {
		treetest.CopyFile(t, filepath.Join(fixtures, rev, "ambient.yaml"), filepath.Join(dir, rev, "istioctl-output.yaml"))
	}
	results, err := processors.RunDir(dir)
	if err == nil || !strings.Contains(err.Error(), "spec.nodeAgents.revision: must be set once two revisions are listed") {
		t.Fatalf("error %v, want the node agents' revision unset", err)
	}
	for _, l := range resultLines(results) {
		if strings.Contains(l, "files added") || strings.Contains(l, "changed, from") || strings.Contains(l, "objects written") {
			t.Errorf("a failed run says %q", l)
		}
	}
	// Whatever its wording, no result says what a folder was written to.
	for _, r := range results {
		if r.Tags[api.WritesTag] != "" {
			t.Errorf("a failed run says what it wrote: %q", r.Message)
		}
	}
}
