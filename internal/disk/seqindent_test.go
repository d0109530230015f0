package disk

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

var seqIndentCases = []string{
	"",
	"a:\n- b\n",
	"a:\n  - b\n",
	"a:\n    - b\n",
	"a:\n# c\n  # d\n  - b\n",
	"a: # c\n  - b\n",
	"a: b:\n  - c\nd:\n- e\n",
	"- a\n",
	"x\n- a\n",
	"a:\n\n  - b\n",
	"  \n  - b\n",
	"a:\n  x- b\n  - c\n",
	"a:\n\t- b\nc:\n  - d\n",
	"k: |\n  - not a list\nl:\n- x\n",
	"#\n- a\n",
	"a:\n  - b\n",
	"  a:\n  - b\n",
	"a:\r\n  - b\r\n",
}

// TestSeqIndentStyle: the same answer as kyaml's DeriveSeqIndentStyle for
// every YAML file of testdata, each of its documents, and odd cases.
func TestSeqIndentStyle(t *testing.T) {
	texts := seqIndentCases
	err := filepath.WalkDir("../../testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil // a link of the corpus that goes nowhere
		}
		texts = append(texts, string(b))
		texts = append(texts, strings.Split(string(b), "\n---\n")...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	styles := map[string]int{}
	for _, s := range texts {
		want := yaml.DeriveSeqIndentStyle(s)
		if got := seqIndentStyle([]byte(s)); got != want {
			t.Errorf("seqIndentStyle(%.200q) = %q, kyaml says %q", s, got, want)
		}
		styles[want]++
	}
	if styles["wide"] < 50 || styles["compact"] < 1000 {
		t.Errorf("compared %v: testdata must hold both styles", styles)
	}
}

// FuzzSeqIndentStyle: any text, kyaml's answer.
func FuzzSeqIndentStyle(f *testing.F) {
	for _, s := range seqIndentCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		text := bytes.Clone(b)
		if got, want := seqIndentStyle(b), yaml.DeriveSeqIndentStyle(string(b)); got != want {
			t.Errorf("seqIndentStyle(%q) = %q, kyaml says %q", b, got, want)
		}
		if !bytes.Equal(text, b) {
			t.Errorf("seqIndentStyle changed its input")
		}
	})
}
