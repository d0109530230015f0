package patch

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// numbered is a file of n lines "line 1" ... "line n".
func numbered(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// hunkOn is a one-file diff of generated/x.txt.
func hunkOn(hunks ...string) string {
	return "diff --git a/generated/x.txt b/generated/x.txt\n--- a/generated/x.txt\n+++ b/generated/x.txt\n" + strings.Join(hunks, "")
}

const target = "1-31/generated/x.txt"

func applyTo(t *testing.T, diff, content string) (string, error) {
	t.Helper()
	p := mustParse(t, gitPatchYAML(t, "fix", diff))
	files := map[string][]byte{target: []byte(content)}
	changes, err := p.Apply("1-31", files)
	if string(files[target]) != content {
		t.Error("Apply must not change the files it is given")
	}
	if err != nil {
		return "", err
	}
	return string(changes[0].Content), nil
}

func TestApplyPlacement(t *testing.T) {
	// Replaces line 5, with three lines of context on each side.
	middle := hunkOn("@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n")
	// Replaces line 10, the last: no trailing context.
	last := hunkOn("@@ -7,4 +7,4 @@\n line 7\n line 8\n line 9\n-line 10\n+line ten\n")
	// Replaces line 1: the hunk starts the file.
	first := hunkOn("@@ -1,4 +1,4 @@\n-line 1\n+line one\n line 2\n line 3\n line 4\n")

	for _, tc := range []struct {
		name, diff, file, want, err string
	}{
		{"in place", middle, numbered(10), strings.Replace(numbered(10), "line 5\n", "line five\n", 1), ""},
		{"moved down", middle, "new\nnew\n" + numbered(10), "new\nnew\n" + strings.Replace(numbered(10), "line 5\n", "line five\n", 1), ""},
		{"moved up", middle, numbered(10)[len("line 1\n"):], strings.Replace(numbered(10)[len("line 1\n"):], "line 5\n", "line five\n", 1), ""},
		{"last line", last, numbered(10), strings.Replace(numbered(10), "line 10\n", "line ten\n", 1), ""},
		{"last line, moved", last, "new\n" + numbered(10), "new\n" + strings.Replace(numbered(10), "line 10\n", "line ten\n", 1), ""},
		{"last line no longer last", last, numbered(11), "",
			`hunk "@@ -7,4 +7,4 @@" does not apply: it has no trailing context, so it must end at the last line of the file (line 11), but it ends at line 10`},
		{"first line", first, numbered(10), strings.Replace(numbered(10), "line 1\n", "line one\n", 1), ""},
		{"first line no longer first", first, "new\n" + numbered(10), "", `hunk "@@ -1,4 +1,4 @@" does not apply: line 1 must read "line 1", but it reads "new"`},
		{"file too short", middle, numbered(6), "", `hunk "@@ -2,7 +2,7 @@" does not apply: it needs lines 2 to 8, but the file has 6 lines`},
		{"context changed", middle, strings.Replace(numbered(10), "line 7\n", "line seven\n", 1), "",
			`hunk "@@ -2,7 +2,7 @@" does not apply: line 7 must read "line 7", but it reads "line seven"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyTo(t, tc.diff, tc.file)
			if tc.err != "" {
				mustContain(t, err, `GitPatch "fix": file "1-31/generated/x.txt": `, tc.err)
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

func TestApplyHunks(t *testing.T) {
	two := hunkOn(
		"@@ -2,7 +2,8 @@\n line 2\n line 3\n line 4\n line 5\n+line 5.5\n line 6\n line 7\n line 8\n",
		"@@ -14,7 +15,7 @@\n line 14\n line 15\n line 16\n-line 17\n+line seventeen\n line 18\n line 19\n line 20\n",
	)
	want := strings.NewReplacer("line 5\n", "line 5\nline 5.5\n", "line 17\n", "line seventeen\n").Replace(numbered(30))
	if got, err := applyTo(t, two, numbered(30)); err != nil || got != want {
		t.Errorf("two hunks: %q, %v", got, err)
	}
	// Both hunks moved by the same lines: the second is looked for where
	// the first was found.
	if got, err := applyTo(t, two, "a\nb\nc\n"+numbered(30)); err != nil || got != "a\nb\nc\n"+want {
		t.Errorf("two moved hunks: %q, %v", got, err)
	}
	// The second hunk's context is gone: the error names it, not the first.
	_, err := applyTo(t, two, strings.Replace(numbered(30), "line 16\n", "line sixteen\n", 1))
	mustContain(t, err, `hunk "@@ -14,7 +15,7 @@" does not apply: line 16 must read "line 16", but it reads "line sixteen"`)

	overlap := hunkOn(
		"@@ -2,4 +2,4 @@\n line 2\n line 3\n-line 4\n+line four\n line 5\n",
		"@@ -4,3 +4,3 @@\n line 4\n-line 5\n+line five\n line 6\n",
	)
	_, err = applyTo(t, overlap, numbered(10))
	mustContain(t, err, `hunk "@@ -4,3 +4,3 @@" does not apply`)
}

// TestAlreadyApplied: a file that already carries the patch's change is a
// conflict flagged Applied; the fresh file takes the patch.
func TestAlreadyApplied(t *testing.T) {
	p := mustParse(t, gitPatchYAML(t, "fix", smallDiff))
	before := map[string][]byte{"1-31/generated/configmap/x.yaml": []byte(smallFile)}
	changes, err := p.Apply("1-31", before)
	if err != nil {
		t.Fatal(err)
	}
	after := map[string][]byte{changes[0].Path: changes[0].Content}
	_, err = p.Apply("1-31", map[string][]byte{})
	mustContain(t, err, `file "1-31/generated/configmap/x.yaml" must exist`)
	var ce *ConflictError
	if _, err := p.Apply("1-31", after); !errors.As(err, &ce) || !ce.Applied || ce.Line != 3 || ce.Expected != `  a: "1"` || ce.Found != `  a: "2"` {
		t.Errorf("applying twice: %#v", err)
	}
}

func TestCheckSameObject(t *testing.T) {
	const path = "1-31/generated/configmap/x.yaml"
	obj, err := CheckSameObject(path, []byte(smallFile), []byte(strings.Replace(smallFile, `"1"`, `"2"`, 1)))
	if err != nil || obj.GetDataMap()["a"] != "2" || obj.GetName() != "x" {
		t.Fatalf("%v %v", obj, err)
	}
	if len(obj.GetAnnotations()) != 0 {
		t.Errorf("the parsed object must carry no reader annotations: %v", obj.GetAnnotations())
	}
	for _, tc := range []struct{ name, after, want string }{
		{"renamed", strings.Replace(smallFile, "name: x", "name: y", 1), `file "1-31/generated/configmap/x.yaml": after the patch it must still hold v1 ConfigMap istio-system/x, it holds v1 ConfigMap istio-system/y`},
		{"moved", strings.Replace(smallFile, "namespace: istio-system", "namespace: default", 1), "it holds v1 ConfigMap default/x"},
		{"kind", strings.Replace(smallFile, "kind: ConfigMap", "kind: Secret", 1), "it holds v1 Secret istio-system/x"},
		{"apiVersion", strings.Replace(smallFile, "apiVersion: v1", "apiVersion: v2", 1), "it holds v2 ConfigMap istio-system/x"},
		{"two objects", smallFile + "---\n" + strings.Replace(smallFile, "name: x", "name: y", 1), "after the patch it must still hold exactly one object, it holds 2"},
		{"empty", "", "after the patch it must still hold exactly one object, it holds 0"},
		{"broken", smallFile + "  - [\n", `file "1-31/generated/configmap/x.yaml": after the patch it must still be valid YAML`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckSameObject(path, []byte(smallFile), []byte(tc.after))
			mustContain(t, err, tc.want)
		})
	}
	_, err = CheckSameObject(path, nil, []byte(smallFile))
	mustContain(t, err, "before the patch it must hold exactly one object")
}

func TestFileBytes(t *testing.T) {
	// The reader's annotations go, the user's stay; sequences are compact.
	in := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n    config.kubernetes.io/path: a.yaml\n" +
		"    config.kubernetes.io/index: '0'\n    internal.config.kubernetes.io/path: a.yaml\n    internal.config.kubernetes.io/id: '3'\n" +
		"    team: mesh\nlist:\n    - a\n    - b\n"
	node := readOne(t, []byte(in))
	got, err := FileBytes(node)
	if err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n    team: mesh\nlist:\n- a\n- b\n"
	if string(got) != want {
		t.Errorf("FileBytes:\n%s\nwant:\n%s", got, want)
	}
	if !bytes.Contains([]byte(node.MustString()), []byte("internal.config.kubernetes.io/id")) {
		t.Error("FileBytes must not change its argument")
	}
}
