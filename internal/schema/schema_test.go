package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// repo is the repository root, relative to this package.
const repo = "../.."

// TestCommitted: the schemas committed under schemas/ and the doc comments
// the binary embeds are what the Go types give today. After changing a
// type, `go test ./internal/schema -update` rewrites both.
func TestCommitted(t *testing.T) {
	fresh := sourceComments(t)
	b, err := marshal(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if *treetest.Update {
		treetest.Write(t, "comments.json", b)
	} else if !bytes.Equal(b, commentsJSON) {
		t.Errorf("comments.json is not the doc comments of the types: run `go test ./internal/schema -update`\n%s",
			treetest.Diff(map[string][]byte{"comments.json": commentsJSON}, map[string][]byte{"comments.json": b}))
	}
	for _, kind := range Kinds() {
		got, err := Generate(kind, fresh)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(repo, Dir, File(kind))
		if *treetest.Update {
			treetest.Write(t, file, got)
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v: run `go test ./internal/schema -update`", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not the schema of %s: run `go test ./internal/schema -update`\n%s", file, kind,
				treetest.Diff(map[string][]byte{File(kind): got}, map[string][]byte{File(kind): want}))
		}
	}
}

// TestFor: the binary's schema (embedded comments) names every kind in any
// case, and refuses others.
func TestFor(t *testing.T) {
	for _, name := range []string{"IstioGitOps", "istiogitops", "GITPATCH", "revisionmigration"} {
		b, err := For(name)
		if err != nil || !json.Valid(b) {
			t.Errorf("For(%q): %v", name, err)
		}
	}
	if _, err := For("Kustomization"); err == nil || !strings.Contains(err.Error(), `"GitPatch" "IstioGitOps" "RevisionMigration"`) {
		t.Errorf("For(Kustomization): %v", err)
	}
}

// compile compiles the schema of kind, checking it against draft-07.
func compile(t *testing.T, kind string) *jsonschema.Schema {
	t.Helper()
	b, err := For(kind)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	url := "file:///" + File(kind)
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("%s schema: %v", kind, err)
	}
	return s
}

// validate checks a YAML object against a compiled schema, as an editor
// would read it.
func validate(t *testing.T, s *jsonschema.Schema, yamlDoc string) error {
	t.Helper()
	j, err := k8syaml.YAMLToJSON([]byte(yamlDoc))
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(v)
}

// TestDefaults: the defaults the schema shows are the ones the loader fills.
func TestDefaults(t *testing.T) {
	var s map[string]any
	b, err := For(config.Kind)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	cfg := config.IstioGitOps{Spec: config.Spec{Revisions: []config.Revision{{Name: "1-30"}}, Flux: &config.Flux{}}}
	cfg.Default()
	for path, want := range map[string]any{
		"spec.namespace":               cfg.Spec.Namespace,
		"spec.gateways.perRevision":    *cfg.Spec.Gateways.PerRevision,
		"spec.gateways.stableServices": cfg.Spec.Gateways.StableServices,
		"spec.webhooks.driftGuards":    *cfg.Spec.Webhooks.DriftGuards,
		"spec.flux.interval":           cfg.Spec.Flux.Interval,
	} {
		at := s
		for _, p := range strings.Split(path, ".") {
			at = at["properties"].(map[string]any)[p].(map[string]any)
		}
		if at["default"] != want {
			t.Errorf("%s: schema default %v, loader default %v", path, at["default"], want)
		}
	}
}
