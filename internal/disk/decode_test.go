package disk_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/object"
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

// decoders are Decode as it reads a small file and as it reads a large
// one (several goroutines decoding ahead), each from the file read whole
// and streamed line by line.
var decoders = []struct {
	name   string
	decode func(io.Reader, string, func(*yaml.RNode) error) error
}{
	{"in turn", disk.Decode},
	{"ahead", disk.DecodeAhead},
	{"in turn, streamed", disk.DecodeStreamed},
	{"ahead, streamed", disk.DecodeAheadStreamed},
	{"held", disk.DecodeHeld},
	{"held, ahead", disk.DecodeHeldAhead},
}

func decodeWith(decode func(io.Reader, string, func(*yaml.RNode) error) error, text string) ([]*yaml.RNode, error) {
	var out []*yaml.RNode
	err := decode(strings.NewReader(text), "f.yaml", func(n *yaml.RNode) error {
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
	for _, d := range decoders {
		compareDecoderWithKio(t, d.name, d.decode, b)
	}
	// Every way, the same objects or the same error.
	first, err1 := decodeWith(decoders[0].decode, string(b))
	for _, d := range decoders[1:] {
		got, err2 := decodeWith(d.decode, string(b))
		if fmt.Sprint(err1) != fmt.Sprint(err2) || render(first) != render(got) {
			t.Fatalf("%q: decoded %s (%v) and %s (%v) differ", b, decoders[0].name, err1, d.name, err2)
		}
	}
}

func compareDecoderWithKio(t *testing.T, name string, decode func(io.Reader, string, func(*yaml.RNode) error) error, b []byte) {
	t.Helper()
	want, werr := kioRead(string(b))
	got, gerr := decodeWith(decode, string(b))
	if werr != nil || gerr != nil {
		// Both must refuse, each in its words; kio also refuses
		// documents that are not mappings, later.
		if gerr == nil {
			t.Fatalf("%s: %q: kio fails (%v), Decode does not", name, b, werr)
		}
		// Decode also refuses shapes kyaml's accessors panic on, and keys
		// written twice.
		if werr == nil && !strings.Contains(gerr.Error(), "must be") {
			t.Fatalf("%s: %q: Decode fails (%v), kio does not", name, b, gerr)
		}
		return
	}
	if g, w := render(got), render(want); g != w {
		t.Fatalf("%s: %q:\ngot:\n%s\nwant:\n%s", name, b, g, w)
	}
}

// TestDecodeFileLines: line numbers, in nodes and in errors, count from
// the top of the file.
func TestDecodeFileLines(t *testing.T) {
	for _, d := range decoders {
		text := "a: 1\n---\nb: 2\nc: 3\n---\nd: [\n---\ne: ]\n"
		var bLine int
		err := d.decode(strings.NewReader(text), "f.yaml", func(n *yaml.RNode) error {
			if f := n.Field("b"); f != nil {
				bLine = f.Key.YNode().Line
			}
			return nil
		})
		// The first broken document is the one told.
		if err == nil || !strings.Contains(err.Error(), "f.yaml: ") || !strings.Contains(err.Error(), "line 6") {
			t.Errorf("%s: error %v must name f.yaml and line 6", d.name, err)
		}
		if bLine != 3 {
			t.Errorf("%s: b is on line 3 of the file, got %d", d.name, bLine)
		}
	}
}

// TestDecodeStops: when fn fails, decoding stops there, with fn's error,
// and leaves no goroutine behind.
func TestDecodeStops(t *testing.T) {
	var b bytes.Buffer
	for i := range 500 {
		fmt.Fprintf(&b, "kind: ConfigMap\nmetadata:\n  name: cm-%d\n---\n", i)
	}
	before := runtime.NumGoroutine()
	for _, d := range decoders {
		stop := errors.New("stop")
		n := 0
		err := d.decode(bytes.NewReader(b.Bytes()), "f.yaml", func(*yaml.RNode) error {
			n++
			if n == 10 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 10 {
			t.Errorf("%s: got %v after %d objects, want fn's error after 10", d.name, err, n)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left behind", n-before)
	}
}

// TestDecodeLargeFileStreams: a file far larger than the reader's buffer
// decodes document by document.
func TestDecodeLargeFileStreams(t *testing.T) {
	var b bytes.Buffer
	for i := range 3000 {
		fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  k: %s\n---\n", i, strings.Repeat("x", 100))
	}
	for _, d := range decoders {
		n := 0
		err := d.decode(bytes.NewReader(b.Bytes()), "big.yaml", func(o *yaml.RNode) error {
			if want := fmt.Sprintf("cm-%d", n); o.GetName() != want || object.Index(o) != n {
				return fmt.Errorf("object %d is %s (index %d), want %s", n, o.GetName(), object.Index(o), want)
			}
			n++
			return nil
		})
		if err != nil || n != 3000 {
			t.Fatalf("%s: decoded %d objects, err %v", d.name, n, err)
		}
	}
}

// TestDecodeLongLines: lines longer than the reader's buffer (a PEM bundle
// or a JSON blob in a ConfigMap), and a separator after one, split and
// decode as kio reads them, the pooled buffers reused across files.
func TestDecodeLongLines(t *testing.T) {
	long := strings.Repeat("y", 200<<10)
	src := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: " + long + "\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  k: short\n"
	for _, d := range decoders {
		for range 3 {
			var got []string
			err := d.decode(strings.NewReader(src), "long.yaml", func(o *yaml.RNode) error {
				v, err := o.Pipe(yaml.Lookup("data", "k"))
				if err != nil {
					return err
				}
				got = append(got, o.GetName()+"="+strconv.Itoa(len(v.YNode().Value)))
				return nil
			})
			if want := []string{"a=" + strconv.Itoa(len(long)), "b=5"}; err != nil || !slices.Equal(got, want) {
				t.Fatalf("%s: decoded %v, err %v; want %v", d.name, got, err, want)
			}
		}
	}
}

// TestDecodeBytes: bytes held already are decoded as Decode decodes the
// file, and left as they were (Windows line endings included); no bytes
// are no objects.
func TestDecodeBytes(t *testing.T) {
	for _, text := range []string{"a: 1\n---\nb: [x]\n", "a: 1\r\n---\r\nb: [x]\r\n"} {
		b := []byte(text)
		var got []string
		err := disk.DecodeBytes(b, "f.yaml", func(n *yaml.RNode) error {
			s, err := n.String()
			got = append(got, s)
			return err
		})
		if err != nil || len(got) != 2 || !strings.Contains(got[1], "b: [x]") {
			t.Errorf("%q: decoded %q, err %v", text, got, err)
		}
		if string(b) != text {
			t.Errorf("%q: DecodeBytes changed its bytes to %q", text, b)
		}
	}
	if err := disk.DecodeBytes(nil, "empty.yaml", func(n *yaml.RNode) error {
		return fmt.Errorf("an object in no bytes: %v", n)
	}); err != nil {
		t.Error(err)
	}
}
