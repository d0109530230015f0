package disk_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/disk"
)

// TestReadIgnoreFile: the root's .krmignore is checked before kyaml reads
// it: its parser panics on a pattern that is only "!" or "/", and its
// reader follows a link out of the tree or hangs on a pipe.
func TestReadIgnoreFile(t *testing.T) {
	t.Parallel()
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
	for _, c := range []struct {
		name, ignore string
		want         string // "" for a tree that reads
	}{
		{"patterns", "# generated\n\nignored/\n!keep.yaml\n\\#hash.yaml\n/top.yaml\n", ""},
		{"a slash", "ignored/\n/\n", `.krmignore line 2: "/" must name files or folders`},
		{"a bang", "!\n", `.krmignore line 1: "!" must name files or folders`},
		{"a bang and a slash", "  !/  \r\n", `.krmignore line 1: "!/" must name files or folders`},
		{"an escaped bang", "ignored/\n\\!\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{"a.yaml": cm, "ignored/b.yaml": cm, disk.IgnoreFile: c.ignore})
			tree, err := disk.Read(dir)
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			case c.want == "" && len(tree.Files) != 1:
				t.Errorf("read %d files, want a.yaml alone", len(tree.Files))
			}
		})
	}

	t.Run("a link out of the tree", func(t *testing.T) {
		dir, outside := t.TempDir(), t.TempDir()
		write(t, outside, map[string]string{"ignore": "x\n"})
		if err := os.Symlink(filepath.Join(outside, "ignore"), filepath.Join(dir, disk.IgnoreFile)); err != nil {
			t.Fatal(err)
		}
		if _, err := disk.Read(dir); err == nil || !strings.Contains(err.Error(), ".krmignore is a symbolic link") {
			t.Fatalf("error %v, want the link named", err)
		}
	})

	t.Run("a named pipe", func(t *testing.T) {
		dir := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(dir, disk.IgnoreFile), 0o644); err != nil {
			t.Skip("no named pipes here:", err)
		}
		done := make(chan error, 1)
		go func() { _, err := disk.Read(dir); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), ".krmignore must be a regular file") {
				t.Fatalf("error %v, want the pipe refused", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Read hangs on a named pipe")
		}
	})
}

// TestFileBytes: a file is read whole whatever its size, and as it is when
// read: grown or shrunk since the tree was listed.
func TestFileBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := strings.Repeat("# a comment line of a big file\n", 5000)
	write(t, dir, map[string]string{"empty.yaml": "", "small.yaml": "a: b\n", "big.yaml": big, "grows.yaml": "a: b\n", "shrinks.yaml": big})
	tree, err := disk.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, map[string]string{"grows.yaml": big, "shrinks.yaml": "a: b\n"})
	want := map[string]string{"empty.yaml": "", "small.yaml": "a: b\n", "big.yaml": big, "grows.yaml": big, "shrinks.yaml": "a: b\n"}
	for _, f := range tree.Files {
		b, err := f.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want[f.Path] {
			t.Errorf("%s: read %d bytes, want %d", f.Path, len(b), len(want[f.Path]))
		}
	}
	if len(tree.Files) != len(want) {
		t.Errorf("read %d files, want %d", len(tree.Files), len(want))
	}
}
