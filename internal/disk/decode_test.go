package disk_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
)

// kioRead is what `kustomize fn run` reads of one file.
func kioRead(text string) ([]*yaml.RNode, error) {
	return (&kio.ByteReader{
		Reader:            strings.NewReader(text),
		DisableUnwrapping: true,
		PreserveSeqIndent: true,
		SetAnnotations: map[string]string{
			kioutil.PathAnnotation:       "f.yaml",
			kioutil.LegacyPathAnnotation: "f.yaml",
		},
	}).Read()
}

func decode(text string) ([]*yaml.RNode, error) {
	var out []*yaml.RNode
	err := disk.Decode(strings.NewReader(text), "f.yaml", func(n *yaml.RNode) error {
		out = append(out, n)
		return nil
	})
	return out, err
}

func render(nodes []*yaml.RNode) string {
	var b strings.Builder
	for _, n := range nodes {
		s, err := n.String()
		if err != nil {
			return "error: " + err.Error()
		}
		b.WriteString(s)
		b.WriteString("\n#---\n")
	}
	return b.String()
}

var decodeSeeds = []string{
	"",
	"# only a comment\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
	"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n",
	"a: 1\n---\nb: 2\n--- # comment\nc: 3\n",
	"a: 1\n---\n---\nb: 2\n",
	"a: 1\r\n---\r\nb: 2\r\n",
	"a: |\n  text\n---\nb: [1, 2]\n",
	"list:\n- a\n- b\n---\nlist:\n  - a\n  - b\n",
	"a: 1\n---x\nb: 2\n",
	"a: 1\n---\n",
	"a: 1\n---",
	"- a\n- b\n",
	"a: &x [1]\nb: *x\n",
	"\n\n---\n\na: 1\n\n---\n\n",
	"metadata:\n  annotations:\n    config.kubernetes.io/path: other.yaml\n",
	"kind: [\n",
}

// TestDecodeAsKio: the streaming decoder reads every seed exactly as kio's
// ByteReader does.
func TestDecodeAsKio(t *testing.T) {
	for _, s := range decodeSeeds {
		compareWithKio(t, []byte(s))
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			compareWithKio(t, b)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%q: no answer in 5 s", b)
		}
	})
}

func compareWithKio(t *testing.T, b []byte) {
	t.Helper()
	want, werr := kioRead(string(b))
	got, gerr := decode(string(b))
	if werr != nil || gerr != nil {
		// Both must refuse, each in its words; kio also refuses
		// documents that are not mappings, later.
		if gerr == nil {
			t.Fatalf("%q: kio fails (%v), Decode does not", b, werr)
		}
		// Decode also refuses shapes kyaml's accessors panic on, and keys
		// written twice.
		if werr == nil && !strings.Contains(gerr.Error(), "must be") {
			t.Fatalf("%q: Decode fails (%v), kio does not", b, gerr)
		}
		return
	}
	if g, w := render(got), render(want); g != w {
		t.Fatalf("%q:\ngot:\n%s\nwant:\n%s", b, g, w)
	}
}

// TestDecodeFileLines: line numbers, in nodes and in errors, count from
// the top of the file.
func TestDecodeFileLines(t *testing.T) {
	text := "a: 1\n---\nb: 2\nc: 3\n---\nd: [\n"
	var bLine int
	err := disk.Decode(strings.NewReader(text), "f.yaml", func(n *yaml.RNode) error {
		if f := n.Field("b"); f != nil {
			bLine = f.Key.YNode().Line
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "f.yaml: ") || !strings.Contains(err.Error(), "line 6") {
		t.Errorf("error %v must name f.yaml and line 6", err)
	}
	if bLine != 3 {
		t.Errorf("b is on line 3 of the file, got %d", bLine)
	}
}

// TestDecodeLargeFileStreams: a file far larger than the reader's buffer
// decodes document by document.
func TestDecodeLargeFileStreams(t *testing.T) {
	var b bytes.Buffer
	for i := range 3000 {
		fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  k: %s\n---\n", i, strings.Repeat("x", 100))
	}
	n := 0
	err := disk.Decode(&b, "big.yaml", func(o *yaml.RNode) error {
		if want := fmt.Sprintf("cm-%d", n); o.GetName() != want {
			return fmt.Errorf("object %d is %s, want %s", n, o.GetName(), want)
		}
		n++
		return nil
	})
	if err != nil || n != 3000 {
		t.Fatalf("decoded %d objects, err %v", n, err)
	}
}
