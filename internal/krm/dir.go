package krm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// RunDir reads dir as `kustomize fn run` does, runs p over it with fnConfig
// (nil: every config of ours found in dir) and writes dir back: files whose
// objects were not emitted are deleted, files whose objects the run left
// untouched keep their bytes (their own formatting included), the rest are
// laid out by kyaml's writer as kustomize fn run and kpt do. Nothing is written when p fails or
// reports an error.
func RunDir(dir string, p framework.ResourceListProcessor, fnConfig *yaml.RNode) (framework.Results, error) {
	items, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	before := groupByFile(items)
	prints := fingerprints(items)
	rl := &framework.ResourceList{Items: items, FunctionConfig: fnConfig}
	if err := p.Process(rl); err != nil {
		return rl.Results, err
	}
	if rl.Results.ExitCode() != 0 {
		return rl.Results, fmt.Errorf("the run reported errors; nothing was written")
	}
	after := groupByFile(rl.Items)
	type write struct {
		path string
		data []byte
	}
	var changed []string
	now := fingerprints(rl.Items)
	for _, f := range sortedKeys(after) {
		if !untouched(before[f], after[f], prints, now) {
			changed = append(changed, f)
		}
	}
	// Laying files out is most of a run's time; use every core.
	layouts := make([][]byte, len(changed))
	if err := Parallel(len(changed), func(i int) error {
		data, err := fileBytes(after[changed[i]])
		if err != nil {
			return fmt.Errorf("%s: %w", changed[i], err)
		}
		layouts[i] = data
		return nil
	}); err != nil {
		return rl.Results, err
	}
	var writes []write
	for i, f := range changed {
		data := layouts[i]
		if _, existed := before[f]; existed {
			same, err := sameFile(filepath.Join(dir, filepath.FromSlash(f)), data)
			if err != nil {
				return rl.Results, err
			}
			if same {
				continue
			}
		}
		writes = append(writes, write{f, data})
	}
	for _, w := range writes {
		full := filepath.Join(dir, filepath.FromSlash(w.path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return rl.Results, fmt.Errorf("write %s: %w", w.path, err)
		}
		if err := os.WriteFile(full, w.data, 0o644); err != nil {
			return rl.Results, fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	for _, f := range sortedKeys(before) {
		if _, kept := after[f]; kept {
			continue
		}
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(f))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return rl.Results, fmt.Errorf("delete %s: %w", f, err)
		}
		removeEmptyParents(dir, filepath.Dir(filepath.FromSlash(f)))
	}
	return rl.Results, nil
}

// ReadDir reads the objects of the YAML and JSON files below dir as
// kio.LocalPackageReader does for `kustomize fn run` (same files, same
// ignore rules, same annotations), parsing files on every core.
func ReadDir(dir string) ([]*yaml.RNode, error) {
	var files []string
	// The package reader walks and applies .krmignore; collect its choice
	// of files and parse them here.
	walker := kio.LocalPackageReader{
		PackagePath: dir,
		FileSkipFunc: func(rel string) bool {
			for _, g := range kio.MatchAll {
				if ok, _ := filepath.Match(g, filepath.Base(rel)); ok {
					files = append(files, rel)
					break
				}
			}
			return true
		},
	}
	if _, err := walker.Read(); err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	parsed := make([][]*yaml.RNode, len(files))
	err := Parallel(len(files), func(i int) error {
		rel := filepath.ToSlash(files[i])
		f, err := os.Open(filepath.Join(dir, files[i]))
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		defer f.Close()
		nodes, err := (&kio.ByteReader{
			DisableUnwrapping: true,
			Reader:            f,
			PreserveSeqIndent: true,
			SetAnnotations: map[string]string{
				kioutil.PathAnnotation:       rel,
				kioutil.LegacyPathAnnotation: rel,
			},
		}).Read()
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		parsed[i] = nodes
		return nil
	})
	if err != nil {
		return nil, err
	}
	var items []*yaml.RNode
	for _, nodes := range parsed {
		items = append(items, nodes...)
	}
	return items, nil
}

// Parallel runs fn(0..n-1) on every core and returns the error of the
// lowest index, so the error reported does not depend on scheduling.
func Parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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
		sums[i] = fingerprint(items[i].YNode())
		return nil
	})
	m := make(map[*yaml.RNode]uint64, len(items))
	for i, it := range items {
		m[it] = sums[i]
	}
	return m
}

// fingerprint hashes everything the writer would print of a node: a walk
// is far cheaper than laying the node out.
func fingerprint(n *yaml.Node) uint64 {
	h := fnv.New64a()
	var num [8]byte
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		binary.LittleEndian.PutUint64(num[:], uint64(n.Kind)<<48|uint64(n.Style)<<32|uint64(len(n.Content)))
		h.Write(num[:])
		for _, s := range [...]string{n.Tag, n.Value, n.HeadComment, n.LineComment, n.FootComment} {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		walk(n.Alias)
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return h.Sum64()
}

// sameFile reports whether the file at full already holds data: a
// function that emits what it read unchanged leaves the file alone.
func sameFile(full string, data []byte) (bool, error) {
	old, err := os.ReadFile(full)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", full, err)
	}
	return bytes.Equal(old, data), nil
}

// fileBytes is a file's content as kyaml's writer lays it out.
func fileBytes(nodes []*yaml.RNode) ([]byte, error) {
	var b bytes.Buffer
	w := kio.ByteWriter{
		Writer: &b,
		ClearAnnotations: []string{
			kioutil.PathAnnotation, kioutil.LegacyPathAnnotation,
			kioutil.IdAnnotation, kioutil.LegacyIdAnnotation,
		},
	}
	// ByteWriter works on its own copies of the nodes.
	if err := w.Write(nodes); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func groupByFile(items []*yaml.RNode) map[string][]*yaml.RNode {
	files := map[string][]*yaml.RNode{}
	for _, it := range items {
		p := Path(it)
		files[p] = append(files[p], it)
	}
	for _, nodes := range files {
		slices.SortStableFunc(nodes, func(a, b *yaml.RNode) int { return Index(a) - Index(b) })
	}
	return files
}

// Index is an item's document index in its file.
func Index(n *yaml.RNode) int {
	_, i, _ := kioutil.GetFileAnnotations(n)
	var v int
	_, _ = fmt.Sscan(i, &v)
	return v
}

func sortedKeys(m map[string][]*yaml.RNode) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// removeEmptyParents removes the folders a deletion left empty, up to dir.
func removeEmptyParents(dir, rel string) {
	for rel != "." && rel != "" {
		if err := os.Remove(filepath.Join(dir, rel)); err != nil {
			return
		}
		rel = filepath.Dir(rel)
	}
}
