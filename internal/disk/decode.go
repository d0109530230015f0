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
// in the file's order. A file of up to wholeUpTo bytes is read at once and
// its documents decoded where they lie; a larger one is never held whole,
// whatever its size. Unlike ByteReader, line numbers (in nodes and in
// errors) count from the top of the file, not of the document. A large
// file's documents are decoded by several goroutines a few documents ahead
// of fn.
func Decode(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	size := sizeOf(r)
	return decode(r, size, path, fn, workersFor(size), wholeUpTo)
}

// DecodeBytes is Decode of a file's bytes held already: its documents are
// decoded where they lie, not copied first. It only reads b.
func DecodeBytes(b []byte, path string, fn func(*yaml.RNode) error) error {
	return decodeWhole(b, path, fn, workersFor(int64(len(b))))
}

// workersFor is how many goroutines decode a file of size bytes.
func workersFor(size int64) int {
	if size < parallelFrom {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// wholeUpTo is the size up to which Decode reads a file at once: every
// file of a tree and istioctl's output, not an input of hundreds of MB,
// which must stay within the memory budget.
const wholeUpTo = 8 << 20

// decode is Decode of a file of size bytes (-1 if not known), by workers
// goroutines ahead of fn if there are two or more.
func decode(r io.Reader, size int64, path string, fn func(*yaml.RNode) error, workers int, wholeUpTo int64) error {
	if size < 0 || size > wholeUpTo {
		return decodeFrom(r, nil, path, fn, workers)
	}
	b, err := readAll(r, size)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return decodeWhole(b, path, fn, workers)
}

// decodeWhole decodes a file held whole.
func decodeWhole(b []byte, path string, fn func(*yaml.RNode) error, workers int) error {
	// A Windows line ending is rewritten line by line as it is read.
	if bytes.Contains(b, []byte("\r\n")) {
		return decodeFrom(bytes.NewReader(b), nil, path, fn, workers)
	}
	if b == nil {
		b = []byte{} // nil is no file held whole
	}
	return decodeFrom(nil, b, path, fn, workers)
}

// decodeFrom decodes the file whole, or if it is nil, read from r.
func decodeFrom(r io.Reader, whole []byte, path string, fn func(*yaml.RNode) error, workers int) error {
	if workers < 2 {
		d := &decoder{path: path, fn: fn}
		// Decoded before the next is read: chunks may share split's buffer.
		return split(r, whole, path, false, func(c chunk) error { return d.take(c.decode(path)) })
	}
	return decodeAhead(r, whole, path, fn, workers)
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
	return decoded{node: n, style: seqIndentStyle(c.text)}
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
func decodeAhead(r io.Reader, whole []byte, path string, fn func(*yaml.RNode) error, workers int) error {
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
		_ = split(r, whole, path, true, func(c chunk) error {
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

// split reads r line by line, or the file whole if it is not nil, and
// calls fn with each document as kio splits them, or with a chunk holding
// what is wrong with the file. A chunk's text is its own if keep is set
// or it lies in whole; otherwise it is split's buffer, good until fn
// returns.
//
// Its buffers are pooled: a run splits thousands of files, each a 64 KiB
// reader and a document's worth of lines.
func split(r io.Reader, whole []byte, path string, keep bool, fn func(chunk) error) error {
	sb := splitPool.Get().(*splitBuffers)
	lr := &lineReader{br: sb.br, whole: whole}
	if whole == nil {
		sb.br.Reset(r)
	}
	defer func() {
		sb.br.Reset(nil)
		if cap(sb.doc) > maxKeptDoc {
			sb.doc = nil
		}
		splitPool.Put(sb)
	}()
	var (
		// doc gathers a document's lines: in a whole file, the slice
		// they lie in; otherwise a copy in the pooled buffer, copied out
		// at its size if kept. A slice grown line by line, or a line read
		// into a slice of its own, was a tenth of a run's time.
		doc       = sb.doc[:0]
		docLine   = 0 // lines of the file before doc
		lines     = 0 // lines read so far
		prevSep   = false
		firstLine = true
	)
	// kio splits on "\n---...\n" and gives every document but the last
	// its final newline back: a document is its lines as they are.
	flush := func() error {
		c := chunk{text: doc, offset: docLine}
		if whole == nil {
			if keep {
				c.text = bytes.Clone(doc)
			}
			sb.doc = doc[:0]
		}
		doc = doc[:0]
		return fn(c)
	}
	for {
		line, err := lr.next()
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
		doc = lr.extend(doc, line)
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

// A lineReader gives a file's lines as bufio.Reader's ReadSlice does:
// each with its newline, the last with io.EOF if it has none.
type lineReader struct {
	br   *bufio.Reader
	long []byte // a line longer than br's buffer
	// whole is the file, if it was read whole: its lines are slices of it.
	whole []byte
	pos   int
}

// next is the next line. Unless the file is whole, it is the reader's own
// until the next call: only copied from.
func (lr *lineReader) next() ([]byte, error) {
	if lr.whole != nil {
		start := lr.pos
		if start >= len(lr.whole) {
			return nil, io.EOF
		}
		i := bytes.IndexByte(lr.whole[start:], '\n')
		if i < 0 {
			lr.pos = len(lr.whole)
			return lr.whole[start:], io.EOF
		}
		lr.pos = start + i + 1
		return lr.whole[start:lr.pos], nil
	}
	line, err := lr.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		lr.long = append(lr.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = lr.br.ReadSlice('\n')
			lr.long = append(lr.long, line...)
		}
		line = lr.long
	}
	return line, err
}

// extend adds the line just read to doc. In a whole file the document's
// lines follow one another: doc grows over them, nothing is copied.
func (lr *lineReader) extend(doc, line []byte) []byte {
	if lr.whole == nil {
		return append(doc, line...)
	}
	if len(doc) == 0 {
		return line
	}
	return doc[:len(doc)+len(line)]
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
