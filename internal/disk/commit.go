package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MaxSegment is the longest file or folder name, in bytes, that common file
// systems (ext4, xfs, btrfs, APFS, NTFS) take.
const MaxSegment = 255

// Write is the new content of one file, by its slash path in the tree.
type Write struct {
	Path string
	Data []byte
}

// Origin says which run a commit belongs to. The journal records it, and
// an interrupted commit is finished only while the run's configs are
// still the ones it applied.
type Origin struct {
	// Command is the command that ran: run, migrate, generate.
	Command string
	// Configs are the files of the tree holding the function configs the
	// run applied.
	Configs []string
	// Config is the digest of a function config given from outside the
	// tree (migrate's flags); recorded, not checked.
	Config string
}

// Commit makes the tree hold writes and lose deletes, all or nothing as
// far as a file system allows, and durably:
//
//   - every path is checked, and every file of the tree must still be the
//     one Read found (a file changed under the run is an error, never
//     overwritten);
//   - the plan (the journal: the run, each staged file with its digest,
//     each file to replace or delete with the digest of what was read) is
//     written and synced under a name of its own;
//   - new content is staged in temporary files next to their targets and
//     synced with their folders; any failure removes them and leaves the
//     tree as it was;
//   - the journal is committed with one rename, synced, and carried out:
//     each target is compared with what was read just before it is
//     replaced or deleted; the folders are synced and the journal removed.
//
// If the process dies or the power fails after the commit, Recover (the
// next command on the tree) finishes it once it has proved, by digests,
// that every staged file and every target is what the journal expects.
func (t *Tree) Commit(writes []Write, deletes []string) error {
	writes = slices.Clone(writes)
	slices.SortFunc(writes, func(a, b Write) int { return strings.Compare(a.Path, b.Path) })
	deletes = slices.Clone(deletes)
	slices.Sort(deletes)
	if err := t.check(writes, deletes); err != nil {
		return err
	}
	if len(writes) == 0 && len(deletes) == 0 {
		return nil
	}
	j, err := t.plan(writes, deletes)
	if err != nil {
		return err
	}
	if err := t.writeJournal(j); err != nil {
		return err
	}
	if err := t.stage(j, writes); err != nil {
		t.abandon(j)
		return err
	}
	if err := t.fs.Rename(t.full(stagingJournal), t.full(JournalFile)); err != nil {
		t.abandon(j)
		return fmt.Errorf("write %s: %w", JournalFile, err)
	}
	if err := t.fs.Sync(t.Root); err != nil {
		return t.unfinished(fmt.Errorf("sync %s: %w", t.Root, err))
	}
	if err := t.finish(j, true); err != nil {
		return t.unfinished(err)
	}
	return nil
}

// unfinished says what to do about a commit that stopped after its journal
// was committed.
func (t *Tree) unfinished(err error) error {
	var changed *changedError
	if errors.As(err, &changed) {
		return fmt.Errorf("%w; the run stopped half-way and left its journal %s: the next command on the tree says what to do", err, JournalFile)
	}
	return fmt.Errorf("%w; the changes are committed in %s: run again to finish writing them", err, JournalFile)
}

// check validates every path before anything is written.
func (t *Tree) check(writes []Write, deletes []string) error {
	// Many paths share their folders: each is looked at once.
	t.seen = map[string]fs.FileInfo{}
	defer func() { t.seen = nil }()
	targets := map[string]bool{}
	for _, w := range writes {
		if err := CheckPath(w.Path); err != nil {
			return err
		}
		if targets[w.Path] {
			return fmt.Errorf("%s: must be written once, not twice", w.Path)
		}
		targets[w.Path] = true
	}
	for _, w := range writes {
		for dir := path.Dir(w.Path); dir != "."; dir = path.Dir(dir) {
			if targets[dir] {
				return fmt.Errorf("%s must be a folder to hold %s, and a file too: two objects must not map to these paths", dir, w.Path)
			}
		}
		if err := t.checkOnDisk(w.Path); err != nil {
			return err
		}
	}
	for _, d := range deletes {
		if err := CheckPath(d); err != nil {
			return err
		}
		if targets[d] {
			return fmt.Errorf("%s: must not be written and deleted by the same run", d)
		}
		if err := t.checkOnDisk(d); err != nil {
			return err
		}
	}
	return nil
}

// CheckPath reports why p cannot be a file of a tree: it must be a clean,
// relative slash path inside it whose every segment a file system takes,
// outside .git, and not named like istio-gitops's own files.
func CheckPath(p string) error {
	if err := checkRelative(p); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(p, "/") {
		if len(seg) > MaxSegment {
			return fmt.Errorf("%s: %q is %d bytes long: a file or folder name must be at most %d bytes", p, seg, len(seg), MaxSegment)
		}
		if isTemp(seg) || seg == JournalFile {
			return fmt.Errorf("%s: %q is the name of istio-gitops's temporary files", p, seg)
		}
		if strings.EqualFold(seg, ".git") {
			return fmt.Errorf("%s: istio-gitops must not write in Git's own folder .git", p)
		}
	}
	return nil
}

func checkRelative(p string) error {
	if p == "" || path.IsAbs(p) || strings.ContainsAny(p, "\\\x00") || path.Clean(p) != p ||
		p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("%q must be a clean relative path inside the tree", p)
	}
	return nil
}

// checkOnDisk makes sure writing or deleting p touches no link and finds
// folders where it needs folders and a file (or nothing) at p.
func (t *Tree) checkOnDisk(p string) error {
	cur := t.Root
	parts := strings.Split(p, "/")
	for i, seg := range parts {
		cur = filepath.Join(cur, seg)
		fi, err := t.lstat(cur, i < len(parts)-1)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		at := strings.Join(parts[:i+1], "/")
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link: istio-gitops must not write through links (%s)", at, p)
		case i < len(parts)-1 && !fi.IsDir():
			return fmt.Errorf("%s must be a folder to hold %s, but it is a file", at, p)
		case i == len(parts)-1 && !fi.Mode().IsRegular():
			return fmt.Errorf("%s must be a regular file, but it is a %s", p, describeMode(fi.Mode()))
		}
	}
	return nil
}

// lstat looks at a path, remembering folders during a check.
func (t *Tree) lstat(p string, folder bool) (fs.FileInfo, error) {
	if fi, ok := t.seen[p]; ok && folder {
		if fi == nil {
			return nil, fs.ErrNotExist
		}
		return fi, nil
	}
	fi, err := t.fs.Lstat(p)
	if folder && t.seen != nil && (err == nil || errors.Is(err, fs.ErrNotExist)) {
		t.seen[p] = fi
	}
	return fi, err
}

func describeMode(m fs.FileMode) string {
	if m.IsDir() {
		return "folder"
	}
	return "special file (" + m.Type().String() + ")"
}

// changedError is a file that changed under the run since it was read.
type changedError struct{ msg string }

func (e *changedError) Error() string { return e.msg }

// unchanged reports an error unless the file at p is still the one Read
// found (same file, size and modification time), or still absent. A file
// that exists but was not read (hidden by .krmignore) is not overwritten
// either.
func (t *Tree) unchanged(p string) error {
	was, read := t.readInfo(p)
	fi, err := t.fs.Lstat(t.full(p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !read {
			return nil
		}
		return &changedError{fmt.Sprintf("%s was removed while the run ran (by another program?): istio-gitops must not write a tree that changed under it", p)}
	case err != nil:
		return fmt.Errorf("%s: %w", p, err)
	case !read:
		return &changedError{fmt.Sprintf("%s exists but the run did not read it (it appeared while the run ran, or .krmignore hides it): istio-gitops must not overwrite a file it did not read", p)}
	case !sameFile(was, fi):
		return &changedError{fmt.Sprintf("%s changed since the run read it (another program wrote it meanwhile): istio-gitops must not overwrite or delete it", p)}
	}
	return nil
}

func sameFile(a, b fs.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}

// readInfo is what Read found at p.
func (t *Tree) readInfo(p string) (fs.FileInfo, bool) {
	if t.byPath == nil {
		t.byPath = make(map[string]*File, len(t.Files))
		for _, f := range t.Files {
			t.byPath[f.Path] = f
		}
	}
	f, ok := t.byPath[p]
	if !ok || f.info == nil {
		return nil, false
	}
	return f.info, true
}

// plan makes the journal of a commit: the run, each staged file's digest,
// and the digest of each file replaced or deleted as read. Every file the
// run read must be unchanged first.
func (t *Tree) plan(writes []Write, deletes []string) (*journal, error) {
	for _, f := range t.Files {
		if err := t.unchanged(f.Path); err != nil {
			return nil, err
		}
	}
	for _, w := range writes {
		if err := t.unchanged(w.Path); err != nil {
			return nil, err
		}
	}
	id, err := newRunID()
	if err != nil {
		return nil, err
	}
	j := &journal{Version: journalVersion, ID: id, Command: t.Origin.Command, Config: t.Origin.Config}
	if j.Tree, err = identify(t.Root); err != nil {
		return nil, err
	}
	// Hash on every core: what each file replaced (if the run read it)
	// or deleted holds, and the configs; then the new content.
	n, nd := len(writes), len(deletes)
	paths := make([]string, n, n+nd+len(t.Origin.Configs))
	for i, w := range writes {
		if _, read := t.readInfo(w.Path); read {
			paths[i] = w.Path
		}
	}
	paths = append(append(paths, deletes...), t.Origin.Configs...)
	got, err := t.digests(paths)
	if err != nil {
		return nil, err
	}
	j.Writes = make([]journalWrite, n)
	_ = Parallel(n, func(i int) error {
		w := writes[i]
		j.Writes[i] = journalWrite{Path: w.Path, Temp: tempName(w.Path, id, i), Digest: Digest(w.Data), Replaces: got[i].digest}
		return nil
	})
	j.Deletes = make([]journalFile, nd)
	for i, d := range deletes {
		j.Deletes[i] = journalFile{Path: d, Digest: got[n+i].digest}
	}
	j.Configs = make([]journalFile, len(t.Origin.Configs))
	for i, c := range t.Origin.Configs {
		j.Configs[i] = journalFile{Path: c, Digest: got[n+nd+i].digest}
	}
	j.Folders = t.missingFolders(writes)
	return j, nil
}

// missingFolders are the folders the writes need that do not exist yet,
// parents first.
func (t *Tree) missingFolders(writes []Write) []string {
	var out []string
	known := map[string]bool{}
	for _, w := range writes {
		var missing []string
		for dir := path.Dir(w.Path); dir != "." && !known[dir]; dir = path.Dir(dir) {
			known[dir] = true
			if _, err := t.fs.Lstat(t.full(dir)); errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, dir)
			}
		}
		slices.Reverse(missing)
		out = append(out, missing...)
	}
	return out
}

// stage creates the folders of the journal and writes each new file's
// content to its temporary file, then syncs them and the folders holding
// them.
func (t *Tree) stage(j *journal, writes []Write) error {
	for _, dir := range j.Folders {
		if err := t.fs.Mkdir(t.full(dir), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write %s: %w", dir, err)
		}
	}
	err := SyncParallel(len(writes), func(i int) error {
		w, jw := writes[i], j.Writes[i]
		perm := fs.FileMode(0o644)
		if fi, ok := t.readInfo(w.Path); ok {
			perm = fi.Mode().Perm()
		}
		if err := t.fs.Create(t.full(jw.Temp), w.Data, perm); err != nil {
			return fmt.Errorf("write %s: %w", w.Path, err)
		}
		if err := t.fs.Sync(t.full(jw.Temp)); err != nil {
			return fmt.Errorf("sync %s: %w", w.Path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, w := range j.Writes {
		dirs[path.Dir(w.Path)] = true
	}
	for _, f := range j.Folders {
		dirs[path.Dir(f)] = true
	}
	return t.syncFolders(dirs)
}

// syncFolders syncs folders, by slash path in the tree. A folder removed
// since (emptied by later deletions) is passed over: the folder above it
// that holds its removal is among them.
func (t *Tree) syncFolders(dirs map[string]bool) error {
	list := slices.Sorted(maps.Keys(dirs))
	return SyncParallel(len(list), func(i int) error {
		if err := t.fs.Sync(t.full(list[i])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sync %s: %w", list[i], err)
		}
		return nil
	})
}

// abandon undoes a commit that stopped before its journal was committed:
// its temporary files, the folders made for them (when empty) and its
// journal go. If the file system refuses even that, the next command
// finds the journal and tries again.
func (t *Tree) abandon(j *journal) {
	for _, w := range j.Writes {
		_ = t.fs.Remove(t.full(w.Temp))
	}
	for i := len(j.Folders) - 1; i >= 0; i-- {
		_ = t.fs.Remove(t.full(j.Folders[i]))
	}
	_ = t.fs.Remove(t.full(stagingJournal))
}

// finish carries out a committed journal, then syncs the folders it
// changed and removes it. In the run that wrote it (live), each target is
// compared with what the run read just before it is replaced or deleted;
// in recovery, verify has proved each step, and a step found done (a
// staged file gone, a file to delete gone) is skipped.
func (t *Tree) finish(j *journal, live bool) error {
	dirs := map[string]bool{".": true}
	for _, w := range j.Writes {
		if live {
			if err := t.unchanged(w.Path); err != nil {
				return err
			}
		} else if _, err := t.fs.Lstat(t.full(w.Temp)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := t.fs.Rename(t.full(w.Temp), t.full(w.Path)); err != nil {
			return fmt.Errorf("write %s: %w", w.Path, err)
		}
		dirs[path.Dir(w.Path)] = true
	}
	for _, d := range j.Deletes {
		if live {
			if err := t.unchanged(d.Path); err != nil {
				return err
			}
		}
		if err := t.fs.Remove(t.full(d.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", d.Path, err)
		}
		dirs[t.removeEmptyParents(path.Dir(d.Path))] = true
	}
	if err := t.syncFolders(dirs); err != nil {
		return err
	}
	if err := t.fs.Remove(t.full(JournalFile)); err != nil {
		return fmt.Errorf("delete %s: %w", JournalFile, err)
	}
	// The tree is written: should the removal be lost with the power,
	// the next command finds every step done and only removes the
	// journal.
	_ = t.fs.Sync(t.Root)
	return nil
}

// removeEmptyParents removes the folders a deletion left empty, up to the
// root (a folder that is not empty refuses), and returns the folder whose
// entries changed last.
func (t *Tree) removeEmptyParents(rel string) string {
	for rel != "." && rel != "" {
		// Gone already: a recovery after the run removed it.
		if err := t.fs.Remove(t.full(rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rel
		}
		rel = path.Dir(rel)
	}
	return "."
}

func (t *Tree) full(rel string) string { return filepath.Join(t.Root, filepath.FromSlash(rel)) }

// tempName is the temporary file staging the ith write of run id: next to
// its target, named as no file of a tree may be (CheckPath), and unique to
// the run.
func tempName(target, id string, i int) string {
	return path.Join(path.Dir(target), tempPrefix+id+"-"+strconv.Itoa(i)+tempSuffix)
}
