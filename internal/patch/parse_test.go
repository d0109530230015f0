package patch

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// smallDiff modifies generated/configmap/x.yaml of a revision.
const smallDiff = `diff --git a/generated/configmap/x.yaml b/generated/configmap/x.yaml
index 1111111..2222222 100644
--- a/generated/configmap/x.yaml
+++ b/generated/configmap/x.yaml
@@ -1,4 +1,4 @@
 apiVersion: v1
 data:
-  a: "1"
+  a: "2"
 kind: ConfigMap
`

const smallFile = `apiVersion: v1
data:
  a: "1"
kind: ConfigMap
metadata:
  name: x
  namespace: istio-system
`

// gitPatchYAML is a GitPatch object whose spec.diff is diff, as a literal
// block (or what yaml writes for it).
func gitPatchYAML(t *testing.T, name, diff string) *yaml.RNode {
	t.Helper()
	n, err := newGitPatch(name, diff)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParse(t *testing.T) {
	p := mustParse(t, gitPatchYAML(t, "fix", smallDiff))
	if p.Name != "fix" || p.Diff != smallDiff || p.Revision != "" || len(p.Files) != 1 || p.Files[0].NewName != "generated/configmap/x.yaml" {
		t.Errorf("parsed %+v", p)
	}
	if p.Digest != Digest(smallDiff) {
		t.Errorf("digest %s", p.Digest)
	}

	// The same patch written with |- (no final line break) or CRLF line
	// breaks is the same patch, with the same digest.
	for _, d := range []string{strings.TrimSuffix(smallDiff, "\n"), strings.ReplaceAll(smallDiff, "\n", "\r\n")} {
		q := mustParse(t, gitPatchYAML(t, "fix", d))
		if q.Digest != p.Digest {
			t.Errorf("digest of %q is %s, want %s", d, q.Digest, p.Digest)
		}
		changes, err := q.Apply("1-31", map[string][]byte{"1-31/generated/configmap/x.yaml": []byte(smallFile)})
		if err != nil || !strings.Contains(string(changes[0].Content), `a: "2"`) {
			t.Errorf("%q must apply: %v", d, err)
		}
	}
	if Digest(smallDiff) == Digest(strings.Replace(smallDiff, `"2"`, `"3"`, 1)) {
		t.Error("a changed diff must have another digest")
	}
}

func TestParseErrors(t *testing.T) {
	const header = "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: GitPatch\nmetadata:\n  name: fix\n  annotations:\n    config.kubernetes.io/path: 1-31/patches/fix.yaml\n    config.kubernetes.io/local-config: \"true\"\n"
	withDiff := func(d string) string {
		n := gitPatchYAML(t, "fix", d)
		if err := n.PipeE(yaml.SetAnnotation("config.kubernetes.io/path", "1-31/patches/fix.yaml")); err != nil {
			t.Fatal(err)
		}
		return n.MustString()
	}
	for _, tc := range []struct {
		name, object, want string
	}{
		{"kind", strings.Replace(header, "GitPatch", "Patch", 1) + "spec:\n  diff: x\n", `kind: "Patch" must be "GitPatch"`},
		{"apiVersion", strings.Replace(header, "fn.istio-gitops.dev/v1alpha1", "v1", 1) + "spec:\n  diff: x\n", `apiVersion: "v1" must be "fn.istio-gitops.dev/v1alpha1"`},
		{"unknown field", header + "data: {}\nspec:\n  diff: x\n", `data: unknown field`},
		{"unknown spec field", header + "spec:\n  diff: x\n  strip: 1\n", `spec.strip: unknown field: is it misspelled, or in the wrong place?`},
		{"unknown metadata field", strings.Replace(header, "metadata:\n", "metadata:\n  nmae: fix\n", 1) + "spec:\n  diff: x\n", `metadata.nmae: unknown field`},
		{"every unknown field", header + "data: {}\nspec:\n  diff: x\n  strip: 1\n", `data: unknown field: is it misspelled, or in the wrong place?; spec.strip: unknown field`},
		{"key twice", header + "spec:\n  diff: x\n  diff: y\n", `spec.diff: must be set once, not on lines 9 and 10`},
		{"labels not a map", strings.Replace(header, "metadata:\n", "metadata:\n  labels: [a]\n", 1) + "spec:\n  diff: x\n", `metadata.labels (line 4): must be a map of strings, not a list`},
		{"no spec", header, "spec: must be a mapping holding diff"},
		{"not local-config", strings.Replace(header, `local-config: "true"`, `local-config: "false"`, 1) + "spec:\n  diff: x\n",
			`metadata.annotations: must set config.kubernetes.io/local-config: "true"`},
		{"no diff", header + "spec: {}\n", "spec.diff: must be a string holding the text of a git diff"},
		{"diff not a string", header + "spec:\n  diff: 3\n", "spec.diff: must be a string"},
		{"bad name", strings.Replace(header, "name: fix", "name: Fix_It", 1) + "spec:\n  diff: x\n", `metadata.name: "Fix_It" must be a DNS-1123 subdomain`},
		{"empty diff", header + "spec:\n  diff: \"\"\n", "spec.diff: must hold the text of a git diff, it is empty"},
		{"not a diff", withDiff("hello\n"), `spec.diff: must change at least one file: no "diff --git" section found`},
		{"traditional diff", withDiff("--- a/generated/x\n+++ b/generated/x\n@@ -1 +1 @@\n-a\n+b\n"),
			`spec.diff: must be made by git diff or git format-patch: every file must start with a "diff --git" line`},
		{"broken hunk", withDiff(strings.Replace(smallDiff, "@@ -1,4 +1,4 @@", "@@ -1,9 +1,4 @@", 1)), "spec.diff: must be a git diff: gitdiff: line"},
		{"binary", withDiff("diff --git a/generated/x.bin b/generated/x.bin\nindex 1111111..2222222 100644\nBinary files a/generated/x.bin and b/generated/x.bin differ\n"),
			`spec.diff: file "generated/x.bin": must not be binary: a patch may only modify existing generated files`},
		{"new file", withDiff("diff --git a/generated/x b/generated/x\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/generated/x\n@@ -0,0 +1 @@\n+a\n"),
			`file "generated/x": must not be created: a patch may only modify existing generated files`},
		{"deleted file", withDiff("diff --git a/generated/x b/generated/x\ndeleted file mode 100644\nindex 1111111..0000000\n--- a/generated/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n"),
			`file "generated/x": must not be deleted`},
		{"rename", withDiff("diff --git a/generated/x b/generated/y\nsimilarity index 100%\nrename from generated/x\nrename to generated/y\n"),
			`file "generated/y": must not be renamed (from "generated/x")`},
		{"mode", withDiff("diff --git a/generated/x b/generated/x\nold mode 100644\nnew mode 100755\n"), `file "generated/x": must not change mode (100644 to 100755)`},
		{"no context", withDiff("diff --git a/generated/x b/generated/x\n--- a/generated/x\n+++ b/generated/x\n@@ -5 +5 @@\n-a\n+b\n"),
			`file "generated/x": hunk "@@ -5 +5 @@" must have context lines: make the diff with git's default context (not -U0)`},
		{"twice", withDiff(smallDiff + smallDiff), `file "generated/configmap/x.yaml": must be changed once`},
		{"no prefix", withDiff(strings.NewReplacer("a/generated", "generated", "b/generated", "generated").Replace(smallDiff)),
			"must carry git's a/ and b/ prefixes; a diff made with --no-prefix"},
		{"dot dot", withDiff(strings.ReplaceAll(smallDiff, "/configmap/", "/../../configmap/")), `file "generated/../../configmap/x.yaml": must not contain ".."`},
		{"dot", withDiff(strings.ReplaceAll(smallDiff, "/configmap/", "/./configmap/")), `file "generated/./configmap/x.yaml": must be a clean path`},
		{"absolute", withDiff(strings.NewReplacer("a/generated", "/generated", "b/generated", "/generated").Replace(smallDiff)), "must name relative paths inside the tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := yaml.Parse(tc.object)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(n)
			t.Log(err)
			mustContain(t, err, `GitPatch "`, tc.want)
			if err != nil && tc.name != "bad name" && !strings.HasPrefix(err.Error(), `GitPatch "fix" (1-31/patches/fix.yaml): `) {
				t.Errorf("error must name the patch and its file: %v", err)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		diffPath, revDir, want, err string
	}{
		{"generated/configmap/x.yaml", "1-31", "1-31/generated/configmap/x.yaml", ""},
		{"1-31/generated/configmap/x.yaml", "1-31", "1-31/generated/configmap/x.yaml", ""},
		{"generated/configmap/other-ns/x.yaml", "1-31", "1-31/generated/configmap/other-ns/x.yaml", ""},
		{"1-30/generated/configmap/x.yaml", "1-31", "", `file "1-30/generated/configmap/x.yaml" must target a file under 1-31/generated/`},
		{"common/configmap/x.yaml", "1-31", "", `file "common/configmap/x.yaml" is in common/, which every run writes again`},
		{"flux/common.yaml", "1-31", "", `file "flux/common.yaml" is rendered from the config (spec.flux), and every run renders it again: change spec.flux instead`},
		{"generated/ingress/public-1-31.yaml", "1-31", "", `file "generated/ingress/public-1-31.yaml" is rendered from the config (spec.gateways.ingress, or an entry of spec.gateways.ingresses)`},
		{"1-31/generated/ingress/public-1-31.yaml", "1-31", "", `change that entry (its template, liveOnlyAnnotations, perRevision or hosts) instead`},
		{"argocd/1-31.yaml", "1-31", "", `file "argocd/1-31.yaml" is rendered from the config (spec.argocd), and every run renders it again: change spec.argocd instead`},
		{"istio-operator.yaml", "1-31", "", `file "istio-operator.yaml" must target a file under 1-31/generated/`},
		{"1-31/patches/x.yaml", "1-31", "", `file "1-31/patches/x.yaml" must target a file under 1-31/generated/`},
		{"generated", "1-31", "", `file "generated" must target a file under 1-31/generated/`},
		{"generated/configmap/x.yaml", "../1-31", "", `revision folder "../1-31": must not contain ".."`},
	} {
		d := strings.ReplaceAll(smallDiff, "generated/configmap/x.yaml", tc.diffPath)
		p := mustParse(t, gitPatchYAML(t, "fix", d))
		got, err := p.Targets(tc.revDir)
		if tc.err != "" {
			mustContain(t, err, `GitPatch "fix"`, tc.err)
			continue
		}
		if err != nil || len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s in %s: %q, %v; want %q", tc.diffPath, tc.revDir, got, err, tc.want)
		}
	}

	// Two spellings of one file are one file changed twice.
	twice := smallDiff + strings.ReplaceAll(smallDiff, "generated/configmap/x.yaml", "1-31/generated/configmap/x.yaml")
	_, err := mustParse(t, gitPatchYAML(t, "fix", twice)).Targets("1-31")
	mustContain(t, err, `file "1-31/generated/configmap/x.yaml" must be changed once`)
}
