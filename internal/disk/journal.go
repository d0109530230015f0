package disk

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// journalVersion is the journal's format; a journal of another
	// format is refused, never guessed at.
	journalVersion = 2
	// maxJournal bounds what is read of a journal: tens of thousands of
	// files fit in a few MiB.
	maxJournal = 64 << 20
	// stagingJournal is the journal while the run stages its files: it
	// names the temporary files to remove if the run dies before its
	// commit. Renamed to JournalFile, it commits the run.
	stagingJournal = JournalFile + ".staging"
	// idBytes is the length of a run's id: its temporary files carry it.
	idBytes = 8
)

// journal is a commit's plan: which run, in which tree, and every change
// with the digests that prove it.
type journal struct {
	Version int `json:"version"`
	// ID is the run's: its temporary files are .istio-gitops-<id>-<n>.tmp.
	ID      string `json:"id"`
	Command string `json:"command,omitempty"`
	Tree    treeID `json:"tree"`
	// Configs are the files of the function configs the run applied, with
	// their digests as it read them.
	Configs []journalFile `json:"configs,omitempty"`
	// Config is the digest of a config given from outside the tree.
	Config string `json:"config,omitempty"`
	// Folders are the folders the run creates, parents first.
	Folders []string       `json:"folders,omitempty"`
	Writes  []journalWrite `json:"writes"`
	Deletes []journalFile  `json:"deletes"`
}

// treeID is the tree's root folder: a journal copied into another folder,
// or committed to Git and checked out elsewhere, is not that tree's.
type treeID struct {
	Path   string `json:"path"`
	Device uint64 `json:"device"`
	Inode  uint64 `json:"inode"`
}

// journalWrite is one file the run writes: its content is staged in Temp
// (Digest); Replaces is the digest of the file it replaces, as the run
// read it ("" for a new file).
type journalWrite struct {
	Path     string `json:"path"`
	Temp     string `json:"temp"`
	Digest   string `json:"digest"`
	Replaces string `json:"replaces,omitempty"`
}

// journalFile is a file and the digest of its bytes as the run read them.
type journalFile struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// Digest is the sha256 of b as the journal and the records keep it.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fileDigest is a file's digest, and whether there is a file.
type fileDigest struct {
	digest string
	exists bool
}

// digests hashes the files at paths on every core, each as digest does;
// an empty path is passed over (no digest, no file). The error is the
// first path's.
func (t *Tree) digests(paths []string) ([]fileDigest, error) {
	out := make([]fileDigest, len(paths))
	err := Parallel(len(paths), func(i int) error {
		if paths[i] == "" {
			return nil
		}
		var err error
		out[i].digest, out[i].exists, err = t.digest(paths[i])
		return err
	})
	return out, err
}

// digest hashes the file at p (a slash path in the tree) without holding
// it; exists is false when there is no file.
func (t *Tree) digest(p string) (d string, exists bool, err error) {
	r, err := t.fs.Open(t.full(p))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", p, err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", true, fmt.Errorf("read %s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), true, nil
}

func newRunID() (string, error) {
	var b [idBytes]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// identify names the tree's root folder by its path, device and inode.
func identify(root string) (treeID, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return treeID{}, err
	}
	fi, err := os.Stat(root)
	if err != nil {
		return treeID{}, err
	}
	key, _ := keyOf(fi)
	return treeID{Path: abs, Device: key.dev, Inode: key.ino}, nil
}

// writeJournal writes the plan under its staging name and syncs it and
// the root's entries: from here on, the next command can undo the run.
func (t *Tree) writeJournal(j *journal) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	name := t.full(stagingJournal)
	if err := t.fs.Create(name, b, 0o644); err != nil {
		_ = t.fs.Remove(name)
		return fmt.Errorf("write %s: %w", stagingJournal, err)
	}
	if err := t.fs.Sync(name); err != nil {
		_ = t.fs.Remove(name)
		return fmt.Errorf("sync %s: %w", stagingJournal, err)
	}
	if err := t.fs.Sync(t.Root); err != nil {
		_ = t.fs.Remove(name)
		return fmt.Errorf("sync %s: %w", t.Root, err)
	}
	return nil
}

// readJournal reads the journal named name at the root, if there is one.
// It must be a regular file (a named pipe is never opened) of bounded
// size; garbled reports a journal that is not valid JSON.
func (t *Tree) readJournal(name string) (j *journal, found, garbled bool, err error) {
	full := t.full(name)
	fi, err := t.fs.Lstat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, false, nil
	case err != nil:
		return nil, true, false, fmt.Errorf("%s: %w", full, err)
	case !fi.Mode().IsRegular():
		return nil, true, false, fmt.Errorf("%s must be the journal of an interrupted run, a regular file, but it is a %s: remove it, restore the tree from Git and run again",
			full, describeMode(fi.Mode()))
	case fi.Size() > maxJournal:
		return nil, true, false, fmt.Errorf("%s must be the journal of an interrupted run, at most %d bytes, but it has %d: remove it, restore the tree from Git and run again",
			full, maxJournal, fi.Size())
	}
	r, err := t.fs.Open(full)
	if err != nil {
		return nil, true, false, fmt.Errorf("%s: %w", full, err)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxJournal+1))
	r.Close()
	if err != nil {
		return nil, true, false, fmt.Errorf("%s: %w", full, err)
	}
	// The format first: a journal of another format is reported as such,
	// not as garbled.
	var head struct {
		Version int `json:"version"`
	}
	if len(b) > maxJournal || json.Unmarshal(b, &head) != nil {
		return nil, true, true, nil
	}
	j = &journal{Version: head.Version}
	if head.Version == journalVersion && json.Unmarshal(b, j) != nil {
		return nil, true, true, nil
	}
	return j, true, false, nil
}

// Recover finishes or undoes the commit of an earlier command on the tree
// at root that was interrupted, if its journal is there, and says what it
// did ("" when there was nothing to do). The caller holds the tree's lock.
//
// A commit interrupted before its journal was committed changed nothing
// but its temporary files: those the journal names are removed. A
// committed one is finished only once every path it names has passed the
// checks of every path (inside the tree, not in .git, no link on the
// way), the tree is the one it was written in, its configs are unchanged,
// every staged file is there with its digest (or was renamed already: its
// target has that digest) and every file to replace or delete is still
// what the run read. Otherwise nothing is changed and the error says
// what to do.
func Recover(root string) (string, error) {
	return recoverJournal(root, OS)
}

func recoverJournal(root string, fsys FS) (string, error) {
	t := &Tree{Root: root, fs: fsys}
	if msg, err := t.recoverStaging(); msg != "" || err != nil {
		return msg, err
	}
	j, found, garbled, err := t.readJournal(JournalFile)
	switch {
	case err != nil:
		return "", err
	case !found:
		return "", nil
	case garbled:
		return "", fmt.Errorf("%s must be the journal of an interrupted run, but it is not valid: remove it, restore the tree from Git and run again",
			t.full(JournalFile))
	}
	if problems := t.verify(j); len(problems) > 0 {
		return "", t.refuse(j, problems)
	}
	if err := t.finish(j, false); err != nil {
		return "", fmt.Errorf("%s: finishing the changes of an earlier run that was interrupted: %w; run again", root, err)
	}
	return fmt.Sprintf("%s: finished writing the changes of an earlier %s that was interrupted (%d files written, %d deleted, each checked against its digest)",
		root, commandOf(j), len(j.Writes), len(j.Deletes)), nil
}

// recoverStaging removes the temporary files of a run interrupted before
// it committed, and its staging journal.
func (t *Tree) recoverStaging() (string, error) {
	j, found, garbled, err := t.readJournal(stagingJournal)
	if err != nil || !found {
		return "", err
	}
	if garbled {
		// Cut short while it was written: no file was staged yet.
		if err := t.fs.Remove(t.full(stagingJournal)); err != nil {
			return "", fmt.Errorf("delete %s: %w", t.full(stagingJournal), err)
		}
		return fmt.Sprintf("%s: removed the unfinished journal of an earlier run that was interrupted before it changed anything", t.Root), nil
	}
	if j.Version != journalVersion {
		return "", t.refuseStaging([]string{formatProblem(j)})
	}
	if problems := t.checkPaths(j); len(problems) > 0 {
		return "", t.refuseStaging(problems)
	}
	t.abandon(j)
	if _, err := t.fs.Lstat(t.full(stagingJournal)); err == nil {
		return "", fmt.Errorf("delete %s: the file system refused it", t.full(stagingJournal))
	}
	return fmt.Sprintf("%s: removed the %d temporary files of an earlier %s that was interrupted before it changed anything",
		t.Root, len(j.Writes), commandOf(j)), nil
}

func formatProblem(j *journal) string {
	return fmt.Sprintf("it is a journal of format %d (another version of istio-gitops), and this istio-gitops reads format %d", j.Version, journalVersion)
}

func commandOf(j *journal) string {
	if j.Command == "" {
		return "istio-gitops command"
	}
	return "`istio-gitops " + j.Command + "`"
}

// checkPaths checks every path a journal names like every path a run
// writes, and the names of its temporary files.
func (t *Tree) checkPaths(j *journal) []string {
	var problems []string
	bad := func(p string, err error) {
		problems = append(problems, fmt.Sprintf("%q: %v", p, err))
	}
	if !validID(j.ID) {
		return []string{fmt.Sprintf("id %q must be %d hexadecimal digits", j.ID, 2*idBytes)}
	}
	t.seen = map[string]fs.FileInfo{}
	defer func() { t.seen = nil }()
	file := func(p string) {
		if err := CheckPath(p); err != nil {
			bad(p, err)
		} else if err := t.checkOnDisk(p); err != nil {
			bad(p, err)
		}
	}
	for i, w := range j.Writes {
		file(w.Path)
		if w.Temp != tempName(w.Path, j.ID, i) {
			bad(w.Temp, fmt.Errorf("must be %s, the temporary file of write %d", tempName(w.Path, j.ID, i), i))
		} else if err := t.checkOnDisk(w.Temp); err != nil {
			bad(w.Temp, err)
		}
	}
	for _, d := range j.Deletes {
		file(d.Path)
	}
	for _, c := range j.Configs {
		file(c.Path)
	}
	for _, f := range j.Folders {
		if err := CheckPath(f); err != nil {
			bad(f, err)
		} else if err := t.checkFolder(f); err != nil {
			bad(f, err)
		}
	}
	return problems
}

// verify proves that a committed journal can be finished; it returns
// what stands in the way.
func (t *Tree) verify(j *journal) []string {
	if j.Version != journalVersion {
		return []string{formatProblem(j)}
	}
	if problems := t.checkPaths(j); len(problems) > 0 {
		return problems
	}
	id, err := identify(t.Root)
	if err != nil {
		return []string{err.Error()}
	}
	if id.Device != j.Tree.Device || id.Inode != j.Tree.Inode {
		return []string{fmt.Sprintf("it was written in another folder (%s): it was copied here, or committed to Git", j.Tree.Path)}
	}
	// Read every digest on every core, then judge in order: each write's
	// staged file and target, then the deletes, then the configs.
	n, nd := len(j.Writes), len(j.Deletes)
	paths := make([]string, 0, 2*n+nd+len(j.Configs))
	for _, w := range j.Writes {
		paths = append(paths, w.Temp, w.Path)
	}
	for _, d := range j.Deletes {
		paths = append(paths, d.Path)
	}
	for _, c := range j.Configs {
		paths = append(paths, c.Path)
	}
	got, err := t.digests(paths)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for i, c := range j.Configs {
		if g := got[2*n+nd+i]; g.digest != c.Digest {
			problems = append(problems, fmt.Sprintf("the config %s changed since the run read it", c.Path))
		}
	}
	for i, w := range j.Writes {
		temp, target := got[2*i], got[2*i+1]
		switch {
		case temp.exists && temp.digest != w.Digest:
			problems = append(problems, fmt.Sprintf("the staged content of %s (%s) is not what the run wrote", w.Path, w.Temp))
		case temp.exists && !(target.digest == w.Replaces || target.digest == w.Digest):
			if w.Replaces != "" && !target.exists {
				problems = append(problems, fmt.Sprintf("%s, which the run was to replace, is gone", w.Path))
			} else {
				problems = append(problems, fmt.Sprintf("%s changed since the run read it", w.Path))
			}
		case !temp.exists && target.digest != w.Digest:
			problems = append(problems, fmt.Sprintf("%s is not what the run wrote, and its staged content %s is gone (removed, or the tree was checked out since)", w.Path, w.Temp))
		}
	}
	for i, d := range j.Deletes {
		if g := got[2*n+i]; g.exists && g.digest != d.Digest {
			problems = append(problems, fmt.Sprintf("%s changed since the run read it, and the run would delete it", d.Path))
		}
	}
	return problems
}

// refuse is the error of a journal that cannot be finished: what stands in
// the way and how to start again from Git.
func (t *Tree) refuse(j *journal, problems []string) error {
	more := ""
	if len(problems) > maxListed {
		more = fmt.Sprintf("; and %d more", len(problems)-maxListed)
		problems = problems[:maxListed]
	}
	temps := tempPrefix + "*" + tempSuffix
	if validID(j.ID) {
		temps = tempPrefix + j.ID + "-*" + tempSuffix
	}
	return fmt.Errorf("%s: an earlier %s was interrupted while it wrote this tree, and its changes cannot be proven safe to finish: %s%s. Nothing was changed. "+
		"Restore the tree from Git (git checkout -- %s, and remove the new files git status lists), delete %s and its temporary files "+
		"(find %s -name '%s' -delete), then run again",
		t.Root, commandOf(j), strings.Join(problems, "; "), more, t.Root, t.full(JournalFile), t.Root, temps)
}

func (t *Tree) refuseStaging(problems []string) error {
	if len(problems) > maxListed {
		problems = problems[:maxListed]
	}
	return fmt.Errorf("%s must be the journal of an interrupted run: %s; remove it, restore the tree from Git and run again",
		t.full(stagingJournal), strings.Join(problems, "; "))
}

// maxListed bounds the problems one error lists.
const maxListed = 8

func validID(id string) bool {
	return len(id) == 2*idBytes && strings.Trim(id, "0123456789abcdef") == ""
}

// checkFolder makes sure p, a folder a journal creates, has no link on the
// way and is a folder or nothing.
func (t *Tree) checkFolder(p string) error {
	cur := t.Root
	for seg := range strings.SplitSeq(p, "/") {
		cur = filepath.Join(cur, seg)
		fi, err := t.lstat(cur, true)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s must be a folder, but it is a %s", p, describeMode(fi.Mode()))
		}
	}
	return nil
}
