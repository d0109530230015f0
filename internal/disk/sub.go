package disk

import (
	"path/filepath"
	"strings"
)

// Sub is the part of t below the folder rel (slash, relative to t.Root;
// "" for t's own), less the folders of except below it: a tree of its own
// whose files' paths are relative to rel, so that its commit (and its
// journal) stay in rel. Several trees read at once from a parent folder
// are each written as their own unit.
func (t *Tree) Sub(rel string, except []string) *Tree {
	s := &Tree{Root: t.Root, fs: t.fs}
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
	for _, tmp := range t.temps {
		if p, ok := below(tmp, rel, except); ok {
			s.temps = append(s.temps, p)
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
