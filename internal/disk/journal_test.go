package disk

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// recorder logs what a commit does to the file system, in order.
type recorder struct {
	FS
	mu  sync.Mutex
	ops [][3]string // op, name, new name
}

func (r *recorder) log(op, name, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, [3]string{op, name, to})
}

func (r *recorder) Mkdir(name string, perm fs.FileMode) error {
	r.log("mkdir", name, "")
	return r.FS.Mkdir(name, perm)
}

func (r *recorder) Create(name string, data []byte, perm fs.FileMode) error {
	r.log("create", name, "")
	return r.FS.Create(name, data, perm)
}

func (r *recorder) Rename(a, b string) error {
	r.log("rename", a, b)
	return r.FS.Rename(a, b)
}

func (r *recorder) Remove(name string) error {
	r.log("remove", name, "")
	return r.FS.Remove(name)
}

func (r *recorder) Sync(name string) error {
	r.log("sync", name, "")
	return r.FS.Sync(name)
}

// TestCommitDurable replays a commit against a model of what a power loss
// may take back: a file's content until it is synced, a folder's entries
// (files created, renamed, removed in it) until the folder is synced. The
// commit must be durable at each step that the next depends on: the
// journal and every staged file (content and entry) before the commit
// rename; the commit before the first target is replaced; every replaced
// or deleted target before the journal goes; the journal's removal before
// the commit returns.
func TestCommitDurable(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, before)
	rec := &recorder{FS: OS}
	tree, err := read(root, rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Commit(writes, deletes); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(root, JournalFile)
	durable := map[string]bool{} // file contents synced
	dirty := map[string]bool{}   // folders with entries not synced
	var committed bool
	anyDirty := func() []string {
		var out []string
		for d, v := range dirty {
			if v {
				out = append(out, d)
			}
		}
		return out
	}
	for i, op := range rec.ops {
		name, to := op[1], op[2]
		switch op[0] {
		case "create":
			durable[name] = false
			dirty[filepath.Dir(name)] = true
		case "mkdir":
			dirty[filepath.Dir(name)] = true
		case "rename":
			if to == journal {
				for f, ok := range durable {
					if !ok {
						t.Errorf("op %d: the journal is committed before %s is synced", i, f)
					}
				}
				if d := anyDirty(); len(d) > 0 {
					t.Errorf("op %d: the journal is committed before the folders %q are synced", i, d)
				}
				committed = true
			} else if !committed || dirty[root] {
				t.Errorf("op %d: %s replaced before the commit is durable", i, to)
			}
			durable[to] = durable[name]
			delete(durable, name)
			dirty[filepath.Dir(name)], dirty[filepath.Dir(to)] = true, true
		case "remove":
			if name == journal {
				if d := anyDirty(); len(d) > 0 {
					t.Errorf("op %d: the journal is removed before the folders %q are synced", i, d)
				}
			}
			delete(durable, name)
			delete(dirty, name)
			dirty[filepath.Dir(name)] = true
		case "sync":
			if fi, err := os.Stat(name); err == nil && fi.IsDir() {
				dirty[name] = false
			} else {
				durable[name] = true
			}
		}
	}
	if d := anyDirty(); len(d) > 0 {
		t.Errorf("the commit returned with the folders %q not synced", d)
	}
	if !committed {
		t.Error("the journal was never committed")
	}
	sameTree(t, "after commit", treetest.Snapshot(t, root), after)
}

// killedAfterCommit commits the test's upgrade over before in a new tree
// with configs as the run's, and kills it (every change fails from there
// on) once it made renames of its targets; the journal is committed.
func killedAfterCommit(t *testing.T, renames int, configs ...string) string {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, before)
	f := &faulty{FS: OS, n: 2 + renames, stop: true, only: "rename"}
	tree, err := read(root, f)
	if err != nil {
		t.Fatal(err)
	}
	tree.Origin = Origin{Command: "run", Configs: configs}
	if err := tree.Commit(writes, deletes); err == nil || !strings.Contains(err.Error(), "run again") {
		t.Fatalf("the commit must stop after its journal: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, JournalFile)); err != nil {
		t.Fatal("no journal after the commit")
	}
	return root
}

// TestRecoverProves: after a kill, the next command finishes the commit
// only when every staged file and every target is what the journal
// expects; whatever changed in between (staged files removed, a new
// source written, the tree checked out from Git, the config edited, a
// target deleted, a staged file edited, the tree copied elsewhere), it
// changes nothing and says what to do.
func TestRecoverProves(t *testing.T) {
	const config = "a/generated/x/two.yaml" // a file the run read and keeps
	for _, c := range []struct {
		name string
		// after the kill, before the next command
		change func(t *testing.T, root string) string
		want   string
	}{
		{name: "untouched"},
		{name: "staged files removed", change: func(t *testing.T, root string) string {
			removeTemps(t, root)
			return root
		}, want: "its staged content"},
		{name: "a new source written", change: func(t *testing.T, root string) string {
			writeTree(t, root, map[string]string{"a/istioctl-output.yaml": "new source\n"})
			return root
		}, want: "a/istioctl-output.yaml changed since the run read it, and the run would delete it"},
		{name: "checked out from Git", change: func(t *testing.T, root string) string {
			writeTree(t, root, before)
			return root
		}, want: "a/generated/x/one.yaml is not what the run wrote"},
		{name: "checked out and staged files removed", change: func(t *testing.T, root string) string {
			writeTree(t, root, before)
			removeTemps(t, root)
			return root
		}, want: "is not what the run wrote"},
		{name: "config edited", change: func(t *testing.T, root string) string {
			writeTree(t, root, map[string]string{config: "two, edited\n"})
			return root
		}, want: "the config " + config + " changed since the run read it"},
		{name: "a target deleted", change: func(t *testing.T, root string) string {
			if err := os.Remove(filepath.Join(root, "kustomization.yaml")); err != nil {
				t.Fatal(err)
			}
			return root
		}, want: "kustomization.yaml, which the run was to replace, is gone"},
		{name: "a staged file edited", change: func(t *testing.T, root string) string {
			for _, p := range temps(t, root) {
				if err := os.WriteFile(p, []byte("edited\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return root
		}, want: "is not what the run wrote"},
		{name: "copied elsewhere", change: func(t *testing.T, root string) string {
			dir := t.TempDir()
			treetest.Copy(t, root, dir)
			return dir
		}, want: "it was written in another folder (" + ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := killedAfterCommit(t, 2, config)
			if c.change != nil {
				root = c.change(t, root)
			}
			old := treetest.Snapshot(t, root)
			msg, err := Recover(root)
			if c.want == "" {
				if err != nil || !strings.Contains(msg, "finished writing the changes of an earlier `istio-gitops run`") {
					t.Fatalf("recover: %q, %v", msg, err)
				}
				sameTree(t, "after recovery", withoutEmptyDirs(treetest.Snapshot(t, root)), after)
				return
			}
			if err == nil {
				t.Fatalf("recovery finished (%s): it must refuse", msg)
			}
			for _, w := range []string{c.want, "Nothing was changed", "Restore the tree from Git", "-delete"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error must say %q:\n%v", w, err)
				}
			}
			sameTree(t, "after a refused recovery", treetest.Snapshot(t, root), old)
		})
	}
}

func temps(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for p := range treetest.Snapshot(t, root) {
		if base := filepath.Base(p); isTemp(base) && base != stagingJournal {
			out = append(out, filepath.Join(root, p))
		}
	}
	if len(out) == 0 {
		t.Fatal("no staged file")
	}
	return out
}

func removeTemps(t *testing.T, root string) {
	t.Helper()
	for _, p := range temps(t, root) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecoverRefusesForeignJournal: a journal that names paths outside
// the tree, in .git, through a link, temporary files not named as the
// run's, one of another format, one that is not a regular file (a named
// pipe must not block) or too large: nothing is changed, and the error
// says what to do.
func TestRecoverRefusesForeignJournal(t *testing.T) {
	id := "0123456789abcdef"
	tmp := func(dir string, i int) string { return tempName(dir+"/x.yaml", id, i) }
	journalOf := func(writes []journalWrite, deletes ...string) string {
		j := journal{Version: journalVersion, ID: id, Writes: writes}
		for _, d := range deletes {
			j.Deletes = append(j.Deletes, journalFile{Path: d, Digest: Digest([]byte("x"))})
		}
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		name, journal, want string
		setup               func(t *testing.T, root string)
	}{
		{name: "outside", journal: journalOf(nil, "../outside.yaml"), want: "must be a clean relative path inside the tree"},
		{name: "rename outside", journal: journalOf([]journalWrite{{Path: "../../etc/passwd", Temp: tmp("a", 0)}}), want: "inside the tree"},
		{name: "not our temporary file", journal: journalOf([]journalWrite{{Path: "a/b.yaml", Temp: "a/notours.yaml"}}), want: "must be a/.istio-gitops-" + id + "-0.tmp"},
		{name: "git HEAD", journal: journalOf(nil, ".git/HEAD"), want: "must not write in Git's own folder .git"},
		{name: "git object", journal: journalOf([]journalWrite{{Path: ".git/config", Temp: tmp(".git", 0)}}), want: ".git"},
		{name: "through a link", journal: journalOf(nil, "l/a.yaml"), want: "l is a symbolic link", setup: func(t *testing.T, root string) {
			if err := os.Symlink(t.TempDir(), filepath.Join(root, "l")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "old format", journal: `{"renames":[["a/.istio-gitops-1-00.tmp","a/x.yaml"]],"deletes":["kustomization.yaml"]}`, want: "journal of format 0"},
		{name: "bad id", journal: `{"version":2,"id":"../../x","deletes":[{"path":"kustomization.yaml"}]}`, want: "must be 16 hexadecimal digits"},
		{name: "not json", journal: "not json", want: "is not valid"},
		{name: "a named pipe", want: "a regular file, but it is a special file", setup: func(t *testing.T, root string) {
			if err := syscall.Mkfifo(filepath.Join(root, JournalFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a folder", want: "a regular file, but it is a folder", setup: func(t *testing.T, root string) {
			if err := os.Mkdir(filepath.Join(root, JournalFile), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "too large", want: "at most", setup: func(t *testing.T, root string) {
			f, err := os.Create(filepath.Join(root, JournalFile))
			if err == nil {
				err = f.Truncate(maxJournal + 1)
			}
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, before)
			writeTree(t, root, map[string]string{".git/HEAD": "ref: refs/heads/main\n", ".git/config": "x"})
			if c.journal != "" {
				writeTree(t, root, map[string]string{JournalFile: c.journal})
			}
			if c.setup != nil {
				c.setup(t, root)
			}
			old := treetest.Snapshot(t, root)
			_, err := Recover(root)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Git") {
				t.Errorf("error %v must refuse it and say %q", err, c.want)
			}
			sameTree(t, "after a refused recovery", treetest.Snapshot(t, root), old)
		})
	}
}

// TestStagingAbandoned: a run killed before its commit leaves its staging
// journal and temporary files; the next command removes exactly the files
// that journal names (and the folders made for them), never another file
// named like them, which it only warns of.
func TestStagingAbandoned(t *testing.T) {
	for k := 1; k <= len(writes)+1; k++ {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, before)
			stray := "a/generated/x/.istio-gitops-3-0a0b0c0d.tmp"
			writeTree(t, root, map[string]string{stray: "not named by a journal"})
			old := treetest.Snapshot(t, root)
			// Killed before the kth staged file's sync.
			f := &faulty{FS: OS, n: 2 + k, stop: true, only: "sync"}
			tree, err := read(root, f)
			if err != nil {
				t.Fatal(err)
			}
			if err := tree.Commit(writes, deletes); err == nil {
				t.Fatal("the commit must fail")
			}
			if _, err := os.Lstat(filepath.Join(root, stagingJournal)); err != nil {
				t.Fatalf("no staging journal: %v", err)
			}
			msg, err := Recover(root)
			if err != nil || !strings.Contains(msg, "before it changed anything") {
				t.Fatalf("recover: %q %v", msg, err)
			}
			sameTree(t, "after recovery", treetest.Snapshot(t, root), old)
			tree, err = Read(root)
			if err != nil {
				t.Fatal(err)
			}
			if w := tree.StraysWarning(); !strings.Contains(w, stray) {
				t.Errorf("stray warning %q must name %s", w, stray)
			}
			if err := tree.Commit(writes, deletes); err != nil {
				t.Fatal(err)
			}
			want := withFile(after, stray, "not named by a journal")
			sameTree(t, "after the next commit", treetest.Snapshot(t, root), want)
		})
	}
}

func withFile(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

// TestCommitComparesBeforeRename: a file changed after the run read it,
// before the commit or while it replaces files, is never overwritten or
// deleted: the commit fails, and a recovery refuses too.
func TestCommitComparesBeforeRename(t *testing.T) {
	t.Run("before the commit", func(t *testing.T) {
		for _, p := range []string{"kustomization.yaml", "a/istioctl-output.yaml", "a/generated/x/two.yaml"} {
			root := t.TempDir()
			writeTree(t, root, before)
			tree, err := Read(root)
			if err != nil {
				t.Fatal(err)
			}
			writeTree(t, root, map[string]string{p: "changed under the run\n"})
			old := treetest.Snapshot(t, root)
			err = tree.Commit(writes, deletes)
			if err == nil || !strings.Contains(err.Error(), p+" changed since the run read it") {
				t.Errorf("%s: error %v must name the changed file", p, err)
			}
			sameTree(t, "after a refused commit", treetest.Snapshot(t, root), old)
		}
	})
	t.Run("a new file that appeared", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, before)
		tree, err := Read(root)
		if err != nil {
			t.Fatal(err)
		}
		writeTree(t, root, map[string]string{"b/generated/y/five.yaml": "someone else's\n"})
		err = tree.Commit(writes, deletes)
		if err == nil || !strings.Contains(err.Error(), "b/generated/y/five.yaml exists but the run did not read it") {
			t.Errorf("error %v must name the file", err)
		}
	})
	t.Run("while it renames", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, before)
		edit := &editing{FS: OS, at: filepath.Join(root, "kustomization.yaml")}
		tree, err := read(root, edit)
		if err != nil {
			t.Fatal(err)
		}
		err = tree.Commit(writes, deletes)
		if err == nil || !strings.Contains(err.Error(), "kustomization.yaml changed since the run read it") {
			t.Fatalf("error %v must name the changed file", err)
		}
		if b, _ := os.ReadFile(edit.at); string(b) != "edited meanwhile\n" {
			t.Fatalf("the changed file was overwritten: %q", b)
		}
		if _, err := Recover(root); err == nil || !strings.Contains(err.Error(), "kustomization.yaml changed since the run read it") {
			t.Fatalf("recovery must refuse: %v", err)
		}
	})
}

// editing rewrites a file as the first target is renamed: another program
// writing while the run commits.
type editing struct {
	FS
	at   string
	done bool
}

func (e *editing) Rename(a, b string) error {
	if !e.done && filepath.Base(b) != JournalFile {
		e.done = true
		if err := os.WriteFile(e.at, []byte("edited meanwhile\n"), 0o644); err != nil {
			return err
		}
	}
	return e.FS.Rename(a, b)
}
