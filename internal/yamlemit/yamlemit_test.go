package yamlemit_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/istio-gitops/istio-gitops/internal/yamlemit"
)

// encode lays out every document of src with upstream's encoder and with
// this package's, as disk.Encode does (two spaces, compact sequences).
func encode(t testing.TB, src []byte) (upstream, ours []byte, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			break
		}
		docs = append(docs, &n)
	}
	if len(docs) == 0 {
		return nil, nil, false
	}
	var a, b bytes.Buffer
	ea := yaml.NewEncoder(&a)
	ea.SetIndent(2)
	ea.CompactSeqIndent()
	eb := yamlemit.NewEncoder(&b)
	eb.SetIndent(2)
	eb.CompactSeqIndent()
	for _, d := range docs {
		errA, errB := ea.Encode(d), eb.Encode(d)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("upstream's error %v, ours %v", errA, errB)
		}
	}
	errA, errB := ea.Close(), eb.Close()
	if (errA == nil) != (errB == nil) {
		t.Fatalf("upstream's error on close %v, ours %v", errA, errB)
	}
	return a.Bytes(), b.Bytes(), true
}

// TestSameBytes encodes every YAML file of the repository's testdata (the
// istioctl and Helm outputs, the bad-input corpus, ...) with both
// encoders: the bytes must be the same. The golden trees are left out:
// their files are the istioctl outputs' objects, one by one.
func TestSameBytes(t *testing.T) {
	files := 0
	err := filepath.WalkDir("../../testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "golden" {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil // a link of the corpus that goes nowhere
		}
		a, b, ok := encode(t, src)
		if !ok {
			return nil
		}
		files++
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the encoders differ:\nupstream:\n%s\nours:\n%s", p, a, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 200 {
		t.Fatalf("compared %d files of testdata: it must hold the fixtures and the corpus", files)
	}
	t.Logf("%d files the same", files)
}

// FuzzSameBytes: any YAML, the same bytes from both encoders.
func FuzzSameBytes(f *testing.F) {
	for _, s := range []string{
		"a: b\n",
		"- a\n- {b: c}\n- [d, 'e']\n",
		"k: |\n  line\n  two\n",
		"k: >-\n  folded\n  text\n",
		"# head\na: &x 1 # line\nb: *x\n# foot\n",
		"!!binary aGVsbG8=\n",
		"a: \"\\u00e9\\t\"\nb: 'it''s'\n",
		"? [a, b]\n: c\n",
		"---\na: 1\n---\nb: 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		a, b, ok := encode(t, src)
		if ok && !bytes.Equal(a, b) {
			t.Errorf("the encoders differ:\nupstream:\n%s\nours:\n%s", a, b)
		}
	})
}
