package disk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Decode reads the objects of one YAML file as kio.ByteReader reads them for
// `kustomize fn run` (the same documents, the same path, index and
// seqindent annotations), one document at a time, and calls fn with each:
// a file is never held whole, whatever its size. Unlike ByteReader, line
// numbers (in nodes and in errors) count from the top of the file, not of
// the document.
func Decode(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		doc       []byte
		docLine   = 0 // lines of the file before doc
		lines     = 0 // lines read so far
		index     = 0
		prevSep   = false
		firstLine = true
	)
	// kio splits on "\n---...\n" and gives every document but the last
	// its final newline back: a document is its lines as they are.
	flush := func() error {
		obj, err := decodeDocument(doc, docLine, path, index)
		if err != nil {
			return err
		}
		if obj == nil {
			return nil
		}
		index++
		return fn(obj)
	}
	for {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %w", path, err)
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
				return fmt.Errorf("%s: line %d: invalid document separator: %s", path, lines+1, bytes.TrimSpace(line))
			}
			if err := flush(); err != nil {
				return err
			}
			lines++
			doc = doc[:0]
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
// line numbers shifted by offset; nil for an empty document.
func decodeDocument(text []byte, offset int, path string, index int) (*yaml.RNode, error) {
	node := &yaml.Node{}
	if err := yaml.NewDecoder(bytes.NewReader(text)).Decode(node); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
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
	if k := n.YNode().Kind; k != yaml.MappingNode {
		// kio fails on these too, with a less helpful message.
		return nil, fmt.Errorf("%s: line %d: document %d must be a mapping (a Kubernetes object), not a %s",
			path, n.YNode().Line+offset, index, object.KindName(k))
	}
	if offset > 0 {
		shiftLines(node, offset)
	}
	// Before any accessor reads it: kyaml's panic on some shapes.
	if err := object.CheckShape(n); err != nil {
		return nil, fmt.Errorf("%s: document %d: %w", path, index, err)
	}
	if err := kioutil.CopyLegacyAnnotations(n); err != nil {
		return nil, fmt.Errorf("%s: document %d: %w", path, index, err)
	}
	annotations := [][2]string{
		{kioutil.PathAnnotation, path},
		{kioutil.LegacyPathAnnotation, path},
		{kioutil.IndexAnnotation, strconv.Itoa(index)},
		{kioutil.LegacyIndexAnnotation, strconv.Itoa(index)},
	}
	if style := yaml.DeriveSeqIndentStyle(string(text)); style != "" {
		annotations = append(annotations, [2]string{kioutil.SeqIndentAnnotation, style})
	}
	// kio sets them in key order, so the output does not depend on it.
	sortAnnotations(annotations)
	for _, kv := range annotations {
		if _, err := n.Pipe(yaml.SetAnnotation(kv[0], kv[1])); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, index, err)
		}
	}
	return n, nil
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
