package patch

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// FileBytes is the content of the file holding node alone, as the tree is
// written: what kio.ByteWriter writes for it once the annotations that place
// it in a file or stream are cleared.
func FileBytes(node *yaml.RNode) ([]byte, error) {
	c := node.Copy()
	for _, k := range readerAnnotations(c) {
		if _, err := c.Pipe(yaml.ClearAnnotation(k)); err != nil {
			return nil, fmt.Errorf("%s %q: %w", c.GetKind(), c.GetName(), err)
		}
	}
	var b bytes.Buffer
	if err := (kio.ByteWriter{Writer: &b}).Write([]*yaml.RNode{c}); err != nil {
		return nil, fmt.Errorf("%s %q: %w", c.GetKind(), c.GetName(), err)
	}
	return b.Bytes(), nil
}
