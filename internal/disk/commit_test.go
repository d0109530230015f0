package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s:\ngot  %v\nwant %v", what, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		for k, v := range want {
			if got[k] != v {
				t.Errorf("  %s: got %q, want %q", k, got[k], v)
			}
		}
	}
}

var before = map[string]string{
	"kustomization.yaml":         "resources: [a]\n",
	"a/generated/x/one.yaml":     "one\n",
	"a/generated/x/two.yaml":     "two\n",
	"a/istioctl-output.yaml":     "source\n",
	"a/generated/old/three.yaml": "three\n",
}

// the upgrade: rewrite one file, add two (one in a new folder), delete the
// source and a file whose folder then goes.
var (
	writes = []Write{
		{Path: "kustomization.yaml", Data: []byte("resources: [a, b]\n")},
		{Path: "a/generated/x/one.yaml", Data: []byte("ONE\n")},
		{Path: "a/generated/x/four.yaml", Data: []byte("four\n")},
		{Path: "b/generated/y/five.yaml", Data: []byte("five\n")},
	}
	deletes = []string{"a/istioctl-output.yaml", "a/generated/old/three.yaml"}
	after   = map[string]string{
		"kustomization.yaml":      "resources: [a, b]\n",
		"a/":                      "",
		"a/generated/":            "",
		"a/generated/x/":          "",
		"a/generated/x/one.yaml":  "ONE\n",
		"a/generated/x/two.yaml":  "two\n",
		"a/generated/x/four.yaml": "four\n",
		"b/":                      "",
		"b/generated/":            "",
		"b/generated/y/":          "",
		"b/generated/y/five.yaml": "five\n",
	}
)

func TestCommit(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, before)
	tree, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Commit(writes, deletes); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "after commit", treetest.Snapshot(t, root), after)
}

// faulty fails the nth change it is asked to make, or every change after
// it with stop (what a killed process, or a file system gone read-only,
// leaves). It is safe for the commit's concurrent writes and syncs.
type faulty struct {
	FS
	mu       sync.Mutex
	n, calls int
	stop     bool
	// only, when set, counts only these operations.
	only string
}

func (f *faulty) fault(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.only != "" && op != f.only {
		if f.stop && f.n > 0 && f.calls >= f.n {
			return &fs.PathError{Op: op, Path: name, Err: syscall.ENOSPC}
		}
		return nil
	}
	f.calls++
	if f.calls == f.n || f.stop && f.n > 0 && f.calls > f.n {
		return &fs.PathError{Op: op, Path: name, Err: syscall.ENOSPC}
	}
	return nil
}

func (f *faulty) Mkdir(name string, perm fs.FileMode) error {
	if err := f.fault("mkdir", name); err != nil {
		return err
	}
	return f.FS.Mkdir(name, perm)
}

func (f *faulty) Create(name string, data []byte, perm fs.FileMode) error {
	if err := f.fault("write", name); err != nil {
		return err
	}
	return f.FS.Create(name, data, perm)
}

func (f *faulty) Rename(a, b string) error {
	if err := f.fault("rename", a); err != nil {
		return err
	}
	return f.FS.Rename(a, b)
}

func (f *faulty) Remove(name string) error {
	if err := f.fault("remove", name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

func (f *faulty) Sync(name string) error {
	if err := f.fault("sync", name); err != nil {
		return err
	}
	return f.FS.Sync(name)
}

// TestCommitFaults fails the commit at each of its changes to the file
// system, syncs included (a full disk, a read-only folder, an I/O error),
// once or from there on (a process killed there): before the journal is
// committed the tree is exactly as it was, or only the run's temporary
// files, empty folders and staging journal are left, which the next
// command removes; after, the next command's Recover finishes it.
func TestCommitFaults(t *testing.T) {
	// Count the changes a clean commit makes.
	counter := &faulty{FS: OS, n: -1}
	root := t.TempDir()
	writeTree(t, root, before)
	tree, err := read(root, counter)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Commit(writes, deletes); err != nil {
		t.Fatal(err)
	}
	total := counter.calls
	if total < 20 {
		t.Fatalf("a commit made only %d changes", total)
	}
	var rolledBack, recovered int
	for n := 1; n <= total; n++ {
		for _, stop := range []bool{false, true} {
			t.Run(fmt.Sprintf("fail-%d-stop-%v", n, stop), func(t *testing.T) {
				root := t.TempDir()
				writeTree(t, root, before)
				old := treetest.Snapshot(t, root)
				f := &faulty{FS: OS, n: n, stop: stop}
				tree, err := read(root, f)
				if err != nil {
					t.Fatal(err)
				}
				err = tree.Commit(writes, deletes)
				if err == nil {
					// A failed removal of an emptied folder is not an
					// error of the commit.
					sameTree(t, "after a commit that reported no error", withoutEmptyDirs(treetest.Snapshot(t, root)), after)
					return
				}
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("error %v must wrap the fault", err)
				}
				if _, journaled := treetest.Snapshot(t, root)[JournalFile]; !journaled {
					rolledBack++
					got := treetest.Snapshot(t, root)
					if stop {
						// The file system refused the clean-up too:
						// only the run's own files and empty folders
						// may stay, and the next command removes them.
						sameTree(t, "after a failed commit", objectsOnly(got, old), old)
						if _, err := recoverJournal(root, OS); err != nil {
							t.Fatal(err)
						}
						got = treetest.Snapshot(t, root)
					}
					sameTree(t, "after a failed commit", got, old)
					return
				}
				recovered++
				if !strings.Contains(err.Error(), "run again") {
					t.Errorf("error %v must say to run again", err)
				}
				msg, err := recoverJournal(root, OS)
				if err != nil || msg == "" {
					t.Fatalf("recover: %q %v", msg, err)
				}
				sameTree(t, "after recovery", withoutEmptyDirs(treetest.Snapshot(t, root)), after)
			})
		}
	}
	if rolledBack == 0 || recovered == 0 {
		t.Errorf("faults must hit both sides of the journal: %d rolled back, %d recovered", rolledBack, recovered)
	}
}

// objectsOnly drops from a snapshot istio-gitops's own files and the
// folders that old does not have.
func objectsOnly(m, old map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		_, had := old[k]
		if isTemp(filepath.Base(k)) || strings.HasSuffix(k, "/") && !had {
			continue
		}
		out[k] = v
	}
	return out
}

func withoutEmptyDirs(m map[string]string) map[string]string {
	out := maps.Clone(m)
	for k := range m {
		if strings.HasSuffix(k, "/") {
			if _, kept := after[k]; !kept {
				delete(out, k)
			}
		}
	}
	return out
}

// TestCommitChecksFirst: a path a file system cannot take, two objects on
// one path, a file where a folder must be: each is refused before anything
// is written.
func TestCommitChecksFirst(t *testing.T) {
	long := strings.Repeat("n", 256) + ".yaml"
	for _, c := range []struct {
		name   string
		extra  map[string]string
		writes []Write
		want   string
	}{
		{name: "segment too long", writes: []Write{{Path: "a/" + long}}, want: "must be at most 255 bytes"},
		{name: "outside", writes: []Write{{Path: "../x.yaml"}}, want: "inside the tree"},
		{name: "absolute", writes: []Write{{Path: "/etc/x.yaml"}}, want: "inside the tree"},
		{name: "file and folder", writes: []Write{{Path: "c/x"}, {Path: "c/x/y.yaml"}}, want: "must be a folder to hold c/x/y.yaml, and a file too"},
		{name: "file on disk where a folder must be", extra: map[string]string{"d": "file"}, writes: []Write{{Path: "d/y.yaml"}}, want: "d must be a folder to hold d/y.yaml, but it is a file"},
		{name: "folder on disk where a file must be", extra: map[string]string{"e/f/g.yaml": "x"}, writes: []Write{{Path: "e/f"}}, want: "e/f must be a regular file, but it is a folder"},
		{name: "temporary name", writes: []Write{{Path: ".istio-gitops-1.tmp"}}, want: "temporary files"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, before)
			writeTree(t, root, c.extra)
			old := treetest.Snapshot(t, root)
			tree, err := Read(root)
			if err != nil {
				t.Fatal(err)
			}
			err = tree.Commit(append(slices.Clone(writes), c.writes...), deletes)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v must say %q", err, c.want)
			}
			sameTree(t, "after a refused commit", treetest.Snapshot(t, root), old)
		})
	}
}

// TestSymlinks: a link to a file or a folder, in or out of the tree, is
// refused by name when reading; one made after the tree was read is
// refused before anything is written.
func TestSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n", "dir/x.yaml": "a: 1\n"})
	for _, c := range []struct{ name, link, target string }{
		{"generated file", "a/generated/x/two.yaml", filepath.Join(outside, "secret.yaml")},
		{"folder", "common", filepath.Join(outside, "dir")},
		{"kustomization", "b/kustomization.yaml", filepath.Join(outside, "secret.yaml")},
		{"inside the tree", "a/link.yaml", "../kustomization.yaml"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, before)
			full := filepath.Join(root, c.link)
			_ = os.Remove(full)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(c.target, full); err != nil {
				t.Fatal(err)
			}
			_, err := Read(root)
			if err == nil || !strings.Contains(err.Error(), c.link+" is a symbolic link") {
				t.Fatalf("error %v must name the link %s", err, c.link)
			}
		})
	}
	t.Run("made after reading", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, before)
		tree, err := Read(root)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(root, "b")); err != nil {
			t.Fatal(err)
		}
		old := treetest.Snapshot(t, root)
		err = tree.Commit(writes, deletes)
		if err == nil || !strings.Contains(err.Error(), "b is a symbolic link") {
			t.Fatalf("error %v must name the link b", err)
		}
		sameTree(t, "after a refused commit", treetest.Snapshot(t, root), old)
		sameTree(t, "outside", treetest.Snapshot(t, outside), map[string]string{"secret.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n", "dir/": "", "dir/x.yaml": "a: 1\n"})
	})
}
