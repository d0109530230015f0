package treetest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRemoveOrphans: a folder whose lock nobody holds is removed, one
// whose lock is held stays, and so does a folder without one.
func TestRemoveOrphans(t *testing.T) {
	root := t.TempDir()
	folder := func(name string, lock bool) string {
		d := filepath.Join(root, tempDirStart+name)
		Write(t, filepath.Join(d, "tree", "a.yaml"), []byte("a: 1\n"))
		if lock {
			Write(t, filepath.Join(d, lockFile), nil)
		}
		return d
	}
	orphan, held, other := folder("orphan", true), folder("held", true), folder("other", false)
	f, err := os.Open(filepath.Join(held, lockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	removeOrphans(root)
	for d, want := range map[string]bool{orphan: false, held: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: there is %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}
