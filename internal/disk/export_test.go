package disk

import (
	"io"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// DecodeAhead is Decode as it reads a large file, whatever the size.
func DecodeAhead(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	return decode(r, sizeOf(r), path, fn, 3, wholeUpTo)
}

// DecodeStreamed is Decode as it reads a file too large to hold whole,
// whatever the size.
func DecodeStreamed(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	return decode(r, sizeOf(r), path, fn, 1, -1)
}

// DecodeAheadStreamed is DecodeAhead as it reads a file too large to hold
// whole.
func DecodeAheadStreamed(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	return decode(r, sizeOf(r), path, fn, 3, -1)
}
