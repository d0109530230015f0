package pointer_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

const (
	fixtures = "../../testdata/istioctl"
	golden   = "../../testdata/pointer"
)

var revisions = []string{"1-30", "1-31"}

// read parses an istioctl fixture the way the pipeline reads a tree, with
// kyaml's reader annotations, so tests see that none leak into output.
// Each file is parsed once; every call gets copies it may change.
func read(t testing.TB, file string) []*yaml.RNode {
	t.Helper()
	parsed.Lock()
	defer parsed.Unlock()
	objs, ok := parsed.files[file]
	if !ok {
		f, err := os.Open(filepath.Join(fixtures, file))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if objs, err = (&kio.ByteReader{Reader: f}).Read(); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		parsed.files[file] = objs
	}
	out := make([]*yaml.RNode, len(objs))
	for i, o := range objs {
		out[i] = o.Copy()
	}
	return out
}

// parsed are the fixtures read, by file.
var parsed = struct {
	sync.Mutex
	files map[string][]*yaml.RNode
}{files: map[string][]*yaml.RNode{}}

// get returns the one object of kind and name in objs.
func get(t testing.TB, objs []*yaml.RNode, kind, name string) *yaml.RNode {
	t.Helper()
	var found []*yaml.RNode
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s %s: found %d, want 1", kind, name, len(found))
	}
	return found[0]
}

// plain is obj as parsed data, without kyaml's reader annotations, for a
// semantic comparison.
func plain(t testing.TB, obj *yaml.RNode) map[string]any {
	t.Helper()
	obj = obj.Copy()
	for _, a := range []string{"config.kubernetes.io/index", "internal.config.kubernetes.io/index",
		"config.kubernetes.io/path", "internal.config.kubernetes.io/path"} {
		if err := obj.PipeE(yaml.ClearAnnotation(a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := yaml.ClearEmptyAnnotations(obj); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := k8syaml.Unmarshal([]byte(obj.MustString()), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// diff lists the paths where got and want differ, sorted.
func diff(got, want any) []string {
	var out []string
	var walk func(p string, g, w any)
	walk = func(p string, g, w any) {
		gm, gok := g.(map[string]any)
		wm, wok := w.(map[string]any)
		if gok && wok {
			keys := map[string]bool{}
			for k := range gm {
				keys[k] = true
			}
			for k := range wm {
				keys[k] = true
			}
			for k := range keys {
				gv, gin := gm[k]
				wv, win := wm[k]
				switch {
				case !gin:
					out = append(out, fmt.Sprintf("%s.%s: missing, istioctl has %v", p, k, wv))
				case !win:
					out = append(out, fmt.Sprintf("%s.%s: %v, istioctl has none", p, k, gv))
				default:
					walk(p+"."+k, gv, wv)
				}
			}
			return
		}
		gl, gok := g.([]any)
		wl, wok := w.([]any)
		if gok && wok && len(gl) == len(wl) {
			for i := range gl {
				walk(fmt.Sprintf("%s[%d]", p, i), gl[i], wl[i])
			}
			return
		}
		if !reflect.DeepEqual(g, w) {
			out = append(out, fmt.Sprintf("%s: %v, istioctl has %v", p, g, w))
		}
	}
	walk("", got, want)
	slices.Sort(out)
	return out
}

// checkDiff fails unless got and want differ exactly by allowed (path
// prefix -> reason).
func checkDiff(t *testing.T, what string, got, want map[string]any, allowed map[string]string) {
	t.Helper()
	used := map[string]bool{}
	for _, d := range diff(got, want) {
		ok := false
		for p := range allowed {
			if strings.HasPrefix(d, p+":") || strings.HasPrefix(d, p+".") || strings.HasPrefix(d, p+"[") {
				ok, used[p] = true, true
			}
		}
		if !ok {
			t.Errorf("%s differs from istioctl's rendering: %s", what, d)
		}
	}
	for p, why := range allowed {
		if !used[p] {
			t.Errorf("%s: allowed difference %s (%s) did not occur: drop it from the list", what, p, why)
		}
	}
}

// text serializes objs as the tree's writer does.
func text(t testing.TB, objs ...*yaml.RNode) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := (kio.ByteWriter{Writer: &b}).Write(objs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkGolden compares got with testdata/pointer/name, rewriting it under
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	treetest.GoldenFile(t, filepath.Join(golden, name), got)
}

// document is the text istioctl printed for one object of file.
func document(t testing.TB, file, kind, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, file))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, doc := range strings.Split(string(b), "\n---\n") {
		doc = strings.TrimSpace(doc) + "\n"
		if strings.Contains(doc, "\nkind: "+kind+"\n") && strings.Contains(doc, "\n  name: "+name+"\n") {
			found = append(found, doc)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %s %s: found %d documents, want 1", file, kind, name, len(found))
	}
	return found[0]
}
