package treetest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Snapshot is every file and folder below dir, by path relative to it:
// files as their content, folders as "<path>/" with no content, links as
// "-> <target>" (never followed), special files by their type (never
// opened: a named pipe would block). Two snapshots that are equal mean
// that nothing below dir was written, removed or relinked.
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel+"/"] = ""
		case !d.Type().IsRegular():
			out[rel] = d.Type().String()
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ConfigHead is an IstioGitOps config up to its list of revisions, for
// tests that write the rest.
const ConfigHead = `apiVersion: fn.istio-gitops.dev/v1alpha1
kind: IstioGitOps
metadata:
  name: prod
  annotations:
    config.kubernetes.io/local-config: "true"
spec:
  revisions:
`

// Config is an IstioGitOps config listing revs and nothing else.
func Config(revs ...string) string {
	s := ConfigHead
	for _, r := range revs {
		s += "  - name: " + r + "\n"
	}
	return s
}

// Objects reads the objects of a YAML file without reader annotations, for
// examples and tests; a file that is not there or not YAML panics.
func Objects(path string) []*yaml.RNode {
	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	objs, err := (&kio.ByteReader{Reader: f, OmitReaderAnnotations: true}).Read()
	if err != nil {
		panic(fmt.Sprintf("%s: %v", path, err))
	}
	return objs
}
