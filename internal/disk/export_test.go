package disk

import (
	"io"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// DecodeAhead is Decode as it reads a large file, whatever the size.
func DecodeAhead(r io.Reader, path string, fn func(*yaml.RNode) error) error {
	return decodeAhead(r, path, fn, 3)
}
