package pipeline_test

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/fn/runtime/runtimeutil"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/buildtest"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/patch"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/state"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// patchEdit is a platform engineer's text edit of one generated file (see
// treetest.PatchEdit).
type patchEdit = treetest.PatchEdit

// The kinds of patch the article keeps (testdata/patch/edits.yaml), made
// on the files the pipeline writes with drift guards off (istioctl's own
// failurePolicy: Ignore).
var (
	editFailurePolicy = treetest.PatchEditNamed("failure-validatingwebhookconfiguration")
	editNoKubeSystem  = treetest.PatchEditNamed("namespaceselector-mutatingwebhookconfiguration")
	editTemplate      = treetest.PatchEditNamed("sidecar-injector-template")
	articleEdits      = treetest.PatchEdits()
)

// patchTree is a mesh tree in a git repository, at clusters/prod/istio,
// worked on as a platform engineer works: run, edit a written file, git
// diff, git checkout, import.
type patchTree struct {
	t    *testing.T
	repo string
	dir  string
}

// newPatchTree lays out the bootstrap input with cfg as the config.
func newPatchTree(t *testing.T, cfg string) *patchTree {
	t.Helper()
	repo := t.TempDir()
	p := &patchTree{t: t, repo: repo, dir: filepath.Join(repo, "clusters", "prod", "istio")}
	treetest.Copy(t, filepath.Join(golden("bootstrap"), "input"), p.dir)
	p.write("istio-gitops.yaml", cfg)
	return p
}

// shared130 is the bootstrap tree with revision 1-30 run once: made by
// the first test that asks for it, copied by every other (see with130).
var shared130 struct {
	once sync.Once
	dir  string
}

// with130 is the bootstrap tree with revision 1-30 written, a copy of one
// run shared by the package's tests; commit makes its repository and
// commits the tree as the article's first pull request does.
func with130(t *testing.T, commit bool) *patchTree {
	t.Helper()
	shared130.once.Do(func() {
		dir, err := os.MkdirTemp("", "patch-tree-1-30-")
		if err != nil {
			t.Fatal(err)
		}
		p := &patchTree{t: t, dir: dir}
		treetest.Copy(t, filepath.Join(golden("bootstrap"), "input"), dir)
		p.write("istio-gitops.yaml", patchConfig(false, only130))
		p.source("1-30", "1-30/default.yaml")
		p.run()
		shared130.dir = dir
	})
	if shared130.dir == "" {
		t.Fatal("the shared 1-30 tree could not be made: see the first test that failed")
	}
	p := (&patchTree{t: t, dir: shared130.dir}).clone(t)
	if commit {
		p.commit("istio: revision 1-30")
	}
	return p
}

// patchConfig is the tree's config; revisions is the YAML of its list.
func patchConfig(driftGuards bool, revisions string) string {
	return treetest.ConfigHead + fmt.Sprintf(`%s  activeRevision: 1-30
  webhooks:
    driftGuards: %t
`, revisions, driftGuards)
}

const (
	only130  = "  - name: 1-30\n"
	carry131 = "  - name: 1-30\n  - name: 1-31\n    patchesFrom: 1-30\n"
)

func (p *patchTree) write(rel, content string) {
	p.t.Helper()
	treetest.Write(p.t, filepath.Join(p.dir, filepath.FromSlash(rel)), []byte(content))
}

func (p *patchTree) read(rel string) []byte {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, filepath.FromSlash(rel)))
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// source drops fresh istioctl output for rev into the tree.
func (p *patchTree) source(rev, fixture string) {
	p.t.Helper()
	treetest.CopyFile(p.t, filepath.Join(fixtures, fixture), filepath.Join(p.dir, rev, config.SourceFile))
}

func (p *patchTree) files() map[string][]byte {
	p.t.Helper()
	return treetest.Files(p.t, p.dir)
}

func (p *patchTree) run() framework.Results {
	p.t.Helper()
	return run(p.t, p.dir)
}

// runAgain runs and wants nothing changed.
func (p *patchTree) runAgain() {
	p.t.Helper()
	before := p.files()
	p.run()
	if d := treetest.Diff(p.files(), before); d != "" {
		p.t.Errorf("a second run changed the tree:\n%s", d)
	}
}

// fail runs, wants the run to fail with a message holding each of want,
// and the tree left as it was, byte for byte.
func (p *patchTree) fail(want ...string) error {
	p.t.Helper()
	return runFails(p.t, p.dir, want...)
}

// git runs the real git in the repository, away from the user's and the
// system's configuration, with a fixed identity and clock.
func (p *patchTree) git(args ...string) string {
	p.t.Helper()
	return gitIn(p.t, p.repo, args...)
}

// gitIn runs git in dir; see patchTree.git.
func gitIn(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return treetest.Git(t, dir, args...)
}

// commit commits the whole repository, making it one first.
func (p *patchTree) commit(msg string) {
	p.t.Helper()
	if _, err := os.Stat(filepath.Join(p.repo, ".git")); err != nil {
		p.git("init", "-q", "-b", "main")
	}
	p.git("add", "-A")
	p.git("commit", "-q", "--allow-empty", "-m", msg)
}

// diff edits a written file as the user does, takes `git diff`
// (gitArgs run in the repository root, e.g. "diff"), and checks the file
// out again. It returns the diff and the edited content.
func (p *patchTree) diff(edit func([]byte) []byte, rel string, gitArgs ...string) (string, []byte) {
	p.t.Helper()
	before := p.read(rel)
	edited := edit(before)
	p.write(rel, string(edited))
	if len(gitArgs) == 0 {
		gitArgs = []string{"diff"}
	}
	d := p.git(gitArgs...)
	inRepo := "clusters/prod/istio/" + rel
	p.git("checkout", "--", inRepo)
	if !bytes.Equal(p.read(rel), before) || p.git("status", "--porcelain", "--", inRepo) != "" {
		p.t.Fatalf("git checkout did not restore %s", rel)
	}
	if !strings.HasPrefix(d, "diff --git ") {
		p.t.Fatalf("git diff of %s is empty:\n%q", rel, d)
	}
	return d, edited
}

// userPatch makes e's patch of rev: edit, git diff at the repository root,
// save as <name>.patch next to the tree, check out, `patch import`.
func (p *patchTree) userPatch(e patchEdit, rev string) (imported, edited []byte) {
	p.t.Helper()
	d, edited := p.diff(func(b []byte) []byte { return e.Apply(p.t, rev, b) }, e.Target(rev))
	if !strings.Contains(d, "a/clusters/prod/istio/"+e.Target(rev)) {
		p.t.Fatalf("git diff at the repository root must name the file from there:\n%s", d)
	}
	file := filepath.Join(p.repo, e.Name+".patch")
	treetest.Write(p.t, file, []byte(d))
	return importCmd(p.t, file, rev), edited
}

// importCmd runs `istio-gitops patch import FILE --revision rev`.
func importCmd(t testing.TB, file, rev string) []byte {
	t.Helper()
	cmd := patch.ImportCommand()
	var out bytes.Buffer
	cmd.SetArgs([]string{file, "--revision", rev})
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("patch import %s --revision %s: %v", file, rev, err)
	}
	return out.Bytes()
}

// handPatch is a GitPatch a user writes by hand around a diff.
func handPatch(t testing.TB, name, diff string) string {
	t.Helper()
	n, err := yaml.Parse(fmt.Sprintf(`apiVersion: %s
kind: GitPatch
metadata:
  name: %s
  annotations:
    config.kubernetes.io/local-config: "true"
spec: {}
`, api.APIVersion, name))
	if err != nil {
		t.Fatal(err)
	}
	d := yaml.NewStringRNode(diff)
	d.YNode().Style = yaml.LiteralStyle
	if err := n.PipeE(yaml.Lookup("spec"), yaml.SetField("diff", d)); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := (kio.ByteWriter{Writer: &b}).Write([]*yaml.RNode{n}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// oneObject reads the one object of a file.
func oneObject(t testing.TB, b []byte) *yaml.RNode {
	t.Helper()
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(b), OmitReaderAnnotations: true}).Read()
	if err != nil || len(nodes) != 1 {
		t.Fatalf("want one object, got %d (%v):\n%s", len(nodes), err, b)
	}
	return nodes[0]
}

// digestOf is the digest the record must keep of a GitPatch file.
func digestOf(t testing.TB, b []byte) string {
	t.Helper()
	p, err := patch.Parse(oneObject(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return p.Digest
}

// recordOf reads <rev>/generated/state.yaml.
func (p *patchTree) recordOf(rev string) *state.State {
	p.t.Helper()
	st, err := state.Read(oneObject(p.t, p.read(rev+"/generated/"+"state.yaml")))
	if err != nil {
		p.t.Fatal(err)
	}
	return st
}

// checkRecord: the records (state.yaml, and one a patch applied since the
// revision was generated) list exactly the patches, in name order, with
// the digests of their files, and the digest of each generated file.
func (p *patchTree) checkRecord(rev string, names ...string) {
	p.t.Helper()
	st := p.recordOf(rev)
	recorded := slices.Clone(st.Spec.Patches)
	digests := maps.Clone(st.Spec.Files)
	files := p.files()
	for _, f := range treetest.Names(files) {
		if !strings.HasPrefix(f, rev+"/generated/applied-patches/") {
			continue
		}
		a, err := state.ReadApplied(oneObject(p.t, files[f]))
		if err != nil {
			p.t.Fatal(err)
		}
		recorded = append(recorded, state.Patch{Name: a.Metadata.Name, Digest: a.Spec.Digest})
		maps.Copy(digests, a.Spec.Files)
	}
	slices.SortStableFunc(recorded, func(a, b state.Patch) int { return strings.Compare(a.Name, b.Name) })
	var want []state.Patch
	for _, n := range slices.Sorted(slices.Values(names)) {
		want = append(want, state.Patch{Name: n, Digest: digestOf(p.t, p.read(rev+"/patches/"+n+".yaml"))})
	}
	if !slices.Equal(recorded, want) {
		p.t.Errorf("%s's records list patches %v, want %v", rev, recorded, want)
	}
	n := 0
	for _, f := range treetest.Names(files) {
		if !strings.HasPrefix(f, rev+"/generated/") || isRecord(rev, f) {
			continue
		}
		n++
		key := strings.TrimPrefix(f, rev+"/")
		if got := digests[key]; got != state.Digest(files[f]) {
			p.t.Errorf("%s's records list %s as %s, its digest is %s", rev, key, got, state.Digest(files[f]))
		}
	}
	if n != len(digests) {
		p.t.Errorf("%s's records list %d files, the folder holds %d", rev, len(digests), n)
	}
}

// withoutRecords is a tree less rev's records.
func withoutRecords(files map[string][]byte, rev string) map[string][]byte {
	out := maps.Clone(files)
	for f := range files {
		if isRecord(rev, f) {
			delete(out, f)
		}
	}
	return out
}

// isRecord reports whether f is one of rev's records.
func isRecord(rev, f string) bool {
	return f == rev+"/generated/state.yaml" || strings.HasPrefix(f, rev+"/generated/applied-patches/")
}

// checkPatched compares the tree with its twin, the same tree run through
// the same steps without patches: the patched tree must hold the twin's
// files with the edits made on their targets, the GitPatches of each
// revision in patches, and nothing else different but the records and
// the files rendered from a patched object, which carry the edit too.
func checkPatched(t *testing.T, got, twin *patchTree, patches map[string][]patchEdit, rendered map[string]patchEdit) {
	t.Helper()
	g, w := got.files(), twin.files()
	edited := map[string]bool{}
	for _, f := range config.SortedKeys(rendered) {
		edited[f] = true
		// The rendered file records its own digest: the rest is compared.
		if want := rendered[f].Apply(t, "", state.WithoutDigest(w[f])); !bytes.Equal(state.WithoutDigest(g[f]), want) {
			t.Errorf("%s must carry the edit of %s:\n%s", f, rendered[f].Name, treetest.Diff(map[string][]byte{f: state.WithoutDigest(g[f])}, map[string][]byte{f: want}))
		}
	}
	for _, rev := range config.SortedKeys(patches) {
		for _, e := range patches[rev] {
			f := e.Target(rev)
			edited[f] = true
			if want := e.Apply(t, rev, w[f]); !bytes.Equal(g[f], want) {
				t.Errorf("%s: %s must be the unpatched file with the edit made on it:\n%s", e.Name, f, treetest.Diff(map[string][]byte{f: g[f]}, map[string][]byte{f: want}))
			}
			pf := rev + "/patches/" + e.Name + ".yaml"
			if _, ok := g[pf]; !ok {
				t.Errorf("%s is missing", pf)
			}
			w[pf] = g[pf]
		}
		for _, f := range treetest.Names(g) {
			if isRecord(rev, f) {
				w[f] = g[f]
			}
		}
	}
	for f := range edited {
		w[f] = g[f]
	}
	if d := treetest.Diff(g, w); d != "" {
		t.Errorf("the patches changed more than their files:\n%s", d)
	}
}

// infoResults lists the info results as "file: message".
func infoResults(results framework.Results) []string {
	var out []string
	for _, r := range results {
		if r.Severity == framework.Info && r.File != nil {
			out = append(out, r.File.Path+": "+r.Message)
		}
	}
	return out
}

func wantResult(t testing.TB, results framework.Results, want string) {
	t.Helper()
	got := infoResults(results)
	if !slices.Contains(got, want) {
		t.Errorf("results must say %q, they say:\n%s", want, strings.Join(got, "\n"))
	}
}

// builtObject renders folder rel with kustomize and returns the object of kind
// and name as YAML.
func builtObject(t testing.TB, dir, rel, kind, name string) string {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, rel))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", rel, err)
	}
	for _, r := range m.Resources() {
		if r.GetKind() == kind && r.GetName() == name {
			b, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("kustomize build %s has no %s %s", rel, kind, name)
	return ""
}

// TestGitPatchLifecycle follows the article's three kinds of patch through
// their life on the real fixtures. Drift guards are off: the validator
// patch is the article's, failurePolicy Ignore -> Fail on istioctl's own
// output; with drift guards on the pipeline writes Fail itself (see
// TestGitPatchOverDriftGuards). Each patch is made as a user makes it:
// the pipeline writes the tree, the user edits the written file, takes
// `git diff` at the repository root, checks the file out again and
// imports the diff. At every step the tree is compared with a twin run
// through the same steps without patches.
func TestGitPatchLifecycle(t *testing.T) {
	t.Parallel()
	tree := newPatchTree(t, patchConfig(false, only130))
	twin := newPatchTree(t, patchConfig(false, only130))
	for _, p := range []*patchTree{tree, twin} {
		p.source("1-30", "1-30/default.yaml")
		p.run()
	}
	if d := treetest.Diff(tree.files(), twin.files()); d != "" {
		t.Fatalf("the twins differ:\n%s", d)
	}
	tree.commit("istio: revision 1-30")

	// Make, import and place the patches.
	edited := map[string][]byte{}
	for _, e := range articleEdits {
		imported, content := tree.userPatch(e, "1-30")
		edited[e.Name] = content
		// The shipped examples of these patches were made from istioctl's
		// output split by hand; the pipeline's files must be the same
		// bytes, or users' patches would not match the documentation.
		want, err := os.ReadFile(filepath.Join("../../testdata/patch/1-30", e.Name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(imported, want) {
			t.Errorf("%s: imported from the written tree:\n%s\nwant testdata/patch/1-30/%s.yaml:\n%s", e.Name, imported, e.Name, want)
		}
		tree.write("1-30/patches/"+e.Name+".yaml", string(imported))
	}

	// 1-30 is not regenerated: the patches apply to its current files.
	results := tree.run()
	twin.run()
	// The default validator is rendered from the active revision's
	// validator: it fails closed too.
	defaultValidator := map[string]patchEdit{"common/validatingwebhookconfiguration/istiod-default-validator.yaml": editFailurePolicy}
	checkPatched(t, tree, twin, map[string][]patchEdit{"1-30": articleEdits}, defaultValidator)
	tree.checkRecord("1-30", editFailurePolicy.Name, editNoKubeSystem.Name, editTemplate.Name)
	for _, e := range articleEdits {
		if got := tree.read(e.Target("1-30")); !bytes.Equal(got, edited[e.Name]) {
			t.Errorf("%s: %s is not the user's edit", e.Name, e.Target("1-30"))
		}
		wantResult(t, results, "1-30/patches/"+e.Name+".yaml: applied to 1 file(s) of 1-30/generated/")
	}
	if k := string(tree.read("1-30/kustomization.yaml")); strings.Contains(k, "patches/") {
		t.Errorf("1-30/kustomization.yaml must not deploy the GitPatches:\n%s", k)
	}
	tree.runAgain()
	patched := tree.files()

	// Regenerated from the same istioctl output, 1-30 is the same tree:
	// the patches apply to the fresh files, and the records of patches
	// applied one by one fold into state.yaml.
	tree.source("1-30", "1-30/default.yaml")
	twin.source("1-30", "1-30/default.yaml")
	results = tree.run()
	twin.run()
	if d := treetest.Diff(withoutRecords(tree.files(), "1-30"), withoutRecords(patched, "1-30")); d != "" {
		t.Errorf("regenerating 1-30 from the same output changed the patched tree:\n%s", d)
	}
	tree.checkRecord("1-30", editFailurePolicy.Name, editNoKubeSystem.Name, editTemplate.Name)
	for _, f := range treetest.Names(tree.files()) {
		if strings.HasPrefix(f, "1-30/generated/applied-patches/") {
			t.Errorf("%s survived the regeneration: state.yaml records the patches now", f)
		}
	}
	wantResult(t, results, "1-30/patches/"+editTemplate.Name+".yaml: applied to 1 file(s) of 1-30/generated/")
	for _, r := range results {
		if r.Severity != framework.Info {
			// Patched files are the function's output, not hand edits.
			t.Errorf("regenerating 1-30: %s %s", r.Severity, r.Message)
		}
	}

	// Add 1-31, carrying 1-30's patches forward.
	for _, p := range []*patchTree{tree, twin} {
		p.write("istio-gitops.yaml", patchConfig(false, carry131))
		p.source("1-31", "1-31/default.yaml")
	}
	results = tree.run()
	twin.run()
	checkPatched(t, tree, twin, map[string][]patchEdit{"1-30": articleEdits, "1-31": articleEdits}, defaultValidator)
	tree.checkRecord("1-31", editFailurePolicy.Name, editNoKubeSystem.Name, editTemplate.Name)
	for _, e := range articleEdits {
		want, err := os.ReadFile(filepath.Join("../../testdata/patch/1-31", e.Name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if got := tree.read("1-31/patches/" + e.Name + ".yaml"); !bytes.Equal(got, want) {
			t.Errorf("1-31/patches/%s.yaml:\n%s\nwant testdata/patch/1-31/%s.yaml:\n%s", e.Name, got, e.Name, want)
		}
		wantResult(t, results, "1-31/patches/"+e.Name+".yaml: carried forward from 1-30/patches/"+e.Name+".yaml")
		wantResult(t, results, "1-31/patches/"+e.Name+".yaml: applied to 1 file(s) of 1-31/generated/")
		if !bytes.Equal(tree.read(e.Target("1-30")), patched[e.Target("1-30")]) {
			t.Errorf("adding 1-31 changed %s", e.Target("1-30"))
		}
	}
	tree.runAgain()

	// What Flux deploys carries the patches.
	if v := builtObject(t, tree.dir, "1-31", "ValidatingWebhookConfiguration", "istio-validator-1-31-istio-system"); !strings.Contains(v, "failurePolicy: Fail") {
		t.Errorf("the built validator does not fail closed:\n%s", v)
	}
	if v := builtObject(t, tree.dir, "1-31", "MutatingWebhookConfiguration", "istio-sidecar-injector-1-31"); strings.Count(v, "- kube-system") != 2 {
		t.Errorf("the built injector does not keep out of kube-system:\n%s", v)
	}
	line := "allowPrivilegeEscalation: {{ .Values.global.proxy.privileged }}"
	if got, was := strings.Count(builtObject(t, tree.dir, "1-31", "ConfigMap", "istio-sidecar-injector-1-31"), line),
		strings.Count(builtObject(t, twin.dir, "1-31", "ConfigMap", "istio-sidecar-injector-1-31"), line); got != was-1 {
		t.Errorf("the built injection template holds %q %d times, unpatched %d: want one less", line, got, was)
	}
	buildtest.BuildAll(t, tree.dir)

	// What the patches change, against the twin, is golden: the GitPatches,
	// the records and the patched files.
	changed := t.TempDir()
	unpatched := twin.files()
	for name, b := range tree.files() {
		if !bytes.Equal(b, unpatched[name]) {
			treetest.Write(t, filepath.Join(changed, name), b)
		}
	}
	treetest.Golden(t, changed, "../../testdata/golden-patches/carry-forward")
}

// on is the tree worked on by test t: a subtest must not fail its parent.
func (p *patchTree) on(t *testing.T) *patchTree {
	c := *p
	c.t = t
	return &c
}

// clone copies the tree (not the repository) into a fresh folder.
func (p *patchTree) clone(t *testing.T) *patchTree {
	t.Helper()
	c := &patchTree{t: t, repo: t.TempDir()}
	c.dir = filepath.Join(c.repo, "clusters", "prod", "istio")
	treetest.Copy(t, p.dir, c.dir)
	return c
}

// editNoKubeSystemV2 is editNoKubeSystem changed after it was applied:
// kube-node-lease is kept out too.
var editNoKubeSystemV2 = patchEdit{
	Name: editNoKubeSystem.Name,
	File: editNoKubeSystem.File,
	Old:  editNoKubeSystem.Old,
	New: "    - key: istio-injection\n      operator: DoesNotExist\n" +
		"    - key: kubernetes.io/metadata.name\n      operator: NotIn\n      values:\n      - kube-system\n      - kube-node-lease\n",
	Count: 2,
}

// TestGitPatchChangedOrRemoved: a patch added to a revision that is not
// regenerated is applied to its current files and recorded; changed or
// removed afterwards, it cannot be undone in place: the run fails and
// tells the user to regenerate the revision, which then succeeds.
func TestGitPatchChangedOrRemoved(t *testing.T) {
	t.Parallel()
	base := with130(t, false)
	pristine := base.files()
	base.commit("istio: revision 1-30")
	v1, _ := base.userPatch(editNoKubeSystem, "1-30")
	tmpl, _ := base.userPatch(editTemplate, "1-30")
	// The changed patch is made the same way, against the same files.
	d, _ := base.diff(func(b []byte) []byte { return editNoKubeSystemV2.Apply(t, "1-30", b) }, editNoKubeSystemV2.Target("1-30"))
	v2File := filepath.Join(t.TempDir(), editNoKubeSystemV2.Name+".patch")
	treetest.Write(t, v2File, []byte(d))
	v2 := importCmd(t, v2File, "1-30")

	selector := "1-30/patches/" + editNoKubeSystem.Name + ".yaml"
	base.write(selector, string(v1))
	base.write("1-30/patches/"+editTemplate.Name+".yaml", string(tmpl))
	base.run()
	base.checkRecord("1-30", editNoKubeSystem.Name, editTemplate.Name)
	target := editNoKubeSystem.Target("1-30")
	if got, want := base.read(target), editNoKubeSystem.Apply(t, "1-30", pristine[target]); !bytes.Equal(got, want) {
		t.Fatalf("%s is not patched", target)
	}

	// A comment in the GitPatch's file is no change of the patch: only its
	// diff counts.
	commented := base.clone(t)
	commented.write(selector, "# Keep istiod's webhook out of the system namespaces.\n"+string(v1))
	before := commented.files()
	commented.run()
	if d := treetest.Diff(commented.files(), before); d != "" {
		t.Errorf("a comment in a GitPatch changed the tree:\n%s", d)
	}

	regenerate := `regenerate revision "1-30" from istioctl output (write 1-30/istioctl-output.yaml and run again)`
	t.Run("changed", func(t *testing.T) {
		tree := base.clone(t)
		tree.write(selector, string(v2))
		tree.fail(selector, `GitPatch "namespaceselector-mutatingwebhookconfiguration" changed after it was applied to 1-30/generated/`,
			"recorded "+digestOf(t, v1)+", now "+digestOf(t, v2), "a patch cannot be undone in place", regenerate)

		tree.source("1-30", "1-30/default.yaml")
		tree.run()
		if got, want := tree.read(target), editNoKubeSystemV2.Apply(t, "1-30", pristine[target]); !bytes.Equal(got, want) {
			t.Errorf("regenerated, %s must carry the changed patch:\n%s", target, got)
		}
		tt := editTemplate.Target("1-30")
		if got, want := tree.read(tt), editTemplate.Apply(t, "1-30", pristine[tt]); !bytes.Equal(got, want) {
			t.Errorf("regenerated, %s must still carry %s", tt, editTemplate.Name)
		}
		tree.checkRecord("1-30", editNoKubeSystem.Name, editTemplate.Name)
		tree.runAgain()
	})
	t.Run("removed", func(t *testing.T) {
		tree := base.clone(t)
		if err := os.Remove(filepath.Join(tree.dir, filepath.FromSlash(selector))); err != nil {
			t.Fatal(err)
		}
		tree.fail(`1-30/generated/state.yaml: GitPatch "namespaceselector-mutatingwebhookconfiguration" was applied to 1-30/generated/ and then removed from 1-30/patches`,
			"a patch cannot be undone in place", regenerate)

		tree.source("1-30", "1-30/default.yaml")
		tree.run()
		if got := tree.read(target); !bytes.Equal(got, pristine[target]) {
			t.Errorf("regenerated without the patch, %s must be istioctl's again:\n%s", target, got)
		}
		tree.checkRecord("1-30", editTemplate.Name)
		tree.runAgain()
	})
}

// hunkHeader is the first hunk header of a diff, or of a GitPatch file,
// less its function context.
func hunkHeader(t testing.TB, diff string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^ *(@@ -\S+ \+\S+ @@)`).FindStringSubmatch(diff)
	if m == nil {
		t.Fatalf("no hunk in:\n%s", diff)
	}
	return m[1]
}

// lineNumber is the 1-based number of the line of b reading line.
func lineNumber(t testing.TB, b []byte, line string) int {
	t.Helper()
	for i, l := range strings.Split(string(b), "\n") {
		if l == line {
			return i + 1
		}
	}
	t.Fatalf("no line %q", line)
	return 0
}

// TestGitPatchConflicts: a patch that does not fit the files fails the
// run, naming the patch, the file, the hunk and the line, and nothing is
// written.
func TestGitPatchConflicts(t *testing.T) {
	t.Parallel()
	base := with130(t, false)
	pristine := base.files()
	base.commit("istio: revision 1-30")
	validator := editFailurePolicy.Target("1-30")

	t.Run("context no longer matches", func(t *testing.T) {
		// Two engineers patched the validator from the same files; the
		// first patch in name order (not file order) changes a context
		// line of the second.
		tree := base.clone(t)
		failure, _ := base.on(t).userPatch(editFailurePolicy, "1-30")
		timeout := patchEdit{Name: "validator-timeout", File: editFailurePolicy.File,
			Old: "  name: rev.validation.istio.io\n", New: "  name: rev.validation.istio.io\n  timeoutSeconds: 5\n", Count: 1}
		d, _ := base.on(t).diff(func(b []byte) []byte { return timeout.Apply(t, "1-30", b) }, validator)
		f := filepath.Join(t.TempDir(), timeout.Name+".patch")
		treetest.Write(t, f, []byte(d))
		tree.write("1-30/patches/"+editFailurePolicy.Name+".yaml", string(failure))
		tree.write("1-30/patches/a-timeout.yaml", string(importCmd(t, f, "1-30")))
		err := tree.fail("1-30/patches/a-timeout.yaml", `GitPatch "validator-timeout"`, `file "`+validator+`"`,
			`hunk "`+hunkHeader(t, d)+`" does not apply`,
			fmt.Sprintf(`line %d must read "  failurePolicy: Ignore", but it reads "  failurePolicy: Fail"`,
				lineNumber(t, pristine[validator], "  failurePolicy: Ignore")))
		if strings.Contains(err.Error(), "already carries") {
			t.Errorf("the file does not carry the change: %v", err)
		}
	})

	t.Run("edited file not checked out", func(t *testing.T) {
		// The user made the patch but kept the edit in the file.
		tree := base.clone(t)
		imported, edited := base.on(t).userPatch(editFailurePolicy, "1-30")
		tree.write(validator, string(edited))
		tree.write("1-30/patches/"+editFailurePolicy.Name+".yaml", string(imported))
		// The record catches the hand edit before the patch is tried.
		tree.fail(validator+" changed since the last run", "git checkout", "regenerate it from istioctl output")
	})

	t.Run("two patches make the same change", func(t *testing.T) {
		tree := base.clone(t)
		failure, _ := base.on(t).userPatch(editFailurePolicy, "1-30")
		tree.write("1-30/patches/failure.yaml", string(failure))
		tree.write("1-30/patches/validator-fail.yaml", strings.Replace(string(failure), "name: "+editFailurePolicy.Name, "name: validator-fail", 1))
		tree.fail(`1-30/patches/validator-fail.yaml: GitPatch "validator-fail"`, "the file already carries the patch's change",
			`GitPatch "failure-validatingwebhookconfiguration", applied before it in name order, made the change already: the two patches overlap, delete one`)
	})

	t.Run("two patches share a name", func(t *testing.T) {
		tree := base.clone(t)
		failure, _ := base.on(t).userPatch(editFailurePolicy, "1-30")
		tree.write("1-30/patches/failure.yaml", string(failure))
		tree.write("1-30/patches/failure-copy.yaml", string(failure))
		tree.fail(`1-30/patches/failure-copy.yaml and 1-30/patches/failure.yaml: two GitPatches of revision "1-30" must not share the name "failure-validatingwebhookconfiguration"`)
	})

	t.Run("missing file", func(t *testing.T) {
		// A 1-30 patch copied into 1-31 by hand, not carried forward: its
		// target keeps 1-30's name.
		tree := &patchTree{t: t, repo: t.TempDir()}
		tree.dir = filepath.Join(tree.repo, "istio")
		treetest.Copy(t, filepath.Join(golden("add-1-31"), "want"), tree.dir)
		treetest.CopyFile(t, "../../testdata/patch/1-30/sidecar-injector-template.yaml", filepath.Join(tree.dir, "1-31/patches/sidecar-injector-template.yaml"))
		tree.fail("1-31/patches/sidecar-injector-template.yaml", `GitPatch "sidecar-injector-template"`,
			`file "1-31/generated/configmap/istio-sidecar-injector-1-30.yaml" must exist`)
	})

	// Files outside the revision's generated files, as git diff names them
	// from the tree root (--relative), wrapped in a GitPatch by hand:
	// `patch import` refuses them already.
	for _, c := range []struct {
		name, file string
		want       []string
	}{
		{"pointer object in common", "common/service/istiod.yaml",
			[]string{`file "common/service/istiod.yaml" is in common/, which every run writes again`, "patch the file of the revision's generated/ folder it comes from instead"}},
		{"user file of the revision", "1-30/istio-operator.yaml",
			[]string{`file "1-30/istio-operator.yaml" must target a file under 1-30/generated/`}},
		{"the revision record", "1-30/generated/state.yaml",
			[]string{`file "1-30/generated/state.yaml" must exist`}},
		{"the tree's config", "istio-gitops.yaml",
			[]string{`file "istio-gitops.yaml" must target a file under 1-30/generated/`}},
	} {
		t.Run("outside the revision/"+c.name, func(t *testing.T) {
			tree := base.clone(t)
			d, _ := base.on(t).diff(func(b []byte) []byte { return append(b, "# edited\n"...) }, c.file,
				"-C", "clusters/prod/istio", "diff", "--relative")
			tree.write("1-30/patches/outside.yaml", handPatch(t, "outside", d))
			tree.fail(append([]string{"1-30/patches/outside.yaml", `GitPatch "outside"`}, c.want...)...)
		})
	}

	t.Run("outside the revision/another revision", func(t *testing.T) {
		// A 1-31 patch saved in 1-30/patches/ by mistake.
		tree := base.clone(t)
		d, _ := base.on(t).diff(func(b []byte) []byte { return editFailurePolicy.Apply(t, "1-30", b) }, validator,
			"-C", "clusters/prod/istio", "diff", "--relative")
		d = strings.NewReplacer("a/1-30/generated/", "a/1-31/generated/", "b/1-30/generated/", "b/1-31/generated/").Replace(d)
		tree.write("1-30/patches/outside.yaml", handPatch(t, "outside", d))
		tree.fail("1-30/patches/outside.yaml", `GitPatch "outside"`,
			`file "1-31/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml" must target a file under 1-30/generated/`)
	})

	t.Run("outside the tree", func(t *testing.T) {
		// A file next to the tree, in the same repository.
		victim := filepath.Join(base.repo, "clusters", "prod", "secrets.yaml")
		treetest.Write(t, victim, []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n"))
		base.on(t).commit("secrets")
		d, _ := base.on(t).diff(func(b []byte) []byte { return append(b, "data: {}\n"...) }, "../secrets.yaml",
			"-C", "clusters/prod", "diff", "--relative")
		for _, form := range []struct{ name, diff string }{
			{"parent of the tree", strings.ReplaceAll(d, "/secrets.yaml", "/../secrets.yaml")},
			{"parent of the revision", strings.ReplaceAll(d, "/secrets.yaml", "/generated/../../../secrets.yaml")},
			{"absolute", strings.NewReplacer("a/secrets.yaml", victim, "b/secrets.yaml", victim).Replace(d)},
		} {
			t.Run(form.name, func(t *testing.T) {
				tree := base.clone(t)
				tree.write("1-30/patches/escape.yaml", handPatch(t, "escape", form.diff))
				err := tree.fail("1-30/patches/escape.yaml", `GitPatch "escape"`)
				if !strings.Contains(err.Error(), `must not contain ".."`) && !strings.Contains(err.Error(), "must name relative paths inside the tree") {
					t.Errorf("the error must say the path leaves the tree: %v", err)
				}
			})
		}
		if b, err := os.ReadFile(victim); err != nil || string(b) != "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n" {
			t.Errorf("the file outside the tree changed: %q %v", b, err)
		}
	})

	// A patch must leave its file holding the same single object.
	for _, c := range []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"renames the object", func(b []byte) []byte {
			return bytes.Replace(b, []byte("  name: istio-validator-1-30-istio-system\n"), []byte("  name: istio-validator-1-30-istio-system-x\n"), 1)
		}, "it holds admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration istio-validator-1-30-istio-system-x"},
		{"adds an object", func(b []byte) []byte {
			return append(b, "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n  namespace: istio-system\n"...)
		}, "after the patch it must still hold exactly one object, it holds 2"},
		{"breaks the YAML", func(b []byte) []byte {
			return bytes.Replace(b, []byte("  failurePolicy: Ignore\n"), []byte("  failurePolicy: [Ignore\n"), 1)
		}, "after the patch it must still be valid YAML"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tree := base.clone(t)
			d, _ := base.on(t).diff(c.edit, validator)
			f := filepath.Join(t.TempDir(), "validator.patch")
			treetest.Write(t, f, []byte(d))
			tree.write("1-30/patches/validator.yaml", string(importCmd(t, f, "1-30")))
			tree.fail("1-30/patches/validator.yaml", `file "`+validator+`"`, c.want)
		})
	}
}

// TestGitPatchPathForms: a diff's paths may be relative to the revision
// folder (what `patch import` writes) or to the tree root (git diff run
// there, wrapped in a GitPatch by hand); both apply, when the revision is
// regenerated and when carried forward.
func TestGitPatchPathForms(t *testing.T) {
	t.Parallel()
	tree := with130(t, false)
	pristine := tree.files()
	tree.commit("istio: revision 1-30")

	imported, _ := tree.userPatch(editTemplate, "1-30")
	if !strings.Contains(string(imported), "diff --git a/generated/") {
		t.Fatalf("imported paths must be relative to the revision:\n%s", imported)
	}
	rootDiff, _ := tree.diff(func(b []byte) []byte { return editFailurePolicy.Apply(t, "1-30", b) }, editFailurePolicy.Target("1-30"),
		"-C", "clusters/prod/istio", "diff", "--relative")
	if !strings.HasPrefix(rootDiff, "diff --git a/"+editFailurePolicy.Target("1-30")+" ") {
		t.Fatalf("git diff --relative at the tree root must name the file from there:\n%s", rootDiff)
	}
	tree.write("1-30/patches/"+editTemplate.Name+".yaml", string(imported))
	tree.write("1-30/patches/"+editFailurePolicy.Name+".yaml", handPatch(t, editFailurePolicy.Name, rootDiff))

	// Both apply to the fresh files of a regenerated revision.
	tree.source("1-30", "1-30/default.yaml")
	tree.run()
	for _, e := range []patchEdit{editTemplate, editFailurePolicy} {
		f := e.Target("1-30")
		if got := tree.read(f); !bytes.Equal(got, e.Apply(t, "1-30", pristine[f])) {
			t.Errorf("%s: %s is not patched", e.Name, f)
		}
	}
	tree.checkRecord("1-30", editTemplate.Name, editFailurePolicy.Name)
	tree.runAgain()

	// Carried forward, the tree-root paths name 1-31's folder.
	tree.write("istio-gitops.yaml", patchConfig(false, carry131))
	tree.source("1-31", "1-31/default.yaml")
	tree.run()
	carried := string(tree.read("1-31/patches/" + editFailurePolicy.Name + ".yaml"))
	if !strings.Contains(carried, "diff --git a/"+editFailurePolicy.Target("1-31")+" b/"+editFailurePolicy.Target("1-31")) {
		t.Errorf("the carried copy must name 1-31's file from the tree root:\n%s", carried)
	}
	if v := tree.read(editFailurePolicy.Target("1-31")); !strings.Contains(string(v), "  failurePolicy: Fail\n") || strings.Contains(string(v), "Ignore") {
		t.Errorf("the carried patch did not apply to 1-31:\n%s", v)
	}
	tree.checkRecord("1-31", editTemplate.Name, editFailurePolicy.Name)
	tree.runAgain()
}

// editFailOpen loosens the validator the drift guards wrote.
var editFailOpen = patchEdit{
	Name:  "failopen-validatingwebhookconfiguration",
	File:  editFailurePolicy.File,
	Old:   "  failurePolicy: Fail\n",
	New:   "  failurePolicy: Ignore\n",
	Count: 1,
}

// TestGitPatchOverDriftGuards: with drift guards on (the default) the
// validators already fail closed, so the article's patch has nothing left
// to do: it fails the run, saying so. A patch that loosens the
// revision's validator applies after the guards and stays applied.
func TestGitPatchOverDriftGuards(t *testing.T) {
	t.Parallel()
	cfg, err := os.ReadFile(filepath.Join(golden("bootstrap"), "input", "istio-gitops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "driftGuards") {
		t.Fatal("the bootstrap config must leave drift guards at their default")
	}
	tree := newPatchTree(t, string(cfg))
	tree.source("1-30", "1-30/default.yaml")
	tree.run()
	if d := treetest.Diff(tree.files(), treetest.Files(t, filepath.Join(golden("bootstrap"), "want"))); d != "" {
		t.Fatalf("not the bootstrap tree:\n%s", d)
	}
	guarded := tree.files()
	tree.commit("istio: revision 1-30")

	t.Run("article patch", func(t *testing.T) {
		article := tree.clone(t)
		pf := "1-30/patches/failure-validatingwebhookconfiguration.yaml"
		treetest.CopyFile(t, "../../testdata/patch/1-30/failure-validatingwebhookconfiguration.yaml", filepath.Join(article.dir, pf))
		article.fail(pf, "the file already carries the patch's change", `revision "1-30"'s files make the change without the patch: delete `+pf)
		article.source("1-30", "1-30/default.yaml")
		article.fail(pf, `revision "1-30"'s fresh files make the change without the patch (istioctl's output or the drift guards): delete `+pf)
	})

	imported, edited := tree.userPatch(editFailOpen, "1-30")
	tree.write("1-30/patches/"+editFailOpen.Name+".yaml", string(imported))
	tree.run()
	validator := editFailOpen.Target("1-30")
	if got := tree.read(validator); !bytes.Equal(got, edited) {
		t.Errorf("%s is not the user's edit:\n%s", validator, got)
	}
	// The default validator is rendered, and guarded, every run.
	dv := "common/validatingwebhookconfiguration/istiod-default-validator.yaml"
	if got := tree.read(dv); !bytes.Equal(got, guarded[dv]) {
		t.Errorf("%s must stay guarded:\n%s", dv, got)
	}
	tree.checkRecord("1-30", editFailOpen.Name)
	tree.runAgain()
	patched := tree.files()

	// Regenerated, the guards write Fail and the patch loosens it again.
	tree.source("1-30", "1-30/default.yaml")
	tree.run()
	if d := treetest.Diff(withoutRecords(tree.files(), "1-30"), withoutRecords(patched, "1-30")); d != "" {
		t.Errorf("regenerating 1-30 from the same output changed the tree:\n%s", d)
	}
	tree.checkRecord("1-30", editFailOpen.Name)
	buildtest.BuildAll(t, tree.dir)
}

// editImageMirror pulls istiod from the team's registry: a patch tied to
// 1-30's Istio version, which carrying forward cannot port.
var editImageMirror = patchEdit{
	Name:  "istiod-image-mirror",
	File:  "deployment/istiod-REV.yaml",
	Old:   "        image: docker.io/istio/pilot:1.30.2\n",
	New:   "        image: registry.example.com/istio/pilot:1.30.2\n",
	Count: 1,
}

// TestGitPatchCarriedConflict: a carried-forward patch that does not
// apply to the new revision fails the run naming it and its origin;
// ported by hand into the new revision's patches, it is not carried again.
func TestGitPatchCarriedConflict(t *testing.T) {
	t.Parallel()
	base := with130(t, true)
	mirror, _ := base.userPatch(editImageMirror, "1-30")
	failure, _ := base.userPatch(editFailurePolicy, "1-30")
	base.write("1-30/patches/"+editImageMirror.Name+".yaml", string(mirror))
	base.write("1-30/patches/"+editFailurePolicy.Name+".yaml", string(failure))
	base.run()
	base.checkRecord("1-30", editImageMirror.Name, editFailurePolicy.Name)

	t.Run("context names the old version", func(t *testing.T) {
		tree := base.clone(t)
		tree.write("istio-gitops.yaml", patchConfig(false, carry131))
		tree.source("1-31", "1-31/default.yaml")
		pf := "1-31/patches/" + editImageMirror.Name + ".yaml"
		tree.fail(pf, `GitPatch "istiod-image-mirror"`, `file "1-31/generated/deployment/istiod-1-31.yaml"`,
			`hunk "`+hunkHeader(t, string(mirror))+`" does not apply`,
			fmt.Sprintf(`line %d must read "        image: docker.io/istio/pilot:1.30.2", but it reads "        image: docker.io/istio/pilot:1.31.0"`,
				lineNumber(t, base.on(t).read(editImageMirror.Target("1-30")), "        image: registry.example.com/istio/pilot:1.30.2")),
			`it was carried forward from 1-30/patches/istiod-image-mirror.yaml of revision "1-30": port it by hand and save it as `+pf)

		// Ported by hand: the new version in the diff.
		ported := strings.ReplaceAll(patch.ReplaceRevision(string(mirror), "1-30", "1-31"), "1.30.2", "1.31.0")
		tree.write(pf, ported)
		results := tree.run()
		if got := string(tree.read(pf)); got != ported {
			t.Errorf("the ported patch was overwritten by a carried copy:\n%s", got)
		}
		for _, r := range infoResults(results) {
			if strings.HasPrefix(r, pf+": carried forward") {
				t.Errorf("the ported patch must not be carried: %s", r)
			}
		}
		wantResult(t, results, "1-31/patches/"+editFailurePolicy.Name+".yaml: carried forward from 1-30/patches/"+editFailurePolicy.Name+".yaml")
		if d := string(tree.read("1-31/generated/deployment/istiod-1-31.yaml")); !strings.Contains(d, "        image: registry.example.com/istio/pilot:1.31.0\n") {
			t.Errorf("1-31's istiod must pull from the mirror:\n%s", d)
		}
		tree.checkRecord("1-31", editImageMirror.Name, editFailurePolicy.Name)
		tree.runAgain()
	})

	t.Run("already in the new output", func(t *testing.T) {
		// Drift guards turned on with the upgrade: 1-31's validator fails
		// closed without the carried patch.
		tree := base.clone(t)
		tree.write("istio-gitops.yaml", patchConfig(true, carry131))
		tree.source("1-31", "1-31/default.yaml")
		tree.fail("1-31/patches/"+editFailurePolicy.Name+".yaml", "the file already carries the patch's change",
			`revision "1-31"'s fresh files make the change without 1-30/patches/failure-validatingwebhookconfiguration.yaml, so it must not be carried forward`,
			`remove patchesFrom from revision "1-31" and copy the patches it still needs into 1-31/patches by hand`)
	})
}

// istioGitOpsBinary is the binary under test: $ISTIO_GITOPS (what `make
// test` builds), or built from ../../fn/istio-gitops.
func istioGitOpsBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("ISTIO_GITOPS"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "istio-gitops")
	build := exec.Command("go", "build", "-o", bin, "../../fn/istio-gitops")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ../../fn/istio-gitops: %v\n%s", err, out)
	}
	return bin
}

// TestGitPatchKptFnEval runs the patched scenario through the real binary
// under `kpt fn eval`: patches added to 1-30, then 1-31 added with
// patchesFrom. Each step must write the same bytes as RunDir, a second
// run must change nothing, and a patch that does not apply must fail kpt
// and leave the tree alone.
func TestGitPatchKptFnEval(t *testing.T) {
	t.Parallel()
	kpt, err := exec.LookPath("kpt")
	if err != nil {
		t.Skip("kpt not found on PATH")
	}
	if testing.Short() {
		t.Skip("builds the binary and runs kpt: skipped with -short")
	}
	bin := istioGitOpsBinary(t)
	viaKpt, viaRunDir := with130(t, false), with130(t, false)
	evalKpt := func() (string, error) {
		cmd := exec.Command(kpt, "fn", "eval", viaKpt.dir, "--exec", bin)
		cmd.Dir = viaKpt.dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	step := func(name string) {
		t.Helper()
		if out, err := evalKpt(); err != nil {
			t.Fatalf("%s: kpt fn eval: %v\n%s", name, err, out)
		}
		viaRunDir.run()
		if d := treetest.Diff(viaKpt.files(), viaRunDir.files()); d != "" {
			t.Errorf("%s: kpt fn eval wrote another tree than RunDir:\n%s", name, d)
		}
	}
	both := func(f func(p *patchTree)) {
		f(viaKpt)
		f(viaRunDir)
	}

	// The tree as bootstrapped (the orchestrators' bootstrap is tested
	// in fn/e2e), and the patches TestGitPatchLifecycle shows a user makes
	// on it.
	both(func(p *patchTree) {
		for _, e := range articleEdits {
			treetest.CopyFile(t, filepath.Join("../../testdata/patch/1-30", e.Name+".yaml"), filepath.Join(p.dir, "1-30/patches", e.Name+".yaml"))
		}
	})
	step("patch 1-30")
	viaKpt.checkRecord("1-30", editFailurePolicy.Name, editNoKubeSystem.Name, editTemplate.Name)
	both(func(p *patchTree) {
		p.write("istio-gitops.yaml", patchConfig(false, carry131))
		p.source("1-31", "1-31/default.yaml")
	})
	step("add 1-31")
	viaKpt.checkRecord("1-31", editFailurePolicy.Name, editNoKubeSystem.Name, editTemplate.Name)
	if d := treetest.Diff(treetest.Files(t, filepath.Join(viaKpt.dir, "1-31", "patches")), treetest.Files(t, "../../testdata/patch/1-31")); d != "" {
		t.Errorf("carried under kpt, 1-31/patches/ differs from testdata/patch/1-31:\n%s", d)
	}
	before := viaKpt.files()
	if out, err := evalKpt(); err != nil {
		t.Fatalf("kpt fn eval again: %v\n%s", err, out)
	}
	if d := treetest.Diff(viaKpt.files(), before); d != "" {
		t.Errorf("a second kpt fn eval changed the tree:\n%s", d)
	}

	// A patch that does not apply: kpt fails, the tree stays.
	viaKpt.write("1-31/patches/validator-v2.yaml", strings.NewReplacer("name: "+editFailurePolicy.Name, "name: validator-v2",
		"path: /validate\n", "path: /validate/v2\n").Replace(string(viaKpt.read("1-31/patches/"+editFailurePolicy.Name+".yaml"))))
	before = viaKpt.files()
	out, err := evalKpt()
	if err == nil {
		t.Fatalf("kpt fn eval succeeded:\n%s", out)
	}
	for _, w := range []string{"validator-v2", "1-31/patches/validator-v2.yaml", "istio-validator-1-31-istio-system.yaml", "path: /validate/v2"} {
		if !strings.Contains(out, w) {
			t.Errorf("kpt's output must say %q:\n%s", w, out)
		}
	}
	if d := treetest.Diff(viaKpt.files(), before); d != "" {
		t.Errorf("a failed kpt fn eval wrote:\n%s", d)
	}
}

// runAsFunction runs the function over the tree the way kustomize fn run
// and kpt fn eval do, in process: the package read with kyaml, the
// ResourceList through kyaml's FunctionFilter (which keeps the comments
// and field order of every object it sent whose id comes back), the
// package written back.
func runAsFunction(t testing.TB, dir string) {
	t.Helper()
	cfg, err := (&kio.ByteReader{Reader: bytes.NewReader(readOrFail(t, filepath.Join(dir, "istio-gitops.yaml"))),
		SetAnnotations: map[string]string{"internal.config.kubernetes.io/path": "istio-gitops.yaml"}}).Read()
	if err != nil || len(cfg) != 1 {
		t.Fatalf("read the config: %v", err)
	}
	rw := &kio.LocalPackageReadWriter{PackagePath: dir, MatchFilesGlob: kio.MatchAll}
	fn := &runtimeutil.FunctionFilter{FunctionConfig: cfg[0], Run: func(in io.Reader, out io.Writer) error {
		return framework.Execute(processors, &kio.ByteReadWriter{Reader: in, Writer: out, KeepReaderAnnotations: true})
	}}
	if err := (kio.Pipeline{Inputs: []kio.Reader{rw}, Filters: []kio.Filter{fn}, Outputs: []kio.Writer{rw}}).Execute(); err != nil {
		t.Fatalf("run %s as a function: %v", dir, err)
	}
}

// readOrFail reads a file or fails the test.
func readOrFail(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGitPatchAsFunction: patches applied to a revision that is not
// regenerated give the same tree whether the function runs alone
// (RunDir) or wrapped by kustomize fn run or kpt. The record of such a
// revision is rewritten; were it emitted with the id of the record read,
// those orchestrators would keep the old record's field order.
func TestGitPatchAsFunction(t *testing.T) {
	t.Parallel()
	viaFn, viaRunDir := with130(t, false), with130(t, false)
	for _, p := range []*patchTree{viaFn, viaRunDir} {
		for _, e := range articleEdits {
			treetest.CopyFile(t, filepath.Join("../../testdata/patch/1-30", e.Name+".yaml"), filepath.Join(p.dir, "1-30/patches", e.Name+".yaml"))
		}
	}
	runAsFunction(t, viaFn.dir)
	viaRunDir.run()
	if d := treetest.Diff(viaFn.files(), viaRunDir.files()); d != "" {
		t.Errorf("run as a function, the tree differs from RunDir's:\n%s", d)
	}
	viaFn.checkRecord("1-30", editFailurePolicy.Name, editNoKubeSystem.Name, editTemplate.Name)
	before := viaFn.files()
	runAsFunction(t, viaFn.dir)
	if d := treetest.Diff(viaFn.files(), before); d != "" {
		t.Errorf("a second run as a function changed the tree:\n%s", d)
	}
}

// TestGitPatchKeepsHandEditsReported: a revision that is not regenerated
// and holds a hand edit is refused, patch or no patch, naming the file; a
// patch applied to a kept revision is recorded with the patched file's
// digest; a hand edit is reported when the revision is regenerated.
func TestGitPatchKeepsHandEditsReported(t *testing.T) {
	t.Parallel()
	tree := with130(t, false)
	edited := "1-30/generated/configmap/istio-1-30.yaml"
	clean := tree.read(edited)
	tree.write(edited, string(clean)+"# tuned by hand\n")
	treetest.CopyFile(t, "../../testdata/patch/1-30/failure-validatingwebhookconfiguration.yaml",
		filepath.Join(tree.dir, "1-30/patches/failure-validatingwebhookconfiguration.yaml"))
	tree.fail(edited + " changed since the last run")
	tree.write(edited, string(clean))
	tree.run()
	tree.checkRecord("1-30", editFailurePolicy.Name)
	tree.write(edited, string(clean)+"# tuned by hand\n")

	tree.source("1-30", "1-30/default.yaml")
	var warned []string
	for _, r := range tree.run() {
		if r.Severity == framework.Warning && r.File != nil {
			warned = append(warned, r.File.Path+": "+r.Message)
		}
	}
	if len(warned) != 1 || !strings.HasPrefix(warned[0], edited+": replaced a file edited by hand") {
		t.Errorf("warnings %q, want one naming %s", warned, edited)
	}
}

// TestGitPatchDeterministic: with patches to apply and to carry forward,
// the same items in another order give the same bytes, results included.
func TestGitPatchDeterministic(t *testing.T) {
	t.Parallel()
	tree := with130(t, false)
	for i, e := range articleEdits {
		// File order is not name order.
		treetest.CopyFile(t, filepath.Join("../../testdata/patch/1-30", e.Name+".yaml"), filepath.Join(tree.dir, "1-30/patches", fmt.Sprintf("%d.yaml", len(articleEdits)-i)))
	}
	tree.write("istio-gitops.yaml", patchConfig(false, carry131))
	tree.source("1-31", "1-31/default.yaml")
	items, err := disk.ReadObjects(tree.dir)
	if err != nil {
		t.Fatal(err)
	}
	execute := func(items []*yaml.RNode) []byte {
		var in, out bytes.Buffer
		if err := (kio.ByteWriter{Writer: &in, KeepReaderAnnotations: true,
			WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion}).Write(items); err != nil {
			t.Fatal(err)
		}
		if err := framework.Execute(processors, &kio.ByteReadWriter{Reader: &in, Writer: &out, KeepReaderAnnotations: true}); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	copies := func() []*yaml.RNode {
		c := make([]*yaml.RNode, len(items))
		for i, it := range items {
			c[i] = it.Copy()
		}
		return c
	}
	want := execute(copies())
	if n := strings.Count(string(want), "applied to 1 file(s) of 1-31/generated/"); n != len(articleEdits) {
		t.Fatalf("the carried patches were not applied (%d results)", n)
	}
	reversed := copies()
	slices.Reverse(reversed)
	if got := execute(reversed); !bytes.Equal(got, want) {
		t.Errorf("the items reversed give other bytes:\n%s", firstDiff(got, want))
	}
}

// ExampleRun_gitPatch regenerates revision 1-30 from istioctl's output with
// the article's GitPatch in 1-30/patches/: its validator fails closed, and
// the revision's record says which patch its files carry.
func ExampleRun_gitPatch() {
	files := []struct{ path, content string }{
		{"istio-gitops.yaml", patchConfig(false, only130)},
		{"1-30/istioctl-output.yaml", exampleFile("../../testdata/istioctl/1-30/default.yaml")},
		{"1-30/patches/failure-validatingwebhookconfiguration.yaml", exampleFile("../../testdata/patch/1-30/failure-validatingwebhookconfiguration.yaml")},
	}
	var items []*yaml.RNode
	for _, f := range files {
		nodes, err := (&kio.ByteReader{Reader: strings.NewReader(f.content),
			SetAnnotations: map[string]string{"internal.config.kubernetes.io/path": f.path}}).Read()
		if err != nil {
			panic(err)
		}
		items = append(items, nodes...)
	}
	cfg, err := config.Load(items[0])
	if err != nil {
		panic(err)
	}
	outFiles, results, err := pipeline.Run(cfg, fileset.FromItems(items), pipeline.Options{})
	if err != nil {
		panic(err)
	}
	out, err := outFiles.Items()
	if err != nil {
		panic(err)
	}
	for _, r := range results {
		if strings.HasPrefix(r.Message, "applied") {
			fmt.Printf("%s: %s\n", r.File.Path, r.Message)
		}
	}
	for _, o := range out {
		switch p := object.Path(o); p {
		case "1-30/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml":
			v, _ := o.Pipe(yaml.Lookup("webhooks", "[name=rev.validation.istio.io]", "failurePolicy"))
			fmt.Printf("%s: failurePolicy: %s\n", p, yaml.GetValue(v))
		case "1-30/generated/state.yaml":
			st, _ := state.Read(o)
			for _, a := range st.Spec.Patches {
				fmt.Printf("%s: carries %s\n", p, a.Name)
			}
		}
	}
	// Output:
	// 1-30/patches/failure-validatingwebhookconfiguration.yaml: applied to 1 file(s) of 1-30/generated/
	// 1-30/generated/state.yaml: carries failure-validatingwebhookconfiguration
	// 1-30/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml: failurePolicy: Fail
}

func exampleFile(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestRetireCarriedFrom: retiring the revision another one carried its
// patches from is allowed (the copies are in the new revision's patches/)
// with a warning until patchesFrom goes; regenerating the new revision
// while patchesFrom names a retired revision is refused.
func TestRetireCarriedFrom(t *testing.T) {
	t.Parallel()
	tree := with130(t, false)
	treetest.CopyFile(t, "../../testdata/patch/1-30/"+editNoKubeSystem.Name+".yaml",
		filepath.Join(tree.dir, "1-30/patches/"+editNoKubeSystem.Name+".yaml"))
	tree.run()
	tree.write("istio-gitops.yaml", patchConfig(false, carry131))
	tree.source("1-31", "1-31/default.yaml")
	tree.run()
	carried := "1-31/patches/" + editNoKubeSystem.Name + ".yaml"
	if _, ok := tree.files()[carried]; !ok {
		t.Fatalf("%s was not carried", carried)
	}
	retired := strings.Replace(patchConfig(false, "  - name: 1-31\n    patchesFrom: 1-30\n"), "activeRevision: 1-30", "activeRevision: 1-31", 1)
	tree.write("istio-gitops.yaml", retired)
	warned := false
	for _, r := range tree.run() {
		warned = warned || r.Severity == framework.Warning && strings.Contains(r.Message, `spec.revisions[0].patchesFrom: "1-30" is no longer listed; its patches were carried when "1-31" was generated`)
	}
	if !warned {
		t.Error("no warning that patchesFrom names a retired revision")
	}
	for _, f := range treetest.Names(tree.files()) {
		if strings.HasPrefix(f, "1-30/") {
			t.Errorf("%s survived the retirement", f)
		}
	}
	tree.checkRecord("1-31", editNoKubeSystem.Name)
	tree.source("1-31", "1-31/default.yaml")
	tree.fail(`spec.revisions[0].patchesFrom: "1-30" is no longer listed`, "remove patchesFrom")
}

// TestPatchPullRequestsMerge: two teams' pull requests, each adding a
// patch to the same kept revision and running the function, merge with
// git without a conflict (each patch keeps its own record), and the
// merged tree is what the function writes. Two patches of the same file
// conflict in that file alone; taking either side and regenerating the
// revision resolves it.
func TestPatchPullRequestsMerge(t *testing.T) {
	t.Parallel()
	tree := with130(t, true)
	branch := func(name string, edits ...patchEdit) {
		tree.git("checkout", "-q", "-b", name, "main")
		for _, e := range edits {
			treetest.CopyFile(t, "../../testdata/patch/1-30/"+e.Name+".yaml", filepath.Join(tree.dir, "1-30/patches/"+e.Name+".yaml"))
		}
		tree.run()
		tree.commit("istio: patch " + name)
	}
	branch("validator", editFailurePolicy)
	branch("injector", editNoKubeSystem)
	tree.git("checkout", "-q", "main")
	tree.git("merge", "-q", "--no-edit", "validator")
	tree.git("merge", "-q", "--no-edit", "injector") // fails the test on a conflict
	merged := tree.files()
	tree.run()
	if d := treetest.Diff(tree.files(), merged); d != "" {
		t.Errorf("the merged tree is not what the function writes:\n%s", d)
	}
	tree.checkRecord("1-30", editFailurePolicy.Name, editNoKubeSystem.Name)

	// Two patches of one line: the file conflicts, the records do not.
	tree.git("checkout", "-q", "-b", "reviewed", "main~2")
	treetest.CopyFile(t, "../../testdata/patch/1-30/"+editFailurePolicy.Name+".yaml", filepath.Join(tree.dir, "1-30/patches/reviewed.yaml"))
	other := strings.NewReplacer("name: "+editFailurePolicy.Name, "name: reviewed", "+  failurePolicy: Fail", "+  failurePolicy: Ignore # reviewed").
		Replace(string(tree.read("1-30/patches/reviewed.yaml")))
	tree.write("1-30/patches/reviewed.yaml", other)
	tree.run()
	tree.commit("istio: the validator reviewed")
	cmd := exec.Command("git", "merge", "-q", "--no-edit", "validator")
	cmd.Dir = tree.repo
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1", "HOME="+tree.repo,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if err := cmd.Run(); err == nil {
		t.Fatal("two patches of one file merged without a conflict")
	}
	conflicts := strings.Fields(tree.git("diff", "--name-only", "--diff-filter=U"))
	// The patched file, and the default validator rendered from it.
	if want := []string{"clusters/prod/istio/" + editFailurePolicy.Target("1-30"),
		"clusters/prod/istio/common/validatingwebhookconfiguration/istiod-default-validator.yaml"}; !slices.Equal(conflicts, want) {
		t.Errorf("conflicts in %q, want only the patched file and its rendering %q", conflicts, want)
	}
	// Taking one side leaves a file the other side's record does not
	// know; regenerating applies both patches in name order, and the
	// second finds its line changed: it names the patch that did.
	tree.git("checkout", "--theirs", "--", ".")
	tree.fail(editFailurePolicy.Target("1-30")+" changed since the last run", "regenerate it from istioctl output")
	tree.source("1-30", "1-30/default.yaml")
	tree.fail(`GitPatch "reviewed"`, editFailurePolicy.Target("1-30"))
}
