package pipeline_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// shared is a GitPatch of testdata/patch made for 1-30, with spec.revision
// set, as a fleet keeps it once for every cluster.
func shared(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../testdata/patch/1-30", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(b, []byte("spec:\n"), []byte("spec:\n  revision: 1-30\n"), 1)
}

// onDisk runs the tree as istio-gitops run does: spec.patchesFrom is read
// from disk.
func (p *patchTree) onDisk() (string, error) {
	p.t.Helper()
	res, err := krm.Processors{config.Kind: fleet.Processor{Root: p.dir}}.RunDir(p.dir)
	var b strings.Builder
	for _, r := range res {
		b.WriteString(r.Message + "\n")
	}
	if err != nil {
		b.WriteString("error: " + err.Error())
	}
	return b.String(), err
}

// TestSharedPatches: a GitPatch kept once beside the clusters
// (spec.patchesFrom) applies to each revision of each cluster, its
// revision token rewritten: to a kept revision once, recorded as a patch
// of its own would be; to a revision generated, with its patches; a
// revision's own patch of the same name is used instead (a port); under
// kustomize and kpt it must be in the input.
func TestSharedPatches(t *testing.T) {
	p := with130(t, true)
	fleetPatches := filepath.Join(p.repo, "patches")
	edit := editNoKubeSystem
	treetest.Write(t, filepath.Join(fleetPatches, edit.Name+".yaml"), shared(t, edit.Name))
	cfg := patchConfig(false, only130) + "  patchesFrom: [../../../patches]\n"
	p.write("istio-gitops.yaml", cfg)

	// A kept revision gets it once, with a record of its own.
	before := p.read(edit.Target("1-30"))
	said, err := p.onDisk()
	if err != nil {
		t.Fatal(said)
	}
	if got, want := p.read(edit.Target("1-30")), edit.Apply(t, "1-30", before); !bytes.Equal(got, want) {
		t.Errorf("%s:\n%s", edit.Target("1-30"), treetest.LineDiff(got, want))
	}
	if _, err := os.Stat(filepath.Join(p.dir, "1-30/generated/applied-patches", edit.Name+".yaml")); err != nil {
		t.Errorf("the shared patch applied to a kept revision must have its record: %v", err)
	}
	if !strings.Contains(said, "applied to 1 file(s) of 1-30/generated/") {
		t.Errorf("the run must say the patch applied:\n%s", said)
	}
	again := p.files()
	if said, err := p.onDisk(); err != nil || treetest.Diff(p.files(), again) != "" {
		t.Errorf("a second run changed the tree: %v\n%s", err, said)
	}

	// Under kustomize and kpt, the function sees only the tree: the
	// shared folder is out of its input.
	runFails(t, p.dir, `spec.patchesFrom[0]: "../../../patches" is outside the function's input`, "run `istio-gitops run`")
	// Over the repository, it is in the input: the same bytes.
	viaRoot := p.clone(t)
	treetest.Copy(t, fleetPatches, filepath.Join(viaRoot.repo, "patches"))

	// A revision generated gets it rewritten for it (istio-sidecar-injector-1-31),
	// and no copy is written.
	p.write("istio-gitops.yaml", patchConfig(false, "  - name: 1-30\n  - name: 1-31\n")+"  patchesFrom: [../../../patches]\n")
	p.source("1-31", "1-31/default.yaml")
	if said, err := p.onDisk(); err != nil {
		t.Fatal(said)
	}
	fresh := p.read(edit.Target("1-31"))
	if !bytes.Contains(fresh, []byte("      - kube-system\n")) {
		t.Errorf("%s lacks the shared patch's change:\n%s", edit.Target("1-31"), fresh)
	}
	rec := p.recordOf("1-31")
	if len(rec.Spec.Patches) != 1 || rec.Spec.Patches[0].Name != edit.Name {
		t.Errorf("1-31's record lists %v", rec.Spec.Patches)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "1-31", "patches")); err == nil {
		t.Error("a shared patch is not copied into the revision's patches/")
	}

	// The same bytes through the function over the repository (kpt fn
	// eval on its root): the shared folder is in the input.
	viaRoot.write("istio-gitops.yaml", patchConfig(false, "  - name: 1-30\n  - name: 1-31\n")+"  patchesFrom: [../../../patches]\n")
	viaRoot.source("1-31", "1-31/default.yaml")
	if _, err := processors.RunDir(viaRoot.repo); err != nil {
		t.Fatal(err)
	}
	if d := treetest.Diff(viaRoot.files(), p.files()); d != "" {
		t.Errorf("over the repository the function wrote another tree:\n%s", d)
	}
}

// TestSharedPatchPorted: a shared patch that does not fit a revision
// fails the run that generates it, saying how to port it; the port, saved
// in the revision's patches/ under the same name, is used instead.
func TestSharedPatchPorted(t *testing.T) {
	p := with130(t, true)
	istiod := "generated/deployment/istiod-1-30.yaml"
	d, _ := p.diff(func(b []byte) []byte {
		return bytes.Replace(b, []byte("        name: discovery\n"), []byte("        name: discovery\n        imagePullPolicy: Always\n"), 1)
	}, "1-30/"+istiod)
	treetest.Write(t, filepath.Join(p.repo, "pull-always.patch"), []byte(d))
	patchFile := string(importCmd(t, filepath.Join(p.repo, "pull-always.patch"), "1-30"))
	fleetPatches := filepath.Join(p.repo, "patches")
	treetest.Write(t, filepath.Join(fleetPatches, "pull-always.yaml"),
		[]byte(strings.Replace(patchFile, "spec:\n", "spec:\n  revision: 1-30\n", 1)))
	p.write("istio-gitops.yaml", patchConfig(false, "  - name: 1-30\n  - name: 1-31\n")+"  patchesFrom: [../../../patches]\n")
	p.source("1-31", "1-31/default.yaml")
	// Its context holds 1.30.2, which the rewrite leaves: it fails on 1-31.
	snap := p.files()
	said, err := p.onDisk()
	if err == nil || !strings.Contains(said, `it is shared by spec.patchesFrom, made for revision "1-30": port it for revision "1-31" by hand and save it as 1-31/patches/pull-always.yaml, which is used instead`) {
		t.Fatalf("%v\n%s", err, said)
	}
	if d := treetest.Diff(p.files(), snap); d != "" {
		t.Errorf("a failed run wrote:\n%s", d)
	}
	port := strings.ReplaceAll(strings.ReplaceAll(patchFile, "1-30", "1-31"), "1.30.2", "1.31.0")
	p.write("1-31/patches/pull-always.yaml", port)
	said, err = p.onDisk()
	if err != nil {
		t.Fatal(said)
	}
	if !strings.Contains(said, `used for revision "1-31" instead of the shared GitPatch`) {
		t.Errorf("the run must say the port is used:\n%s", said)
	}
	if !bytes.Contains(p.read("1-31/generated/deployment/istiod-1-31.yaml"), []byte("imagePullPolicy: Always")) {
		t.Error("the port must be applied")
	}
	if !bytes.Contains(p.read("1-30/"+istiod), []byte("imagePullPolicy: Always")) {
		t.Error("the shared patch must be applied to 1-30")
	}
}

// TestSharedPatchMistakes: what spec.patchesFrom must name.
func TestSharedPatchMistakes(t *testing.T) {
	for _, c := range []struct {
		name, file, content, want string
	}{
		{"no revision", "patches/x.yaml", "", `GitPatch "namespaceselector-mutatingwebhookconfiguration": spec.revision must name the revision its diff was made against`},
		{"no patch", "patches/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", `spec.patchesFrom[0]: "../../../patches" holds no GitPatch`},
		{"missing", "elsewhere/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", `spec.patchesFrom[0]: "../../../patches": must be a file or folder, and there is none`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := with130(t, false)
			content := c.content
			if content == "" {
				b, _ := os.ReadFile("../../testdata/patch/1-30/namespaceselector-mutatingwebhookconfiguration.yaml")
				content = string(b)
			}
			treetest.Write(t, filepath.Join(p.repo, c.file), []byte(content))
			p.write("istio-gitops.yaml", patchConfig(false, only130)+"  patchesFrom: [../../../patches]\n")
			snap := p.files()
			said, err := p.onDisk()
			if err == nil || !strings.Contains(said, c.want) {
				t.Errorf("%v\n%s\nwant %q", err, said, c.want)
			}
			if d := treetest.Diff(p.files(), snap); d != "" {
				t.Errorf("a failed run wrote:\n%s", d)
			}
		})
	}
}

// TestRetireNamespaceSources: retiring a revision says when namespaces
// kept elsewhere went unchecked: no source configured, or
// spec.namespaces.from not read (under kustomize and kpt).
func TestRetireNamespaceSources(t *testing.T) {
	retire := func(t *testing.T, extra string) string {
		dir := t.TempDir()
		treetest.Copy(t, filepath.Join(golden("story"), "6-promote-again"), dir)
		b, err := os.ReadFile(filepath.Join(golden("story"), "7-retire-1-30", "istio-gitops.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), append(b, extra...))
		return dir
	}
	warnings := func(dir string, ps krm.Processors) string {
		res, err := ps.RunDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range res {
			if r.Severity == "warning" {
				out = append(out, r.Message)
			}
		}
		return strings.Join(out, "\n")
	}
	if w := warnings(retire(t, ""), processors); !strings.Contains(w, `retiring ["1-30"]: no namespace source is configured, so only the Namespaces of the input were checked; namespaces kept elsewhere (the teams' repositories) were not: list them in spec.namespaces.from`) {
		t.Errorf("no source: warnings:\n%s", w)
	}
	dir := retire(t, "  namespaces:\n    from: [teams]\n")
	treetest.Write(t, filepath.Join(dir, "teams", "ns.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n    istio.io/rev: 1-31\n"))
	if w := warnings(dir, processors); !strings.Contains(w, `retiring ["1-30"]: the Namespaces of spec.namespaces.from ["teams"] were not checked: the function sees only its input under kustomize and kpt`) {
		t.Errorf("as a function: warnings:\n%s", w)
	}
	dir = retire(t, "  namespaces:\n    from: [teams]\n")
	treetest.Write(t, filepath.Join(dir, "teams", "ns.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n    istio.io/rev: 1-31\n"))
	if w := warnings(dir, krm.Processors{config.Kind: fleet.Processor{Root: dir}}); strings.Contains(w, "retiring") {
		t.Errorf("istio-gitops run reads the source: warnings:\n%s", w)
	}
}

// TestOrderAsFunction: under kustomize and kpt the order of spec.promotion
// cannot be judged (the other clusters' trees and the Git history are not
// in the input): the run says so.
func TestOrderAsFunction(t *testing.T) {
	p := with130(t, false)
	p.write("istio-gitops.yaml", patchConfig(false, only130)+"  promotion:\n    after: [../staging]\n    soak: 24h\n")
	const want = "spec.promotion: the order is not checked here: the function sees only its input under kustomize and kpt; `istio-gitops run` and `istio-gitops fleet check` (in CI) check it"
	for _, r := range p.run() {
		if r.Severity == "warning" && r.Message == want && r.File != nil && r.File.Path == "istio-gitops.yaml" {
			return
		}
	}
	t.Errorf("the run must warn %q", want)
}

// TestOwnPatchRevision: a GitPatch in a revision's patches/ may name its
// revision in spec.revision, and must not name another.
func TestOwnPatchRevision(t *testing.T) {
	edit := editNoKubeSystem
	p := with130(t, false)
	p.write(filepath.Join("1-30", "patches", edit.Name+".yaml"), string(shared(t, edit.Name)))
	p.run()
	if !bytes.Contains(p.read(edit.Target("1-30")), []byte("      - kube-system\n")) {
		t.Errorf("%s lacks the patch's change", edit.Target("1-30"))
	}

	p = with130(t, false)
	p.write(filepath.Join("1-30", "patches", edit.Name+".yaml"), strings.Replace(string(shared(t, edit.Name)), "  revision: 1-30\n", "  revision: 1-31\n", 1))
	runFails(t, p.dir, `1-30/patches/`+edit.Name+`.yaml: GitPatch "`+edit.Name+`": spec.revision: "1-31" must be "1-30", the revision whose patches/ holds it (or be left out)`)
}
