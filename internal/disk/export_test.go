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

// DecodeHeld is DecodeBytes of what r holds.
func DecodeHeld(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return DecodeBytes(b, path, fn)
}

// DecodeHeldAhead is DecodeHeld decoding ahead, whatever the size.
func DecodeHeldAhead(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return decodeWhole(b, path, fn, 3)
}
