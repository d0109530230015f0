package treetest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	k8syaml "sigs.k8s.io/yaml"
)

// A Story is testdata/stories/<name>.yaml: a tree's life, step by step,
// each step a config (and files, and fresh istioctl output) and what the
// step must change or keep; the tree after each step is the golden tree
// testdata/golden/<name>/<step>.
type Story struct {
	Steps []StoryStep `json:"steps"`
}

// StoryStep is one step of a Story.
type StoryStep struct {
	Name string `json:"name"`
	// Config is the step's istio-gitops.yaml.
	Config string `json:"config"`
	// Files are other files to write into the tree, Sources revisions'
	// fresh istioctl output (a fixture under testdata/).
	Files   map[string]string `json:"files"`
	Sources map[string]string `json:"sources"`
	// Changes are globs: every file that the step adds, changes or deletes
	// must match one. Unchanged are globs of files the step must keep byte
	// for byte; Absent, globs no file may match afterwards.
	Changes   []string `json:"changes"`
	Unchanged []string `json:"unchanged"`
	Absent    []string `json:"absent"`
	// SameAs names an earlier step whose tree this one must equal.
	SameAs string `json:"sameAs"`
	// Results are texts the step's results must hold; NoResults texts
	// they must not.
	Results   []string `json:"results"`
	NoResults []string `json:"noResults"`
	// DNS maps a name to the revision whose Ingress load balancer it must
	// resolve to, by the external-dns annotations of the tree's Ingresses
	// (fn/externaldns checks the same with external-dns's own code).
	DNS map[string]string `json:"dns"`
}

// Stories reads every story of testdata/stories, by name; testdata is the
// repository's testdata folder.
func Stories(t testing.TB, testdata string) map[string]Story {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testdata, "stories", "*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("stories: %v %v", files, err)
	}
	out := map[string]Story{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var st Story
		if err := k8syaml.UnmarshalStrict(b, &st); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".yaml")] = st
	}
	return out
}

// Lay writes the step's config, files and sources into the tree at dir;
// config edits the config's text first (nil: as it is).
func (s StoryStep) Lay(t testing.TB, dir, testdata string, config func(string) string) {
	t.Helper()
	cfg := s.Config
	if config != nil {
		cfg = config(cfg)
	}
	Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(cfg))
	for _, f := range slices.Sorted(maps.Keys(s.Files)) {
		Write(t, filepath.Join(dir, f), []byte(s.Files[f]))
	}
	for _, rev := range slices.Sorted(maps.Keys(s.Sources)) {
		CopyFile(t, filepath.Join(testdata, s.Sources[rev]), filepath.Join(dir, rev, "istioctl-output.yaml"))
	}
}
