package pipeline_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/buildtest"
	"github.com/istio-gitops/istio-gitops/internal/state"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

func messages(results framework.Results, sev framework.Severity) []string {
	var out []string
	for _, r := range results {
		if r.Severity == sev {
			m := r.Message
			if r.File != nil {
				m = r.File.Path + ": " + m
			}
			out = append(out, m)
		}
	}
	return out
}

// TestTagsInOutputGiveWay: tag objects a user had istioctl render
// (values.revisionTags) are dropped with a warning; spec.tags renders its
// own, equal to istioctl's rendering.
func TestTagsInOutputGiveWay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(storyConfig([]string{"1-31"}, "1-31", map[string]string{"prod-stable": "1-31"})))
	treetest.CopyFile(t, filepath.Join(fixtures, "1-31/tags.yaml"), filepath.Join(dir, "1-31/istioctl-output.yaml"))
	results := run(t, dir)
	warnings := strings.Join(messages(results, framework.Warning), "\n")
	if n := strings.Count(warnings, "gives way to the object rendered from spec.tags"); n != 2 {
		t.Errorf("want 2 warnings for the tag webhook and Service, got:\n%s", warnings)
	}
	files := treetest.Files(t, dir)
	for _, f := range []string{
		"common/mutatingwebhookconfiguration/istio-revision-tag-prod-stable.yaml",
		"common/service/istiod-revision-tag-prod-stable.yaml",
	} {
		if !bytes.Contains(files[f], []byte("rendered-from: spec.tags.prod-stable")) {
			t.Errorf("%s is not the rendered tag:\n%s", f, files[f])
		}
	}
	buildtest.BuildAll(t, dir)
}

// TestDefaultTagFollowsActive: istio-injection=enabled namespaces and
// sidecar.istio.io/inject=true pods are injected only by the default tag's
// webhooks. Without tags.default, activeRevision renders them from the
// active revision's injector (what `istioctl tag set default --revision
// <active>` writes), and they move with it; tags.default overrides it.
func TestDefaultTagFollowsActive(t *testing.T) {
	t.Parallel()
	const (
		mwc = "common/mutatingwebhookconfiguration/istio-revision-tag-default.yaml"
		svc = "common/service/istiod-revision-tag-default.yaml"
	)
	dir := t.TempDir()
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(storyConfig([]string{"1-30", "1-31"}, "1-30", nil)))
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/default.yaml"), filepath.Join(dir, "1-30/istioctl-output.yaml"))
	treetest.CopyFile(t, filepath.Join(fixtures, "1-31/default.yaml"), filepath.Join(dir, "1-31/istioctl-output.yaml"))
	run(t, dir)
	files := treetest.Files(t, dir)
	for _, f := range []string{mwc, svc} {
		b := string(files[f])
		if !strings.Contains(b, "fn.istio-gitops.dev/rendered-from: spec.activeRevision") || !strings.Contains(b, "istio.io/rev: 1-30") || !strings.Contains(b, "istio.io/tag: default") {
			t.Errorf("%s is not the default tag rendered from spec.activeRevision 1-30:\n%s", f, b)
		}
	}
	for _, w := range []string{"name: namespace.sidecar-injector.istio.io", "name: object.sidecar-injector.istio.io", "name: istiod-1-30\n", "key: istio-injection\n      operator: In\n      values:\n      - enabled"} {
		if !strings.Contains(string(files[mwc]), w) {
			t.Errorf("%s lacks %q:\n%s", mwc, w, files[mwc])
		}
	}

	// Promote: the default tag moves with activeRevision.
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(storyConfig([]string{"1-30", "1-31"}, "1-31", nil)))
	said := strings.Join(resultLines(run(t, dir)), "\n")
	promoted := treetest.Files(t, dir)
	if !strings.Contains(string(promoted[mwc]), "istio.io/rev: 1-31") || !strings.Contains(string(promoted[mwc]), "name: istiod-1-31\n") {
		t.Errorf("promoting 1-31 did not move the default tag:\n%s", promoted[mwc])
	}
	if !strings.Contains(said, "activeRevision 1-30 -> 1-31") || !strings.Contains(said, mwc) {
		t.Errorf("the move must name the default tag's files:\n%s", said)
	}

	// tags.default overrides it: the same objects, from spec.tags.
	cfg := strings.Replace(storyConfig([]string{"1-30", "1-31"}, "1-31", nil), "  tags:\n", "  tags:\n    default: 1-30\n", 1)
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg))
	run(t, dir)
	pinned := treetest.Files(t, dir)
	for _, f := range []string{mwc, svc} {
		b := string(pinned[f])
		if !strings.Contains(b, "fn.istio-gitops.dev/rendered-from: spec.tags.default") || !strings.Contains(b, "istio.io/rev: 1-30") {
			t.Errorf("%s is not the default tag of spec.tags.default 1-30:\n%s", f, b)
		}
		// Its own digest differs with its rendered-from; the rest is the same.
		if got, want := strings.Replace(string(state.WithoutDigest([]byte(b))), "spec.tags.default", "spec.activeRevision", 1), string(state.WithoutDigest(files[f])); got != want {
			t.Errorf("%s from spec.tags.default differs from the one rendered from activeRevision 1-30 by more than its rendered-from:\n%s", f, treetest.Diff(map[string][]byte{f: []byte(got)}, map[string][]byte{f: []byte(want)}))
		}
	}
	buildtest.BuildAll(t, dir)
}

// TestPointersInOutputRefused: objects istioctl renders for
// values.revisionTags and values.defaultRevision that the config does not
// render itself (or renders for another revision) refuse the run, saying
// which line to write; nothing is written. Those the config renders alike
// are dropped, and the warning says which field renders them.
func TestPointersInOutputRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, fixture string
		active        string
		tags          string
		want          []string
	}{
		{"a tag spec.tags does not have", "1-31/tags.yaml", "1-31", "",
			[]string{`1-31/istioctl-output.yaml: MutatingWebhookConfiguration istio-revision-tag-prod-stable renders tag "prod-stable" for revision "1-31"`, "add `prod-stable: 1-31` under spec.tags"}},
		{"a tag spec.tags points elsewhere", "1-31/tags.yaml", "1-30", "    prod-stable: 1-30\n",
			[]string{`points tag "prod-stable" at revision "1-31" (values.revisionTags in its IstioOperator), but spec.tags["prod-stable"] is "1-30"`}},
		{"the default tag of a revision that is not active", "1-31/tag-default.yaml", "1-30", "",
			[]string{`points the default tag at revision "1-31"`, "add `default: 1-31` under spec.tags"}},
		{"the default revision of a revision that is not active", "1-31/default-revision.yaml", "1-30", "",
			[]string{`ValidatingWebhookConfiguration istiod-default-validator makes revision "1-31" the default revision`, "set spec.activeRevision: 1-31"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := setup(t, goldenCase{name: "bootstrap", sources: map[string]string{"1-30": "1-30/default.yaml"}})
			run(t, dir)
			cfg := strings.Replace(storyConfig([]string{"1-30", "1-31"}, c.active, nil), "  tags:\n", "  tags:\n"+c.tags, 1)
			treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg))
			treetest.CopyFile(t, filepath.Join(fixtures, c.fixture), filepath.Join(dir, "1-31/istioctl-output.yaml"))
			runFails(t, dir, c.want...)
		})
	}
	// Agreeing with the config, they are dropped, the warning naming the
	// field that renders them.
	dir := t.TempDir()
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(storyConfig([]string{"1-31"}, "1-31", nil)))
	treetest.CopyFile(t, filepath.Join(fixtures, "1-31/tag-default.yaml"), filepath.Join(dir, "1-31/istioctl-output.yaml"))
	warnings := strings.Join(messages(run(t, dir), framework.Warning), "\n")
	if n := strings.Count(warnings, `gives way to the object rendered from spec.activeRevision ("1-31"), which the default tag follows while spec.tags has none`); n != 2 {
		t.Errorf("want 2 warnings for the default tag's webhook and Service, got:\n%s", warnings)
	}
}

// TestRetireRefusedWhileNamespacesSelect: a revision that Namespaces of the
// input still select, by name or through a tag that pointed at it, is not
// retired; nothing is written.
func TestRetireRefusedWhileNamespacesSelect(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ label, want string }{
		{"1-30", `Namespace "payments" still selects revision "1-30" (label istio.io/rev=1-30)`},
		{"prod-old", `Namespace "payments" still selects revision "1-30" through tag "prod-old"`},
	} {
		t.Run(c.label, func(t *testing.T) {
			dir := t.TempDir()
			treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(storyConfig([]string{"1-30", "1-31"}, "1-30",
				map[string]string{"prod-stable": "1-30", "prod-canary": "1-31"})))
			cfg := strings.Replace(storyConfig([]string{"1-30", "1-31"}, "1-30", nil), "  tags:\n", "  tags:\n    prod-old: 1-30\n", 1)
			treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg))
			treetest.CopyFile(t, filepath.Join(fixtures, "1-30/default.yaml"), filepath.Join(dir, "1-30/istioctl-output.yaml"))
			treetest.CopyFile(t, filepath.Join(fixtures, "1-31/default.yaml"), filepath.Join(dir, "1-31/istioctl-output.yaml"))
			run(t, dir)
			treetest.Write(t, filepath.Join(dir, "namespaces", "payments.yaml"), []byte(
				"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n  labels:\n    istio.io/rev: "+c.label+"\n"))
			treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(storyConfig([]string{"1-31"}, "1-31", nil)))
			runFails(t, dir, c.want, "namespaces/payments.yaml")
		})
	}
}

// TestRetireReportsEachFile: every deleted file of the retired revision is
// reported, its user files included.
func TestRetireReportsEachFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(golden("add-1-31"), "want"), dir)
	before := treetest.Files(t, dir)
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(storyConfig([]string{"1-31"}, "1-31", nil)))
	results := run(t, dir)
	deleted := map[string]bool{}
	for _, r := range results {
		if strings.HasPrefix(r.Message, "deleted:") {
			deleted[r.File.Path] = true
		}
	}
	n := 0
	for name := range before {
		if strings.HasPrefix(name, "1-30/") {
			n++
			if !deleted[name] {
				t.Errorf("%s deleted without a report", name)
			}
		}
	}
	if n < 20 || len(deleted) != n {
		t.Errorf("%d files in 1-30/, %d reported deleted", n, len(deleted))
	}
	for name := range treetest.Files(t, dir) {
		if strings.HasPrefix(name, "1-30/") {
			t.Errorf("%s survived", name)
		}
	}
	buildtest.BuildAll(t, dir)
}

// TestVersionSkewWarning: Istio upgrades across at most two minors.
func TestVersionSkewWarning(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		old  string
		warn bool
	}{{"1.28.4", true}, {"1.29.0", false}} {
		t.Run(c.old, func(t *testing.T) {
			dir := t.TempDir()
			cfg := strings.Replace(storyConfig([]string{"1-30", "1-31"}, "1-30", nil), "  - name: 1-30\n", "  - name: 1-30\n    version: "+c.old+"\n", 1)
			treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg))
			treetest.CopyFile(t, filepath.Join(fixtures, "1-30/default.yaml"), filepath.Join(dir, "1-30/istioctl-output.yaml"))
			treetest.CopyFile(t, filepath.Join(fixtures, "1-31/default.yaml"), filepath.Join(dir, "1-31/istioctl-output.yaml"))
			warnings := strings.Join(messages(run(t, dir), framework.Warning), "\n")
			got := strings.Contains(warnings, `revision "1-31" (Istio 1.31.0) is 3 minor versions ahead of the active revision "1-30" (Istio `+c.old+`)`)
			if got != c.warn {
				t.Errorf("warned %v, want %v:\n%s", got, c.warn, warnings)
			}
		})
	}
}

// TestGatewayLayoutWarnings: a layout change the run cannot make without
// fresh output, and a stable Service lost to a live switch, are warned of.
func TestGatewayLayoutWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := storyConfig([]string{"1-30", "1-31"}, "1-30", nil)
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg))
	// 1-30 has an egress gateway (demo profile), 1-31 none (default).
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/demo.yaml"), filepath.Join(dir, "1-30/istioctl-output.yaml"))
	treetest.CopyFile(t, filepath.Join(fixtures, "1-31/default.yaml"), filepath.Join(dir, "1-31/istioctl-output.yaml"))
	run(t, dir)
	if _, ok := treetest.Files(t, dir)["common/service/istio-egressgateway.yaml"]; !ok {
		t.Fatal("no stable egress Service while 1-30 is live")
	}
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(strings.Replace(cfg, "    live: 1-30\n", "    live: 1-31\n", 1)))
	warnings := strings.Join(messages(run(t, dir), framework.Warning), "\n")
	if !strings.Contains(warnings, `common/service/istio-egressgateway.yaml: stable Service deleted: the live revision "1-31" has no such gateway`) {
		t.Errorf("no warning for the lost stable Service:\n%s", warnings)
	}

	off := strings.Replace(cfg, "    stableServices: true\n", "    perRevision: false\n", 1)
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(off))
	for i := range 2 {
		// Every run says so, until the revisions are generated again.
		warnings = strings.Join(messages(run(t, dir), framework.Warning), "\n")
		for _, rev := range []string{"1-30", "1-31"} {
			if want := `spec.gateways.perRevision is false, but revision "` + rev + `" was generated with true: the change takes effect when it is generated again`; !strings.Contains(warnings, want) {
				t.Errorf("run %d: no warning for the layout change of %s:\n%s", i+1, rev, warnings)
			}
		}
	}
	guardsOff := strings.Replace(cfg, "  gateways:\n", "  webhooks: {driftGuards: false}\n  gateways:\n", 1)
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(guardsOff))
	warnings = strings.Join(messages(run(t, dir), framework.Warning), "\n")
	if !strings.Contains(warnings, `spec.webhooks.driftGuards is false, but revision "1-30" was generated with true`) {
		t.Errorf("no warning for the drift guards change:\n%s", warnings)
	}
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/demo.yaml"), filepath.Join(dir, "1-30/istioctl-output.yaml"))
	warnings = strings.Join(messages(run(t, dir), framework.Warning), "\n")
	if strings.Contains(warnings, `revision "1-30" was generated with`) {
		t.Errorf("regenerated, 1-30 still warned of:\n%s", warnings)
	}
}

// TestDefaultTagWarning: a default tag that disagrees with the active
// revision wins in istiod; the run says so.
func TestDefaultTagWarning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := strings.Replace(storyConfig([]string{"1-30", "1-31"}, "1-30", nil), "  tags:\n", "  tags:\n    default: 1-31\n", 1)
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg))
	treetest.CopyFile(t, filepath.Join(fixtures, "1-30/default.yaml"), filepath.Join(dir, "1-30/istioctl-output.yaml"))
	treetest.CopyFile(t, filepath.Join(fixtures, "1-31/default.yaml"), filepath.Join(dir, "1-31/istioctl-output.yaml"))
	warnings := strings.Join(messages(run(t, dir), framework.Warning), "\n")
	if !strings.Contains(warnings, `spec.tags["default"] points at "1-31" but spec.activeRevision is "1-30"`) {
		t.Errorf("no warning:\n%s", warnings)
	}
	if _, ok := treetest.Files(t, dir)["common/mutatingwebhookconfiguration/istio-revision-tag-default.yaml"]; !ok {
		t.Error("default tag not rendered")
	}
	buildtest.BuildAll(t, dir)
}

// TestKustomizationHandEdits: a kustomization.yaml the run owns, edited by
// hand, is written again with a warning that names what was dropped.
func TestKustomizationHandEdits(t *testing.T) {
	t.Parallel()
	dir := setup(t, goldenCase{name: "bootstrap", sources: map[string]string{"1-30": "1-30/default.yaml"}})
	run(t, dir)
	want := treetest.Files(t, dir)["1-30/kustomization.yaml"]
	treetest.Write(t, filepath.Join(dir, "1-30", "extra", "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"))
	run(t, dir)
	want = treetest.Files(t, dir)["1-30/kustomization.yaml"]
	treetest.Write(t, filepath.Join(dir, "1-30", "kustomization.yaml"), append([]byte("namePrefix: x-\n"), bytes.Replace(want, []byte("resources:\n"), []byte("resources:\n- extra\n"), 1)...))
	warnings := strings.Join(messages(run(t, dir), framework.Warning), "\n")
	if !strings.Contains(warnings, `1-30/kustomization.yaml: replaced a kustomization.yaml edited by hand: fields ["namePrefix"] and resources ["extra"] dropped`) {
		t.Errorf("no warning naming what was dropped:\n%s", warnings)
	}
	if got := treetest.Files(t, dir)["1-30/kustomization.yaml"]; !bytes.Equal(got, want) {
		t.Errorf("1-30/kustomization.yaml was not written again:\n%s", got)
	}
}

// TestRootKustomizationHandEdits: the root's kustomization.yaml is the
// run's like a folder's: patches, remote bases and bases outside the tree
// added by hand are named as they are dropped; one left with Git conflict
// markers is said so, with what either side added, and written whole.
func TestRootKustomizationHandEdits(t *testing.T) {
	t.Parallel()
	dir := setup(t, goldenCase{name: "bootstrap", sources: map[string]string{"1-30": "1-30/default.yaml"}})
	run(t, dir)
	want := treetest.Files(t, dir)["kustomization.yaml"]
	edited := strings.Replace(string(want), "resources:\n", "resources:\n- ../base\n- https://github.com/example/mesh//extras?ref=v1\n- 1-29\n", 1) +
		"patches:\n- path: hpa.yaml\n"
	treetest.Write(t, filepath.Join(dir, "kustomization.yaml"), []byte(edited))
	warnings := strings.Join(messages(run(t, dir), framework.Warning), "\n")
	// 1-29 names nothing in the tree: the run's own, gone with its folder.
	if !strings.Contains(warnings, `kustomization.yaml: replaced a kustomization.yaml edited by hand: fields ["patches"] and resources ["../base" "https://github.com/example/mesh//extras?ref=v1"] dropped`) {
		t.Errorf("no warning naming what was dropped from the root's kustomization:\n%s", warnings)
	}
	if got := treetest.Files(t, dir)["kustomization.yaml"]; !bytes.Equal(got, want) {
		t.Errorf("kustomization.yaml was not written again:\n%s", got)
	}

	for _, file := range []string{"kustomization.yaml", "1-30/kustomization.yaml"} {
		before := string(treetest.Files(t, dir)[file])
		ours := strings.Replace(before, "resources:\n", "resources:\n- https://example.com/team-a.yaml\n", 1)
		theirs := "namePrefix: b-\n" + before
		conflicted := "<<<<<<< HEAD\n" + ours + "||||||| base\n" + before + "=======\n" + theirs + ">>>>>>> team-b\n"
		treetest.Write(t, filepath.Join(dir, filepath.FromSlash(file)), []byte(conflicted))
		warnings = strings.Join(messages(run(t, dir), framework.Warning), "\n")
		if !strings.Contains(warnings, file+`: replaced a kustomization.yaml left with Git conflict markers (line 1): the run owns this file and writes it whole, which resolves the conflict; dropped what a side of the merge added by hand: fields ["namePrefix"] and resources ["https://example.com/team-a.yaml"]`) {
			t.Errorf("%s: no warning of the conflict:\n%s", file, warnings)
		}
		if got := string(treetest.Files(t, dir)[file]); got != before {
			t.Errorf("%s was not written again:\n%s", file, got)
		}
		if warnings = strings.Join(messages(run(t, dir), framework.Warning), "\n"); warnings != "" {
			t.Errorf("%s: a second run warned:\n%s", file, warnings)
		}
	}
}

// TestLongNames: a 253-character name (the longest Kubernetes allows) and
// a kind of any length still get a file each, named by layout.Segment
// (the start of the name and a digest), and the tree builds.
func TestLongNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(minimalConfig))
	long := strings.Repeat("a", 120) + "." + strings.Repeat("b", 132)
	longer := strings.Repeat("c", 120) + "." + strings.Repeat("d", 132) // same start, another name
	kind := "Very" + strings.Repeat("Long", 80)
	output, err := os.ReadFile(filepath.Join(fixtures, "1-30/default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, filepath.Join(dir, "1-30", "istioctl-output.yaml"), append(output, []byte(
		"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+long+"\n  namespace: istio-system\n"+
			"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+longer+"\n  namespace: istio-system\n"+
			"---\napiVersion: example.com/v1\nkind: "+kind+"\nmetadata:\n  name: x\n")...))
	run(t, dir)
	files := treetest.Files(t, dir)
	var found []string
	for _, name := range treetest.Names(files) {
		for _, seg := range strings.Split(name, "/") {
			if len(seg) > 255 {
				t.Errorf("%s: segment of %d bytes", name, len(seg))
			}
		}
		if strings.Contains(name, "aaaa") || strings.Contains(name, "cccc") || strings.Contains(name, "verylong") {
			found = append(found, name)
		}
	}
	if len(found) != 3 {
		t.Fatalf("files for the long names: %q, want 3", found)
	}
	for _, f := range found {
		if !regexp.MustCompile(`-[0-9a-f]{16}(\.yaml)?$`).MatchString(strings.Split(f, "/")[len(strings.Split(f, "/"))-1]) &&
			!regexp.MustCompile(`/[a-z]+-[0-9a-f]{16}/`).MatchString(f) {
			t.Errorf("%s does not end in a digest", f)
		}
	}
	run(t, dir)
	if d := treetest.Diff(treetest.Files(t, dir), files); d != "" {
		t.Errorf("second run changed the tree:\n%s", d)
	}
	buildtest.BuildAll(t, dir)
}
