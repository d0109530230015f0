package pipeline_test

import (
	"path/filepath"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// BenchmarkAddRevision is the main path: read a one-revision tree and
// 1-31's fresh istioctl output, lay it out, write the tree back.
func BenchmarkAddRevision(b *testing.B) {
	c := goldenCases[1] // add-1-31
	for b.Loop() {
		b.StopTimer()
		dir := setup(b, c)
		b.StartTimer()
		if _, err := processors.RunDir(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoChange is a run over a tree with nothing to do: the cost of
// a check in CI.
func BenchmarkNoChange(b *testing.B) {
	dir := b.TempDir()
	treetest.Copy(b, filepath.Join(golden("story"), "3-promote"), dir)
	for b.Loop() {
		if _, err := processors.RunDir(dir); err != nil {
			b.Fatal(err)
		}
	}
}
