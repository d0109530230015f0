// Package fileset holds the files of a tree during a run, read from disk
// (`istio-gitops run`) or grouped from a ResourceList (kustomize, kpt): a
// file is parsed only when a stage needs its objects, hashed without being
// parsed, and streamed object by object when it is large. A run passes the
// files it does not change through as they are, so writing the result back
// touches only what changed.
package fileset

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// File is one file of a tree.
type File struct {
	// Path is the file's slash path relative to the run's root.
	Path string

	src  *disk.File // where the bytes are, when read from disk
	once sync.Once
	data []byte // the bytes, once read or laid out
	objs []*yaml.RNode
	err  error
	// parsed reports whether objs holds the file's objects.
	parsed bool
}

// FromDisk is a file read from disk, parsed on demand.
func FromDisk(f *disk.File) *File { return &File{Path: f.Path, src: f} }

// FromObjects is a file holding objs, in order: a file of a ResourceList,
// or one a run makes. Each object is placed in the file (path and index
// annotations).
func FromObjects(path string, objs ...*yaml.RNode) (*File, error) {
	for i, o := range objs {
		if err := object.SetPath(o, path, i); err != nil {
			return nil, err
		}
	}
	return &File{Path: path, objs: objs, parsed: true}, nil
}

// FromBytes is a file a run makes whose bytes are laid out already; obj
// (optional) is its one object, kept when a later stage needs it.
func FromBytes(path string, data []byte, obj *yaml.RNode) *File {
	f := &File{Path: path, data: data}
	if obj != nil {
		f.objs, f.parsed = []*yaml.RNode{obj}, true
	}
	return f
}

// Named is f under another path, for messages: a file read outside the
// run's root.
func Named(path string, f *File) *File {
	return &File{Path: path, src: f.src, data: f.data, objs: f.objs, parsed: f.parsed}
}

// OnDisk reports whether the file was read from disk.
func (f *File) OnDisk() bool { return f.src != nil }

// Size is the file's size, when known without reading it (-1 otherwise).
func (f *File) Size() int64 {
	switch {
	case f.src != nil:
		return f.src.Size()
	case f.data != nil:
		return int64(len(f.data))
	}
	return -1
}

// Objects returns the file's objects, parsing it the first time.
func (f *File) Objects() ([]*yaml.RNode, error) {
	if f.parsed {
		return f.objs, nil
	}
	f.once.Do(func() {
		var b []byte
		b, f.err = f.Bytes()
		if f.err != nil {
			return
		}
		var objs []*yaml.RNode
		f.err = disk.DecodeBytes(b, f.Path, func(n *yaml.RNode) error {
			objs = append(objs, n)
			return nil
		})
		if f.err == nil {
			f.objs, f.parsed = objs, true
		}
	})
	return f.objs, f.err
}

// Stream calls fn with each object of the file, decoding it one document at
// a time when it is on disk: a large file is never held whole.
func (f *File) Stream(fn func(*yaml.RNode) error) error {
	if f.parsed || f.src == nil {
		objs, err := f.Objects()
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	}
	r, err := f.src.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	return disk.Decode(r, f.Path, fn)
}

// checkShape makes sure an object given to a run has the shape stages read
// without checking (see object.CheckShape); disk.Decode checks those it
// reads.
func checkShape(path string, n *yaml.RNode) error {
	if err := object.CheckShape(n); err != nil {
		return fmt.Errorf("%s: document %d: %w", path, object.Index(n), err)
	}
	return nil
}

// CheckPaths checks the paths of files given as objects (a ResourceList's
// items) as a tree's files on disk are (disk.CheckItemPath), and that no
// file is where another's folder must be: kustomize and kpt write each
// item to its path. An item's current and legacy path annotations must
// agree; an item without one keeps an empty path and passes.
func (s Set) CheckPaths() error {
	paths := map[string]bool{}
	for _, f := range s {
		if f.src != nil || f.Path == "" {
			continue
		}
		paths[f.Path] = true
		for _, o := range f.objs {
			a := o.GetAnnotations(kioutil.PathAnnotation, kioutil.LegacyPathAnnotation)
			if cur, legacy := a[kioutil.PathAnnotation], a[kioutil.LegacyPathAnnotation]; cur != "" && legacy != "" && cur != legacy {
				return fmt.Errorf("ResourceList item %s: annotations %s %q and %s %q must name the same file", object.Describe(o), kioutil.PathAnnotation, cur, kioutil.LegacyPathAnnotation, legacy)
			}
		}
		if err := disk.CheckItemPath(f.Path); err != nil {
			return fmt.Errorf("ResourceList item %s: %s: %w", describeItems(f.objs), kioutil.LegacyPathAnnotation, err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if paths[dir] {
				return fmt.Errorf("ResourceList items: %s must be a folder to hold %s, and a file too: items must not map to these paths", dir, p)
			}
		}
	}
	return nil
}

// describeItems names the objects of a file for messages.
func describeItems(objs []*yaml.RNode) string {
	if len(objs) == 0 {
		return "(none)"
	}
	return object.Describe(objs[0])
}

// CheckShapes checks the objects of every file given as objects (a
// ResourceList's items): see object.CheckShape.
func (s Set) CheckShapes() error {
	for _, f := range s {
		if f.src != nil || !f.parsed {
			continue
		}
		for _, o := range f.objs {
			if err := checkShape(f.Path, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// Bytes returns the file's bytes: as on disk, or laid out by kyaml's
// writer as kustomize and kpt write it.
func (f *File) Bytes() ([]byte, error) {
	if f.data != nil {
		return f.data, nil
	}
	var err error
	if f.src != nil {
		f.data, err = f.src.Bytes()
	} else {
		f.data, err = disk.FileBytes(f.objs)
	}
	if f.data == nil && err == nil {
		f.data = []byte{}
	}
	return f.data, err
}

// Mentions reports whether the file's bytes hold any of words, reading a
// file on disk in chunks without keeping it: a cheap look before parsing.
func (f *File) Mentions(words ...string) (bool, error) {
	if f.data != nil || f.src == nil {
		b, err := f.Bytes()
		if err != nil {
			return false, err
		}
		for _, w := range words {
			if bytes.Contains(b, []byte(w)) {
				return true, nil
			}
		}
		return false, nil
	}
	r, err := f.src.Open()
	if err != nil {
		return false, err
	}
	defer r.Close()
	longest := 0
	for _, w := range words {
		longest = max(longest, len(w))
	}
	bufp := chunks.Get().(*[]byte)
	defer chunks.Put(bufp)
	buf := *bufp
	if len(buf) <= 2*longest {
		buf = make([]byte, 2*longest+len(buf))
	}
	kept := 0 // bytes of the last read kept: a word may straddle two reads
	for {
		n, err := r.Read(buf[kept:])
		data := buf[:kept+n]
		for _, w := range words {
			if bytes.Contains(data, []byte(w)) {
				return true, nil
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", f.Path, err)
		}
		kept = copy(buf, data[len(data)-min(len(data), longest):])
	}
}

// chunks are the buffers files on disk are read through, a chunk at a
// time: a run over thousands of files makes no garbage of them.
var chunks = sync.Pool{New: func() any {
	b := make([]byte, 64<<10)
	return &b
}}

// Digest is the sha256 of the file's bytes, as a record keeps it. A file
// on disk is hashed without being kept in memory.
func (f *File) Digest() (string, error) {
	h := sha256.New()
	if f.data == nil && f.src != nil {
		r, err := f.src.Open()
		if err != nil {
			return "", err
		}
		defer r.Close()
		bufp := chunks.Get().(*[]byte)
		defer chunks.Put(bufp)
		// Not io.CopyBuffer: an *os.File's WriteTo would take a buffer of
		// its own.
		if _, err := io.CopyBuffer(h, struct{ io.Reader }{r}, *bufp); err != nil {
			return "", fmt.Errorf("read %s: %w", f.Path, err)
		}
	} else {
		b, err := f.Bytes()
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Set is the files of a tree, by path.
type Set []*File

// FromTree is the files of a tree read from disk.
func FromTree(t *disk.Tree) Set {
	s := make(Set, 0, len(t.Files))
	for _, f := range t.Files {
		s = append(s, FromDisk(f))
	}
	return s
}

// FromItems groups the items of a ResourceList by file. An item without a
// path annotation keeps an empty Path.
func FromItems(items []*yaml.RNode) Set {
	byPath := map[string][]*yaml.RNode{}
	var paths []string
	for _, it := range items {
		p := object.Path(it)
		if _, seen := byPath[p]; !seen {
			paths = append(paths, p)
		}
		byPath[p] = append(byPath[p], it)
	}
	slices.Sort(paths)
	s := make(Set, 0, len(paths))
	for _, p := range paths {
		objs := byPath[p]
		slices.SortStableFunc(objs, func(a, b *yaml.RNode) int { return cmp.Compare(object.Index(a), object.Index(b)) })
		s = append(s, &File{Path: p, objs: objs, parsed: true})
	}
	return s
}

// Sort orders the files by path.
func (s Set) Sort() {
	slices.SortStableFunc(s, func(a, b *File) int { return strings.Compare(a.Path, b.Path) })
}

// Items returns the objects of every file, by path and index: a
// ResourceList's items.
func (s Set) Items() ([]*yaml.RNode, error) {
	return disk.ParallelObjects(len(s), func(i int) ([]*yaml.RNode, error) { return s[i].Objects() })
}

// Processor is a function config's run over files rather than items.
type Processor interface {
	ProcessFiles(in Set, cfg *yaml.RNode) (Set, framework.Results, error)
}

// ProcessItems runs a ResourceList processor over files: every file is
// parsed, and a file whose objects the processor left as they were is
// passed through as it was read.
func ProcessItems(p framework.ResourceListProcessor, in Set, cfg *yaml.RNode, results framework.Results) (Set, framework.Results, error) {
	items, err := in.Items()
	if err != nil {
		return nil, results, err
	}
	prints := make(map[*yaml.RNode]uint64, len(items))
	for _, it := range items {
		prints[it] = disk.Fingerprint(it.YNode())
	}
	rl := &framework.ResourceList{Items: items, FunctionConfig: cfg, Results: results}
	if err := p.Process(rl); err != nil {
		return nil, rl.Results, err
	}
	byPath := map[string]*File{}
	for _, f := range in {
		byPath[f.Path] = f
	}
	var out Set
	for _, f := range FromItems(rl.Items) {
		if old := byPath[f.Path]; old != nil && sameObjects(old.objs, f.objs, prints) {
			out = append(out, old)
			continue
		}
		out = append(out, f)
	}
	return out, rl.Results, nil
}

func sameObjects(before, after []*yaml.RNode, prints map[*yaml.RNode]uint64) bool {
	if len(before) != len(after) {
		return false
	}
	for i := range after {
		if before[i] != after[i] || prints[after[i]] != disk.Fingerprint(after[i].YNode()) {
			return false
		}
	}
	return true
}

// Changes are what writing out back over in takes: the files out made or
// changed (laid out, on every core) whose bytes differ from the file on
// disk, and the files of in that out no longer has.
func Changes(in, out Set) ([]disk.Write, []string, error) {
	inputs := map[string]*File{}
	for _, f := range in {
		inputs[f.Path] = f
	}
	var made []*File
	kept := map[string]bool{}
	for _, f := range out {
		kept[f.Path] = true
		if inputs[f.Path] != f {
			made = append(made, f)
		}
	}
	writes := make([]*disk.Write, len(made))
	err := disk.Parallel(len(made), func(i int) error {
		f := made[i]
		data, err := f.Bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if old := inputs[f.Path]; old != nil {
			b, err := old.Bytes()
			if err != nil {
				return err
			}
			if bytes.Equal(b, data) {
				return nil
			}
		}
		writes[i] = &disk.Write{Path: f.Path, Data: data}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var ws []disk.Write
	for _, w := range writes {
		if w != nil {
			ws = append(ws, *w)
		}
	}
	var deletes []string
	for _, f := range in {
		if !kept[f.Path] {
			deletes = append(deletes, f.Path)
		}
	}
	return ws, deletes, nil
}
