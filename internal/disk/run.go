package disk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/yamlemit"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Run reads root as `kustomize fn run` does, runs p over its objects with
// fnConfig (nil: p finds its configs among the objects) and commits the
// result: files whose objects were not emitted are deleted, files whose
// objects p left untouched keep their bytes (their own formatting
// included), the rest are laid out by kyaml's writer as kustomize fn run
// and kpt lay them out. Nothing is written when p fails or reports an
// error. The tree is locked from the read to the commit, and what an
// interrupted command left is finished or undone first (see Open).
func Run(root string, p framework.ResourceListProcessor, fnConfig *yaml.RNode) (framework.Results, error) {
	return RunCommand("run", root, p, fnConfig)
}

// RunCommand is Run for the named command (its journal says which).
func RunCommand(command, root string, p framework.ResourceListProcessor, fnConfig *yaml.RNode) (framework.Results, error) {
	t, lock, results, err := Open(root)
	defer lock.Unlock()
	if err != nil {
		return results, err
	}
	t.Origin.Command = command
	if fnConfig != nil {
		if s, err := fnConfig.String(); err == nil {
			t.Origin.Config = Digest([]byte(s))
		}
	}
	more, writes, deletes, err := t.Plan(p, fnConfig)
	results = append(results, more...)
	if err != nil {
		return results, err
	}
	return results, t.Commit(writes, deletes)
}

// Plan runs p over the tree's objects as Run does, and returns what Run
// would write and delete, writing nothing. Each call reads the files
// again: a plan never sees another's edits.
func (t *Tree) Plan(p framework.ResourceListProcessor, fnConfig *yaml.RNode) (framework.Results, []Write, []string, error) {
	items, err := t.Objects()
	if err != nil {
		return nil, nil, nil, err
	}
	before := groupByFile(items)
	prints := fingerprints(items)
	rl := &framework.ResourceList{Items: items, FunctionConfig: fnConfig}
	if err := p.Process(rl); err != nil {
		return rl.Results, nil, nil, err
	}
	if rl.Results.ExitCode() != 0 {
		return rl.Results, nil, nil, fmt.Errorf("the run reported errors; nothing was written")
	}
	writes, deletes, err := Changes(t, before, groupByFile(rl.Items), prints)
	return rl.Results, writes, deletes, err
}

// Open begins a command that writes the tree at root: it takes the tree's
// lock (see LockTree), finishes or undoes the commit of an earlier command
// that was interrupted (see Recover), and reads the tree (see Read). The
// results warn of what was recovered and of stray temporary files. The
// caller unlocks the lock (nil-safe) once it committed or failed.
func Open(root string) (*Tree, *Lock, framework.Results, error) {
	return open(root, false)
}

// OpenBelow is Open for a command over a folder of trees: Read refuses a
// folder holding the journal of a commit interrupted below root (a tree
// of the folder, run alone), so those commits are finished or undone too
// (see RecoverBelow), under root's lock, and root read again.
func OpenBelow(root string) (*Tree, *Lock, framework.Results, error) {
	return open(root, true)
}

func open(root string, below bool) (*Tree, *Lock, framework.Results, error) {
	lock, err := LockTree(root, true)
	if err != nil {
		return nil, nil, nil, err
	}
	var results framework.Results
	warn := func(msg string) {
		if msg != "" {
			results = append(results, &framework.Result{Severity: framework.Warning, Message: msg})
		}
	}
	var t *Tree
	msg, err := Recover(root)
	if err == nil {
		warn(msg)
		t, err = Read(root)
	}
	if err != nil && below {
		said, rerr := RecoverBelow(root)
		if rerr != nil {
			return nil, lock, results, rerr
		}
		if len(said) == 0 {
			return nil, lock, results, err
		}
		for _, msg := range said {
			warn(msg)
		}
		t, err = Read(root)
	}
	if err != nil {
		return nil, lock, results, err
	}
	warn(t.StraysWarning())
	return t, lock, results, nil
}

// Changes compares a tree's files as read (before, with the fingerprints
// of their objects) with the files a run emits (after): the files to write
// and those to delete.
func Changes(t *Tree, before, after map[string][]*yaml.RNode, prints map[*yaml.RNode]uint64) ([]Write, []string, error) {
	now := fingerprints(flatten(after))
	var changed []string
	for _, f := range slices.Sorted(maps.Keys(after)) {
		if !untouched(before[f], after[f], prints, now) {
			changed = append(changed, f)
		}
	}
	// Laying files out is most of a run's time; use every core.
	layouts := make([][]byte, len(changed))
	if err := Parallel(len(changed), func(i int) error {
		data, err := FileBytes(after[changed[i]])
		if err != nil {
			return fmt.Errorf("%s: %w", changed[i], err)
		}
		layouts[i] = data
		return nil
	}); err != nil {
		return nil, nil, err
	}
	files := map[string]*File{}
	for _, f := range t.Files {
		files[f.Path] = f
	}
	var writes []Write
	for i, f := range changed {
		if old, ok := files[f]; ok {
			b, err := old.Bytes()
			if err != nil {
				return nil, nil, err
			}
			if bytes.Equal(b, layouts[i]) {
				continue
			}
		}
		writes = append(writes, Write{Path: f, Data: layouts[i]})
	}
	var deletes []string
	for _, f := range slices.Sorted(maps.Keys(before)) {
		if _, kept := after[f]; !kept {
			deletes = append(deletes, f)
		}
	}
	return writes, deletes, nil
}

// FileBytes is a file's content as kyaml's writer lays it out (as
// kustomize fn run, kpt and istio-gitops run write it), less every
// annotation that readers and orchestrators add: the bytes of a file do
// not depend on which tool read it. (The writer lays sequences out as the
// seqindent annotation says before it drops it.)
func FileBytes(nodes []*yaml.RNode) ([]byte, error) {
	var b bytes.Buffer
	clear := map[string]bool{}
	for _, n := range nodes {
		for k := range n.GetAnnotations() {
			if IsReaderAnnotation(k) {
				clear[k] = true
			}
		}
	}
	w := kio.ByteWriter{Writer: &b, ClearAnnotations: slices.Sorted(maps.Keys(clear))}
	// ByteWriter works on its own copies of the nodes.
	if err := w.Write(nodes); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func flatten(files map[string][]*yaml.RNode) []*yaml.RNode {
	var all []*yaml.RNode
	for _, f := range slices.Sorted(maps.Keys(files)) {
		all = append(all, files[f]...)
	}
	return all
}

// untouched reports whether a file's objects are the ones read, in the same
// order, unchanged: such a file need not even be laid out again.
func untouched(before, after []*yaml.RNode, then, now map[*yaml.RNode]uint64) bool {
	if len(before) != len(after) {
		return false
	}
	for i := range after {
		if before[i] != after[i] || then[after[i]] != now[after[i]] {
			return false
		}
	}
	return true
}

// fingerprints hashes every item, on every core.
func fingerprints(items []*yaml.RNode) map[*yaml.RNode]uint64 {
	sums := make([]uint64, len(items))
	_ = Parallel(len(items), func(i int) error {
		sums[i] = Fingerprint(items[i].YNode())
		return nil
	})
	m := make(map[*yaml.RNode]uint64, len(items))
	for i, it := range items {
		m[it] = sums[i]
	}
	return m
}

// Fingerprint hashes everything the writer would print of a node: a walk
// is far cheaper than laying the node out. An alias is hashed by the name
// of its anchor, which the writer prints, and is not followed: a document
// of nested aliases costs its size, not the size it expands to.
func Fingerprint(n *yaml.Node) uint64 {
	h := fnv.New64a()
	var num [8]byte
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		binary.LittleEndian.PutUint64(num[:], uint64(n.Kind)<<48|uint64(n.Style)<<32|uint64(len(n.Content)))
		h.Write(num[:])
		for _, s := range [...]string{n.Tag, n.Value, n.Anchor, n.HeadComment, n.LineComment, n.FootComment} {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return h.Sum64()
}

func groupByFile(items []*yaml.RNode) map[string][]*yaml.RNode {
	files := map[string][]*yaml.RNode{}
	for _, it := range items {
		p := object.Path(it)
		files[p] = append(files[p], it)
	}
	for _, nodes := range files {
		slices.SortStableFunc(nodes, func(a, b *yaml.RNode) int { return object.Index(a) - object.Index(b) })
	}
	return files
}

// IsReaderAnnotation reports whether an annotation is one that readers and
// orchestrators (kustomize, kpt) add and writers strip: a file on disk
// never holds it.
func IsReaderAnnotation(key string) bool {
	switch key {
	case kioutil.LegacyPathAnnotation, kioutil.LegacyIndexAnnotation, kioutil.LegacyIdAnnotation:
		return true
	}
	return strings.HasPrefix(key, "internal.config.kubernetes.io/")
}

// EncodeOwned lays out one object as FileBytes does, without the copy
// FileBytes makes: the caller owns the object, and its reader annotations
// are removed from it first.
func EncodeOwned(n *yaml.RNode) ([]byte, error) {
	if err := StripReaderAnnotations(n); err != nil {
		return nil, err
	}
	return Encode(n)
}

// StripReaderAnnotations removes from an object the annotations a file on
// disk never holds (see IsReaderAnnotation), and an emptied annotations
// field.
func StripReaderAnnotations(n *yaml.RNode) error {
	for k := range n.GetAnnotations() {
		if IsReaderAnnotation(k) {
			if _, err := n.Pipe(yaml.ClearAnnotation(k)); err != nil {
				return err
			}
		}
	}
	return yaml.ClearEmptyAnnotations(n)
}

// Encode lays out one object as orchestrators lay out a function's files
// (kyaml's encoder: two spaces, compact sequences), through yamlemit, the
// same encoder without its cost on large objects. It only reads the
// object: objects may be encoded concurrently. The bytes are an exact copy
// of what the encoder wrote in a buffer of its own: the caller keeps them
// until the tree is written, and a grown buffer is up to twice as long as
// its content.
func Encode(n *yaml.RNode) ([]byte, error) {
	b := buffers.Get().(*bytes.Buffer)
	defer func() {
		b.Reset()
		buffers.Put(b)
	}()
	enc := yamlemit.NewEncoder(b)
	enc.SetIndent(yaml.DefaultIndent)
	enc.CompactSeqIndent()
	if err := enc.Encode(n.Document()); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(b.Bytes()), nil
}

// buffers are what Encode lays objects out in.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
