package object

import "sigs.k8s.io/kustomize/kyaml/yaml"

// ClearComments removes every YAML comment of an object: those of its
// document (above or below it), and the head, line and foot comments of
// each node. Comments of a source document do not reach the function the
// same way in every mode, so the files made from it could not be the same
// bytes in every mode if any were kept:
//
//   - Under `kustomize fn run`, `kpt fn eval`, `kpt fn render` and on
//     stdin, the orchestrator reads each file with kio.ByteReader and wraps
//     the objects in a ResourceList with kio.ByteWriter, which appends each
//     object's mapping, not its document: a comment above the first key
//     that a blank line separates from it (Helm's "# Source:" heads) is the
//     document's and is gone before the function reads its input.
//   - The ResourceList nests each object two levels deeper than its file,
//     and yaml.v3 attaches a comment followed by a blank line at the end of
//     a list or mapping by its indentation: in a nested object it becomes
//     the next key's head comment, at the top it stays the foot comment of
//     the entry before it, so even the comments that survive print on
//     other lines.
//
// Block scalars (a ConfigMap's data) are values, not comments, and are
// kept as they are.
func ClearComments(o *yaml.RNode) {
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		n.HeadComment, n.LineComment, n.FootComment = "", "", ""
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(o.Document())
}
