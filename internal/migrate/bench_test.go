package migrate

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

const (
	benchNamespaces = 10000
	benchFiles      = 2500
)

// writeBenchTree writes 10,000 Namespaces on 1-30 owned by 5 teams, four
// per file, in 2,500 files over 50 folders.
func writeBenchTree(tb testing.TB, dir string) {
	tb.Helper()
	per := benchNamespaces / benchFiles
	for f := range benchFiles {
		var b strings.Builder
		fmt.Fprintf(&b, "# Namespaces of team t%d, file %d.\n", f%5, f)
		for i := range per {
			if i > 0 {
				b.WriteString("---\n")
			}
			fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-%d-%d\n  labels:\n    team: t%d\n    env: prod\n    istio.io/rev: 1-30\n  annotations:\n    contact: \"#t%d\"\n",
				f, i, f%5, f%5)
		}
		p := filepath.Join(dir, fmt.Sprintf("team-%d", f%50), fmt.Sprintf("ns-%d.yaml", f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkMigrate10k is `istio-gitops migrate DIR` over 10,000 Namespaces
// in 2,500 files, each moved from 1-30 to 1-31.
func BenchmarkMigrate10k(b *testing.B) {
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		writeBenchTree(b, dir)
		cmd := Command()
		cmd.SetOut(io.Discard)
		cmd.SetArgs([]string{dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team"})
		b.StartTimer()
		if err := cmd.Execute(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineReadWrite10k is the floor: reading and writing the same
// files with kyaml, setting the label on every Namespace.
func BenchmarkBaselineReadWrite10k(b *testing.B) {
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		writeBenchTree(b, dir)
		b.StartTimer()
		if err := baselineReadWrite(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func baselineReadWrite(dir string) error {
	rw := &kio.LocalPackageReadWriter{PackagePath: dir, MatchFilesGlob: kio.MatchAll, PreserveSeqIndent: true}
	return kio.Pipeline{
		Inputs: []kio.Reader{rw},
		Filters: []kio.Filter{kio.FilterFunc(func(in []*yaml.RNode) ([]*yaml.RNode, error) {
			for _, n := range in {
				if n.GetKind() == "Namespace" {
					if err := n.PipeE(yaml.SetLabel(api.RevisionLabel, "1-31")); err != nil {
						return nil, err
					}
				}
			}
			return in, nil
		})},
		Outputs: []kio.Writer{rw},
	}.Execute()
}
