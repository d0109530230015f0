package fileset_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"

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
