package disk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"runtime"
	"strconv"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Decode reads the objects of one YAML file as kio.ByteReader reads them for
// `kustomize fn run` (the same documents, the same path, index and
// seqindent annotations), one document at a time, and calls fn with each,
// in the file's order: a file is never held whole, whatever its size.
// Unlike ByteReader, line numbers (in nodes and in errors) count from the
// top of the file, not of the document. A large file's documents are
// decoded by several goroutines a few documents ahead of fn.
func Decode(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || sizeOf(r) < parallelFrom {
		d := &decoder{path: path, fn: fn}
		return split(r, path, func(c chunk) error { return d.take(c.decode(path)) })
	}
	return decodeAhead(r, path, fn, workers)
}

// parallelFrom is the size from which Decode decodes ahead: below it, the
// goroutines cost more than they save.
var parallelFrom int64 = 256 << 10

// sizeOf is the number of bytes r holds, when it says; -1 otherwise.
func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return -1
}

// A chunk is one document's text, or what splitting the file found wrong
// where the document would be.
type chunk struct {
	text   []byte
	offset int // lines of the file before text
	err    error
}

// A decoded document, not yet numbered: nil for an empty one.
type decoded struct {
	node  *yaml.RNode
	style string // its sequence indentation
	err   error
	// shape is what is wrong with the document's shape, told with its
	// index once it is numbered.
	shape error
	// notMapping is the kind of a document that is not a mapping, on line.
	notMapping yaml.Kind
	line       int
	// panicked is a panic of the goroutine that decoded the document,
	// raised again where fn is called.
	panicked any
}

func (c chunk) decode(path string) decoded {
	if c.err != nil {
		return decoded{err: c.err}
	}
	n, err := decodeDocument(c.text, c.offset, path)
	if err != nil || n == nil {
		return decoded{err: err}
	}
	if k := n.YNode().Kind; k != yaml.MappingNode {
		return decoded{notMapping: k, line: n.YNode().Line}
	}
	// Before any accessor reads it: kyaml's panic on some shapes.
	if err := object.CheckShape(n); err != nil {
		return decoded{shape: err}
	}
	return decoded{node: n, style: yaml.DeriveSeqIndentStyle(string(c.text))}
}

// decodeRecovering is decode on another goroutine than fn's: a panic is
// handed over with the document.
func (c chunk) decodeRecovering(path string) (doc decoded) {
	defer func() {
		if r := recover(); r != nil {
			doc = decoded{panicked: r}
		}
	}()
	return c.decode(path)
}

// A decoder numbers the decoded documents in the file's order and hands
// them to fn.
type decoder struct {
	path  string
	index int
	fn    func(*yaml.RNode) error
}

func (d *decoder) take(doc decoded) error {
	if doc.panicked != nil {
		panic(doc.panicked)
	}
	switch {
	case doc.err != nil:
		return doc.err
	case doc.notMapping != 0:
		// kio fails on these too, with a less helpful message.
		return fmt.Errorf("%s: line %d: document %d must be a mapping (a Kubernetes object), not a %s",
			d.path, doc.line, d.index, object.KindName(doc.notMapping))
	case doc.shape != nil:
		return fmt.Errorf("%s: document %d: %w", d.path, d.index, doc.shape)
	case doc.node == nil:
		return nil
	}
	if err := annotate(doc.node, d.path, d.index, doc.style); err != nil {
		return err
	}
	d.index++
	return d.fn(doc.node)
}

// decodeAhead is Decode with workers goroutines decoding the documents
// that split finds, at most 2*workers of them ahead of fn.
func decodeAhead(r io.Reader, path string, fn func(*yaml.RNode) error, workers int) error {
	type job struct {
		chunk
		out chan decoded
	}
	var (
		jobs  = make(chan job)
		order = make(chan chan decoded, 2*workers)
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				j.out <- j.decodeRecovering(path)
			}
		})
	}
	wg.Go(func() {
		defer close(order)
		defer close(jobs)
		// What split finds wrong comes as a chunk, in its place; it
		// returns errStopped alone.
		_ = split(r, path, func(c chunk) error {
			j := job{chunk: c, out: make(chan decoded, 1)}
			select {
			case order <- j.out:
			case <-stop:
				return errStopped
			}
			select {
			case jobs <- j:
				return nil
			case <-stop:
				return errStopped
			}
		})
	})
	d := &decoder{path: path, fn: fn}
	var err error
	for out := range order {
		if err = d.take(<-out); err != nil {
			break
		}
	}
	close(stop)
	// Unblock the splitter and let the workers finish what they hold.
	for range order {
	}
	wg.Wait()
	return err
}

var errStopped = errors.New("decoding stopped")

// split reads r line by line and calls fn with each document as kio splits
// them, or with a chunk holding what is wrong with the file.
//
// Its buffers are pooled: a run splits thousands of files, each a 64 KiB
// reader and a document's worth of lines.
func split(r io.Reader, path string, fn func(chunk) error) error {
	sb := splitPool.Get().(*splitBuffers)
	sb.br.Reset(r)
	br := sb.br
	defer func() {
		sb.br.Reset(nil)
		if cap(sb.doc) > maxKeptDoc {
			sb.doc = nil
		}
		splitPool.Put(sb)
	}()
	var (
		// doc gathers a document's lines; each document is then copied
		// out at its size. A slice grown line by line, or a line read
		// into a slice of its own, was a tenth of a run's time.
		doc       = sb.doc[:0]
		long      []byte // a line longer than br's buffer
		docLine   = 0    // lines of the file before doc
		lines     = 0    // lines read so far
		prevSep   = false
		firstLine = true
	)
	// kio splits on "\n---...\n" and gives every document but the last
	// its final newline back: a document is its lines as they are.
	flush := func() error {
		c := chunk{text: bytes.Clone(doc), offset: docLine}
		doc = doc[:0]
		sb.doc = doc
		return fn(c)
	}
	for {
		// line is br's own until the next read: only copied from.
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fn(chunk{err: fmt.Errorf("%s: %w", path, err)})
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			break
		}
		line = crlf(line)
		complete := line[len(line)-1] == '\n'
		// A separator is a line starting with --- that ends in a newline
		// and follows a newline that was not the end of a separator itself
		// (kio's regexp `\n---.*\n` consumes both newlines).
		if !firstLine && !prevSep && complete && bytes.HasPrefix(line, []byte("---")) {
			if rest := bytes.TrimSpace(line[3:]); len(rest) > 0 && rest[0] != '#' {
				return fn(chunk{err: fmt.Errorf("%s: line %d: invalid document separator: %s", path, lines+1, bytes.TrimSpace(line))})
			}
			if err := flush(); err != nil {
				return err
			}
			lines++
			docLine = lines
			prevSep = true
			continue
		}
		prevSep = false
		firstLine = false
		doc = append(doc, line...)
		lines++
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if firstLine && len(doc) == 0 {
		return nil
	}
	return flush()
}

// crlf turns a line's Windows ending into "\n", as kio does for the whole
// input before splitting it.
func crlf(line []byte) []byte {
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line = line[:n-1]
		line[n-2] = '\n'
	}
	return line
}

var errLine = regexp.MustCompile(`line ([0-9]+)`)

// decodeDocument decodes one document as kio.ByteReader.decode does, with
// line numbers shifted by offset; nil for an empty document. It reads
// nothing but text: documents decode concurrently.
func decodeDocument(text []byte, offset int, path string) (*yaml.RNode, error) {
	node := &yaml.Node{}
	if err := yaml.NewDecoder(bytes.NewReader(text)).Decode(node); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if lines := ConflictLines(text); len(lines) > 0 {
			for i := range lines {
				lines[i] += offset
			}
			return nil, &ConflictError{Path: path, Lines: lines}
		}
		msg := errLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
			n, _ := strconv.Atoi(m[len("line "):])
			return "line " + strconv.Itoa(n+offset)
		})
		return nil, fmt.Errorf("%s: %s", path, msg)
	}
	if yaml.IsYNodeEmptyDoc(node) {
		return nil, nil
	}
	n := yaml.NewRNode(node)
	if yaml.IsMissingOrNull(n) {
		return nil, nil
	}
	if offset > 0 {
		shiftLines(node, offset)
	}
	return n, nil
}

// annotate gives a decoded document the annotations kio.ByteReader gives
// it: its path, its index among the file's documents, its sequence
// indentation.
func annotate(n *yaml.RNode, path string, index int, style string) error {
	if err := kioutil.CopyLegacyAnnotations(n); err != nil {
		return fmt.Errorf("%s: document %d: %w", path, index, err)
	}
	annotations := [][2]string{
		{kioutil.PathAnnotation, path},
		{kioutil.LegacyPathAnnotation, path},
		{kioutil.IndexAnnotation, strconv.Itoa(index)},
		{kioutil.LegacyIndexAnnotation, strconv.Itoa(index)},
	}
	if style != "" {
		annotations = append(annotations, [2]string{kioutil.SeqIndentAnnotation, style})
	}
	// kio sets them in key order, so the output does not depend on it.
	sortAnnotations(annotations)
	for _, kv := range annotations {
		if _, err := n.Pipe(yaml.SetAnnotation(kv[0], kv[1])); err != nil {
			return fmt.Errorf("%s: document %d: %w", path, index, err)
		}
	}
	return nil
}

func sortAnnotations(kvs [][2]string) {
	for i := 1; i < len(kvs); i++ {
		for j := i; j > 0 && kvs[j][0] < kvs[j-1][0]; j-- {
			kvs[j], kvs[j-1] = kvs[j-1], kvs[j]
		}
	}
}

// shiftLines adds offset to the line of every node of a document. Aliases
// are not followed: their anchors are shifted where they stand, and a
// document of nested aliases is walked in linear time.
func shiftLines(n *yaml.Node, offset int) {
	if n == nil {
		return
	}
	n.Line += offset
	for _, c := range n.Content {
		shiftLines(c, offset)
	}
}

// splitBuffers are what split reads a file through.
type splitBuffers struct {
	br  *bufio.Reader
	doc []byte
}

// maxKeptDoc bounds the document buffer a pooled splitBuffers keeps.
const maxKeptDoc = 1 << 20

var splitPool = sync.Pool{New: func() any {
	return &splitBuffers{br: bufio.NewReaderSize(nil, 64<<10)}
}}
