package disk

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// Sub is the part of t below the folder rel (slash, relative to t.Root;
// "" for t's own), less the folders of except below it: a tree of its own
// whose files' paths are relative to rel, so that its commit (and its
// journal) stay in rel. Several trees read at once from a parent folder,
// under the parent's lock, are each written as their own unit. Its Origin
// is t's, with the configs below rel.
func (t *Tree) Sub(rel string, except []string) *Tree {
	s := &Tree{Root: t.Root, fs: t.fs, Origin: Origin{Command: t.Origin.Command, Config: t.Origin.Config}}
	if rel != "" {
		s.Root = filepath.Join(t.Root, filepath.FromSlash(rel))
	}
	for _, f := range t.Files {
		if p, ok := below(f.Path, rel, except); ok {
			c := *f
			c.Path = p
			s.Files = append(s.Files, &c)
		}
	}
	for _, p := range t.Strays {
		if p, ok := below(p, rel, except); ok {
			s.Strays = append(s.Strays, p)
		}
	}
	for _, c := range t.Origin.Configs {
		if p, ok := below(c, rel, except); ok {
			s.Origin.Configs = append(s.Origin.Configs, p)
		}
	}
	return s
}

// below is p relative to rel, if p is below rel and below none of except
// (folders deeper than rel).
func below(p, rel string, except []string) (string, bool) {
	if rel != "" {
		r, ok := strings.CutPrefix(p, rel+"/")
		if !ok {
			return "", false
		}
		p = r
	}
	for _, e := range except {
		if e == rel {
			continue
		}
		if rel == "" || strings.HasPrefix(e, rel+"/") {
			if strings.HasPrefix(p, strings.TrimPrefix(strings.TrimPrefix(e, rel), "/")+"/") {
				return "", false
			}
		}
	}
	return p, true
}

// RecoverBelow finishes or undoes, as Recover does, the commits that
// commands over folders below root (a tree of a parent folder, run alone)
// left interrupted: Read refuses a folder that holds one. It returns what
// each recovery says. The caller holds root's lock, which no command over
// a folder below can hold at the same time.
func RecoverBelow(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if base := d.Name(); !d.IsDir() && (base == JournalFile || base == stagingJournal) {
			if dir := filepath.Dir(p); filepath.Clean(dir) != filepath.Clean(root) && (len(dirs) == 0 || dirs[len(dirs)-1] != dir) {
				dirs = append(dirs, dir)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var said []string
	for _, dir := range dirs {
		msg, err := Recover(dir)
		if err != nil {
			return said, err
		}
		if msg != "" {
			said = append(said, msg)
		}
	}
	return said, nil
}
