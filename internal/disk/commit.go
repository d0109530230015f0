package disk

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// journal is a commit's plan once every new file is staged.
type journal struct {
	// Renames move each staged temporary file onto its target.
	Renames [][2]string `json:"renames"`
	// Deletes are the files the tree loses, then their emptied folders.
	Deletes []string `json:"deletes"`
	// Temps are temporary files of an earlier interrupted run.
	Temps []string `json:"temps,omitempty"`
}

// Commit makes the tree hold writes and lose deletes, all or nothing as far
// as a file system allows: every path is checked first; new content is
// staged in temporary files next to their targets (any failure removes them
// and leaves the tree as it was); a journal listing the renames and
// deletions is then committed with one rename, and carried out. If the
// process dies after that, Recover (the next run) finishes the commit.
func (t *Tree) Commit(writes []Write, deletes []string) error {
	writes = slices.Clone(writes)
	slices.SortFunc(writes, func(a, b Write) int { return strings.Compare(a.Path, b.Path) })
	deletes = slices.Clone(deletes)
	slices.Sort(deletes)
	if err := t.check(writes, deletes); err != nil {
		return err
	}
	if len(writes) == 0 && len(deletes) == 0 && len(t.temps) == 0 {
		return nil
	}
	j, created, err := t.stage(writes)
	if err != nil {
		return err
	}
	j.Deletes = deletes
	j.Temps = t.temps
	if err := t.writeJournal(j); err != nil {
		t.unstage(j, created)
		return err
	}
	if err := apply(t.fs, t.Root, j); err != nil {
		return fmt.Errorf("%w; the changes are committed in %s: run again to finish writing them", err, JournalFile)
	}
	return nil
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
// relative slash path inside it whose every segment a file system takes.
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

// stage writes each new file's content to a temporary file next to it,
// creating folders as needed; it returns the renames to make and the
// folders it created. On failure it removes what it made.
func (t *Tree) stage(writes []Write) (journal, []string, error) {
	var (
		j       journal
		created []string
	)
	for i, w := range writes {
		dir := path.Dir(w.Path)
		made, err := t.mkdirs(dir)
		created = append(created, made...)
		if err != nil {
			t.unstage(j, created)
			return journal{}, nil, fmt.Errorf("write %s: %w", w.Path, err)
		}
		perm := fs.FileMode(0o644)
		if fi, err := t.fs.Lstat(t.full(w.Path)); err == nil {
			perm = fi.Mode().Perm()
		}
		tmp, err := t.createTemp(dir, strconv.Itoa(i), w.Data, perm)
		if err != nil {
			t.unstage(j, created)
			return journal{}, nil, fmt.Errorf("write %s: %w", w.Path, err)
		}
		j.Renames = append(j.Renames, [2]string{tmp, w.Path})
	}
	return j, created, nil
}

// unstage removes the staged files and the folders made for them. If the
// file system refuses even that, what is left are temporary files and
// empty folders: no reader takes them for objects, and the next commit
// removes the files.
func (t *Tree) unstage(j journal, created []string) {
	for _, r := range j.Renames {
		_ = t.fs.Remove(t.full(r[0]))
	}
	for i := len(created) - 1; i >= 0; i-- {
		_ = t.fs.Remove(t.full(created[i]))
	}
}

// mkdirs creates the missing folders of dir, returning those it made.
func (t *Tree) mkdirs(dir string) ([]string, error) {
	if dir == "." {
		return nil, nil
	}
	var made []string
	parts := strings.Split(dir, "/")
	for i := range parts {
		rel := strings.Join(parts[:i+1], "/")
		err := t.fs.Mkdir(t.full(rel), 0o755)
		switch {
		case err == nil:
			made = append(made, rel)
		case errors.Is(err, fs.ErrExist):
			// checkOnDisk made sure it is a folder, not a link.
		default:
			return made, err
		}
	}
	return made, nil
}

func (t *Tree) createTemp(dir, tag string, data []byte, perm fs.FileMode) (string, error) {
	for {
		var b [4]byte
		if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
			return "", err
		}
		name := path.Join(dir, tempPrefix+tag+"-"+hex.EncodeToString(b[:])+tempSuffix)
		err := t.fs.Create(t.full(name), data, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, err
	}
}

func (t *Tree) full(rel string) string { return filepath.Join(t.Root, filepath.FromSlash(rel)) }

// writeJournal commits: once the journal is in place, the run's changes
// are made, if not by this process then by the next run.
func (t *Tree) writeJournal(j journal) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	tmp := t.full(JournalFile + tempSuffix)
	_ = t.fs.Remove(tmp)
	if err := t.fs.Create(tmp, b, 0o644); err != nil {
		_ = t.fs.Remove(tmp)
		return fmt.Errorf("write %s: %w", JournalFile, err)
	}
	if err := t.fs.Rename(tmp, t.full(JournalFile)); err != nil {
		_ = t.fs.Remove(tmp)
		return fmt.Errorf("write %s: %w", JournalFile, err)
	}
	return nil
}

// apply carries out a committed journal. Every step may already have been
// done by an interrupted run: a staged file that is gone was renamed, a
// file to delete that is gone was deleted.
func apply(fsys FS, root string, j journal) error {
	full := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	for _, r := range j.Renames {
		if err := fsys.Rename(full(r[0]), full(r[1])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write %s: %w", r[1], err)
		}
	}
	for _, d := range j.Deletes {
		if err := fsys.Remove(full(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", d, err)
		}
		removeEmptyParents(fsys, root, path.Dir(d))
	}
	for _, tmp := range j.Temps {
		_ = fsys.Remove(full(tmp))
	}
	if err := fsys.Remove(full(JournalFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", JournalFile, err)
	}
	return nil
}

// removeEmptyParents removes the folders a deletion left empty, up to the
// root (a folder that is not empty refuses).
func removeEmptyParents(fsys FS, root, rel string) {
	for rel != "." && rel != "" {
		if err := fsys.Remove(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			return
		}
		rel = path.Dir(rel)
	}
}

// Recover finishes the commit of a run that was interrupted after it
// committed, if the journal of one is in root; it reports whether there was
// one. A journal that is not ours (paths outside the tree, links, files
// that are not our temporary files) is an error, and nothing is changed.
func Recover(root string) (bool, error) {
	return recoverJournal(root, OS)
}

func recoverJournal(root string, fsys FS) (bool, error) {
	name := filepath.Join(root, JournalFile)
	r, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	b, err := io.ReadAll(io.LimitReader(r, 64<<20))
	r.Close()
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return false, fmt.Errorf("%s: must be the journal of an interrupted run: %w (delete it and restore the tree from Git)", name, err)
	}
	t := &Tree{Root: root, fs: fsys}
	bad := func(p string, err error) (bool, error) {
		return false, fmt.Errorf("%s: %s: %w (delete it and restore the tree from Git)", name, p, err)
	}
	temp := func(p string) error {
		if err := checkRelative(p); err != nil {
			return err
		}
		if !isTemp(path.Base(p)) {
			return errors.New("must be a temporary file of istio-gitops")
		}
		return t.checkOnDisk(p)
	}
	for _, rn := range j.Renames {
		if err := temp(rn[0]); err != nil {
			return bad(rn[0], err)
		}
		if path.Dir(rn[0]) != path.Dir(rn[1]) {
			return bad(rn[0], errors.New("must be next to its target "+rn[1]))
		}
		if err := checkJournalPath(t, rn[1]); err != nil {
			return bad(rn[1], err)
		}
	}
	for _, d := range j.Deletes {
		if err := checkJournalPath(t, d); err != nil {
			return bad(d, err)
		}
	}
	for _, tmp := range j.Temps {
		if err := temp(tmp); err != nil {
			return bad(tmp, err)
		}
	}
	return true, apply(fsys, root, j)
}

func checkJournalPath(t *Tree, p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	return t.checkOnDisk(p)
}
