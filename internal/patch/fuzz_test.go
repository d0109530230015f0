package patch

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fuzztest"
)

// fuzzRevisions are the revision folders each fuzzed patch is applied in.
var fuzzRevisions = []string{"1-31", "1-30"}

// decoys are files a patch must never change, whatever its paths say:
// outside the revision's generated files, or another revision's.
var decoys = []string{
	"x.yaml",
	"istio-gitops.yaml",
	"common/configmap/x.yaml",
	"1-31/x.yaml",
	"1-31/patches/x.yaml",
	"1-31/generated.yaml",
	"1-30/generated/configmap/x.yaml",
	"1-31/generated/configmap/x.yaml",
	"generated/configmap/x.yaml",
}

// FuzzGitPatch: any diff text parses, resolves, imports and applies to a
// small tree, or fails, without a panic or a hang; an applied patch
// changes exactly its targets, all under the revision's generated/, and
// nothing else.
func FuzzGitPatch(f *testing.F) {
	rootRelative := strings.ReplaceAll(smallDiff, " a/generated/", " a/1-31/generated/")
	rootRelative = strings.ReplaceAll(rootRelative, " b/generated/", " b/1-31/generated/")
	twoHunks := smallDiff + "@@ -5,3 +5,3 @@ kind: ConfigMap\n metadata:\n-  name: x\n+  name: y\n   namespace: istio-system\n"
	seeds := []struct{ diff, file string }{
		{smallDiff, smallFile},
		{rootRelative, smallFile},
		{twoHunks, smallFile},
		{strings.ReplaceAll(smallDiff, "\n", "\r\n"), smallFile},
		{strings.TrimSuffix(smallDiff, "\n"), strings.Replace(smallFile, "apiVersion: v1\n", "# moved\napiVersion: v1\n", 1)},
		{strings.Replace(smallDiff, `+  a: "2"`, `+  a: "2"`+"\n+---\n+kind: Other", 1), smallFile},
		{strings.Replace(smallDiff, `+  a: "2"`, "+  a: *x", 1), smallFile},
		{smallDiff, `a: "1"`},
		{smallDiff + strings.ReplaceAll(smallDiff, "configmap/x.yaml", "configmap/y.yaml"), smallFile},
		{strings.ReplaceAll(smallDiff, "/configmap/", "/../../configmap/"), smallFile},
		{strings.ReplaceAll(smallDiff, "generated/configmap/x.yaml", "generated"), smallFile},
		{strings.ReplaceAll(smallDiff, "generated/configmap/x.yaml", "1-31/generated/../../x.yaml"), smallFile},
		{strings.ReplaceAll(smallDiff, "generated/configmap/x.yaml", "1-30/generated/configmap/x.yaml"), smallFile},
		{strings.NewReplacer("a/generated", "generated", "b/generated", "generated").Replace(smallDiff), smallFile},
		{"diff --git a/generated/x b/generated/y\nsimilarity index 100%\nrename from generated/x\nrename to generated/y\n", smallFile},
		{"diff --git a/generated/x b/generated/x\n--- a/generated/x\n+++ b/generated/x\n@@ -5 +5 @@\n-a\n+b\n", smallFile},
		{"From 1111111 Mon Sep 17 00:00:00 2001\nFrom: A <a@example.com>\nSubject: [PATCH] fix\n\n---\n" + smallDiff + "-- \n2.43.0\n\n", smallFile},
		{"", ""},
	}
	for _, name := range []string{"failure-validatingwebhookconfiguration", "namespaceselector-mutatingwebhookconfiguration", "sidecar-injector-template"} {
		if b, err := os.ReadFile(path.Join(golden, "1-30", name+".patch")); err == nil {
			seeds = append(seeds, struct{ diff, file string }{string(b), smallFile})
		}
	}
	for _, s := range seeds {
		f.Add(s.diff, []byte(s.file))
	}
	f.Fuzz(func(t *testing.T, diff string, file []byte) {
		fuzztest.Run(t, fuzztest.Limit, nil, func() error {
			return checkPatch(diff, file)
		})
	})
}

func checkPatch(diff string, file []byte) error {
	// Whatever its text, a patched file is checked as a file.
	if _, err := CheckSameObject("1-31/generated/configmap/x.yaml", file, []byte(diff)); err != nil {
		_ = err.Error()
	}
	for _, rev := range fuzzRevisions {
		if err := checkImport(diff, rev); err != nil {
			return err
		}
	}
	node, err := newGitPatch("fuzz", diff)
	if err != nil {
		return nil
	}
	if err := node.PipeE(yaml.SetAnnotation(kioutil.PathAnnotation, "1-31/patches/fuzz.yaml")); err != nil {
		return err
	}
	p, err := Parse(node)
	if err != nil {
		_ = err.Error()
		return nil
	}
	if p.Revision != "1-31" || p.Digest != Digest(diff) || len(p.Files) == 0 {
		return fmt.Errorf("parsed %q as revision %q, digest %s, %d files", diff, p.Revision, p.Digest, len(p.Files))
	}
	for _, rev := range fuzzRevisions {
		if err := checkApply(p, rev, file); err != nil {
			return err
		}
	}
	return nil
}

// checkImport: an imported patch is one Parse and Targets accept, and
// importing its diff again changes nothing.
func checkImport(diff, rev string) error {
	node, err := Import(strings.NewReader(diff), rev, "")
	if err != nil {
		_ = err.Error()
		return nil
	}
	p, err := Parse(node)
	if err != nil {
		return fmt.Errorf("Import(%q, %s) gives a patch Parse refuses: %v", diff, rev, err)
	}
	if _, err := p.Targets(rev); err != nil {
		return fmt.Errorf("Import(%q, %s) gives a patch whose targets are refused: %v", diff, rev, err)
	}
	again, err := Import(strings.NewReader(p.Diff), rev, p.Name)
	if err != nil {
		return fmt.Errorf("Import(%q, %s) gives a diff that does not import again: %v", diff, rev, err)
	}
	if q, err := Parse(again); err != nil || q.Diff != p.Diff {
		return fmt.Errorf("Import(%q, %s) is not stable: %q, then %q (%v)", diff, rev, p.Diff, q.Diff, err)
	}
	if _, err := node.String(); err != nil {
		return fmt.Errorf("Import(%q, %s) gives an object that is not YAML: %v", diff, rev, err)
	}
	return nil
}

func checkApply(p *Patch, rev string, file []byte) error {
	targets, terr := p.Targets(rev)
	files := map[string][]byte{}
	for _, d := range decoys {
		files[d] = file
	}
	for _, t := range targets {
		files[t] = file
	}
	before := maps.Clone(files)
	changes, err := p.Apply(rev, files)
	if !reflect.DeepEqual(files, before) {
		return fmt.Errorf("Apply changed the map it was given")
	}
	if err != nil {
		_ = err.Error()
		return nil
	}
	if terr != nil {
		return fmt.Errorf("Apply in %s succeeds where Targets fails: %v", rev, terr)
	}
	var paths []string
	for _, c := range changes {
		paths = append(paths, c.Path)
		if !strings.HasPrefix(c.Path, rev+"/generated/") || path.Clean(c.Path) != c.Path || disk.CheckPath(c.Path) != nil {
			return fmt.Errorf("Apply in %s writes %q: outside %s/generated/", rev, c.Path, rev)
		}
		if _, err := CheckSameObject(c.Path, files[c.Path], c.Content); err != nil {
			_ = err.Error()
		}
	}
	if !slices.Equal(paths, targets) {
		return fmt.Errorf("Apply in %s changes %q, its targets are %q", rev, paths, targets)
	}
	again, err := p.Apply(rev, files)
	if err != nil || len(again) != len(changes) {
		return fmt.Errorf("Apply in %s succeeds, then fails: %v", rev, err)
	}
	for i := range again {
		if again[i].Path != changes[i].Path || !bytes.Equal(again[i].Content, changes[i].Content) {
			return fmt.Errorf("Apply in %s gives two results for %s", rev, changes[i].Path)
		}
	}
	return nil
}

// FuzzGitPatchObject: any YAML read from a revision's patches/ folder
// parses as a GitPatch or fails, without a panic or a hang.
func FuzzGitPatchObject(f *testing.F) {
	for _, name := range []string{"failure-validatingwebhookconfiguration", "namespaceselector-mutatingwebhookconfiguration", "sidecar-injector-template"} {
		if b, err := os.ReadFile(path.Join(golden, "1-30", name+".yaml")); err == nil {
			f.Add(b)
		}
	}
	const header = "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: GitPatch\nmetadata:\n  name: fix\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\n"
	for _, s := range []string{
		"spec:\n  diff: x\n",
		"spec:\n  diff: 3\n",
		"spec:\n  diff: [a]\n",
		"spec: [a]\n",
		"spec:\n  diff: !!binary aGVsbG8=\n",
		"spec:\n  diff: &d x\n  other: *d\n",
		"data: {}\nspec:\n  diff: x\n",
		"spec:\n  diff: |\n" + indent(smallDiff),
		"spec:\n  diff: |-\n" + indent(smallDiff),
		"---\n" + header + "spec: {}\n",
	} {
		f.Add([]byte(header + s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzztest.Run(t, fuzztest.Limit, nil, func() error {
			// The decoder's own errors (not YAML, not a mapping) are not
			// Parse's.
			var failed error
			_ = disk.Decode(bytes.NewReader(b), "1-31/patches/fuzz.yaml", func(n *yaml.RNode) error {
				p, err := Parse(n)
				if err != nil {
					_ = err.Error()
					return nil
				}
				for _, rev := range fuzzRevisions {
					if failed = checkApply(p, rev, []byte(smallFile)); failed != nil {
						return failed
					}
				}
				return nil
			})
			return failed
		})
	})
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
}
