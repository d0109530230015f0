package fileset_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// TestMentionsAcrossReads: a file on disk is read a chunk at a time
// (64 KiB); a word that straddles two reads, or ends the file, is found,
// and the digest is the whole file's, as it is of the same bytes in
// memory.
func TestMentionsAcrossReads(t *testing.T) {
	t.Parallel()
	const word = "IstioGitOps"
	for _, at := range []int{0, 64<<10 - 5, 64<<10 - len(word), 64 << 10, 2*64<<10 - 1, 300<<10 - len(word), -1} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			t.Parallel()
			data := bytes.Repeat([]byte("x"), 300<<10)
			if at >= 0 {
				copy(data[at:], word)
			}
			dir := t.TempDir()
			treetest.Write(t, filepath.Join(dir, "f.yaml"), data)
			tree, err := disk.Read(dir)
			if err != nil || len(tree.Files) != 1 {
				t.Fatalf("read: %v (%d files)", err, len(tree.Files))
			}
			onDisk, inMemory := fileset.FromDisk(tree.Files[0]), fileset.FromBytes("f.yaml", data, nil)
			for name, f := range map[string]*fileset.File{"on disk": onDisk, "in memory": inMemory} {
				if ok, err := f.Mentions("absent", word); err != nil || ok != (at >= 0) {
					t.Errorf("%s: Mentions says %v (%v), want %v", name, ok, err, at >= 0)
				}
				sum := sha256.Sum256(data)
				if d, err := f.Digest(); err != nil || d != "sha256:"+hex.EncodeToString(sum[:]) {
					t.Errorf("%s: digest %s (%v)", name, d, err)
				}
			}
		})
	}
}

// TestCheckPaths: the paths of a ResourceList's items are those of files a
// tree's reader reads back; kpt's Kptfile and items without a path pass.
func TestCheckPaths(t *testing.T) {
	item := func(annotations string) *yaml.RNode {
		return yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n" + annotations)
	}
	at := func(p string) *yaml.RNode {
		return item(fmt.Sprintf("    config.kubernetes.io/path: %q\n    internal.config.kubernetes.io/path: %q\n", p, p))
	}
	for _, ok := range [][]*yaml.RNode{
		{at("a.yaml"), at("b/c.yml"), at("d.json"), at("Kptfile"), at("sub/Kptfile"), item("    x: y\n")},
		{item("    config.kubernetes.io/path: legacy.yaml\n")},
	} {
		if err := fileset.FromItems(ok).CheckPaths(); err != nil {
			t.Errorf("%v", err)
		}
	}
	for p, want := range map[string]string{
		"/abs.yaml":                         "must be a clean relative path inside the tree",
		"a/../b.yaml":                       "must be a clean relative path inside the tree",
		"../b.yaml":                         "must be a clean relative path inside the tree",
		`a\b.yaml`:                          "must be a clean relative path inside the tree",
		"README.md":                         "must be a .yaml, .yml or .json file",
		"common":                            "must be a .yaml, .yml or .json file",
		".git/x.yaml":                       "must not write in Git's own folder .git",
		"a/.git/x.yaml":                     "must not write in Git's own folder .git",
		disk.JournalFile:                    "is the name of istio-gitops's temporary files",
		"x/" + disk.JournalFile + "/y.yaml": "is the name of istio-gitops's temporary files",
	} {
		err := fileset.FromItems([]*yaml.RNode{at(p)}).CheckPaths()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", p, err, want)
		}
	}
	mismatch := item("    config.kubernetes.io/path: a.yaml\n    internal.config.kubernetes.io/path: b.yaml\n")
	if err := fileset.FromItems([]*yaml.RNode{mismatch}).CheckPaths(); err == nil || !strings.Contains(err.Error(), "must name the same file") {
		t.Errorf("mismatched annotations: %v", err)
	}
	if err := fileset.FromItems([]*yaml.RNode{at("a.yaml"), at("a.yaml/b.yaml")}).CheckPaths(); err == nil || !strings.Contains(err.Error(), "a.yaml must be a folder to hold a.yaml/b.yaml, and a file too") {
		t.Errorf("file and folder: %v", err)
	}
}
