package treetest

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	k8syaml "sigs.k8s.io/yaml"
)

// PatchEdit is a platform engineer's text edit of one generated file, one
// of testdata/patch/edits.yaml. REV in File, Old and New stands for the
// revision.
type PatchEdit struct {
	// Name is the GitPatch's name and its golden files'.
	Name string `json:"name"`
	// File is the path under <rev>/generated/.
	File string `json:"file"`
	Old  string `json:"old"`
	New  string `json:"new"`
	// Count is how often Old occurs in the file.
	Count int `json:"count"`
}

// PatchEdits are the article's patches (testdata/patch/edits.yaml), in
// the file's order. The file is the tests' own data: a broken one panics.
func PatchEdits() []PatchEdit {
	_, self, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "testdata", "patch", "edits.yaml"))
	if err != nil {
		panic(err)
	}
	var out []PatchEdit
	if err := k8syaml.UnmarshalStrict(b, &out); err != nil {
		panic("testdata/patch/edits.yaml: " + err.Error())
	}
	return out
}

// PatchEditNamed is the edit of that name.
func PatchEditNamed(name string) PatchEdit {
	for _, e := range PatchEdits() {
		if e.Name == name {
			return e
		}
	}
	panic("testdata/patch/edits.yaml has no edit " + name)
}

// Generated is the edited file's path under rev's generated/ folder.
func (e PatchEdit) Generated(rev string) string {
	return strings.ReplaceAll(e.File, "REV", rev)
}

// Target is the edited file's tree path for rev.
func (e PatchEdit) Target(rev string) string {
	return rev + "/generated/" + e.Generated(rev)
}

// Apply makes the edit on b, the file's content for rev; it fails the test
// when the text to replace does not occur Count times.
func (e PatchEdit) Apply(t testing.TB, rev string, b []byte) []byte {
	t.Helper()
	old, new := strings.ReplaceAll(e.Old, "REV", rev), strings.ReplaceAll(e.New, "REV", rev)
	if n := strings.Count(string(b), old); n != e.Count {
		t.Fatalf("%s: %q occurs %d times, want %d", e.Target(rev), old, n, e.Count)
	}
	return []byte(strings.ReplaceAll(string(b), old, new))
}
