// Package schema makes the JSON Schemas of the objects users write
// (IstioGitOps, GitPatch, RevisionMigration) from their Go types at run
// time, so `istio-gitops schema KIND` always describes the binary that
// prints it, new fields included. Descriptions are the types' Go doc
// comments, kept in comments.json (`go test ./internal/schema -update`
// rewrites it with the committed schemas). The rules the loaders check that
// a schema can say (patterns, enums, unique items) are added by field path;
// the README lists those only the loaders check.
package schema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/migrate"
	"github.com/istio-gitops/istio-gitops/internal/patch"
)

// Draft is the JSON Schema version written: draft-07, the newest that
// editors (yaml-language-server) and OpenAPI tooling read alike. The
// schemas use no $ref, so each is one self-contained tree.
const Draft = "http://json-schema.org/draft-07/schema#"

// Dir is the repository folder holding the committed schemas.
const Dir = "schemas"

// A kind is one object users write.
type kind struct {
	name  string
	typ   reflect.Type
	rules []rule
}

var kinds = []kind{
	{config.Kind, reflect.TypeFor[config.IstioGitOps](), istioGitOpsRules},
	{patch.Kind, reflect.TypeFor[patch.GitPatch](), gitPatchRules},
	{migrate.Kind, reflect.TypeFor[migrate.RevisionMigration](), revisionMigrationRules},
}

// Kinds lists the kinds with a schema, sorted.
func Kinds() []string {
	names := make([]string, 0, len(kinds))
	for _, k := range kinds {
		names = append(names, k.name)
	}
	slices.Sort(names)
	return names
}

// File is the schema's file name in Dir: the lower-case kind.
func File(kind string) string {
	return strings.ToLower(kind) + ".json"
}

//go:embed comments.json
var commentsJSON []byte

// Comments are the Go doc comments of the types, by package path, type
// and field ("<pkg>.Spec.Revisions").
func Comments() (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal(commentsJSON, &m); err != nil {
		return nil, fmt.Errorf("comments.json: %w", err)
	}
	return m, nil
}

// For returns the JSON Schema of kind (any case), indented, with a final
// line break.
func For(name string) ([]byte, error) {
	comments, err := Comments()
	if err != nil {
		return nil, err
	}
	return Generate(name, comments)
}

// Generate is For with the given doc comments.
func Generate(name string, comments map[string]string) ([]byte, error) {
	i := slices.IndexFunc(kinds, func(k kind) bool { return strings.EqualFold(k.name, name) })
	if i < 0 {
		return nil, fmt.Errorf("kind %q must be one of %q", name, Kinds())
	}
	k := kinds[i]
	r := &jsonschema.Reflector{
		Anonymous:      true,
		DoNotReference: true,
		ExpandedStruct: true,
		// The loaders require fields by what they check, never by a
		// missing omitempty: the rules say which are required, so a new
		// field is optional whatever its tag.
		RequiredFromJSONSchemaTags: true,
		CommentMap:                 comments,
	}
	s := r.ReflectFromType(k.typ)
	fieldDescriptions(s, k.typ, comments)
	s.Version = Draft
	s.Title = k.name
	for _, rl := range k.rules {
		at, err := lookup(s, rl.path)
		if err != nil {
			return nil, fmt.Errorf("%s schema: rule for %s: %w", k.name, rl.path, err)
		}
		rl.apply(at)
	}
	b, err := marshal(s)
	if err != nil {
		return nil, fmt.Errorf("%s schema: %w", k.name, err)
	}
	return b, nil
}

// marshal is indented JSON with a final line break, <, > and & as they are.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeHTML(b.Bytes()), nil
}

// unescapeHTML turns the \u003c, \u003e and \u0026 escapes encoding/json
// writes (the schema's own marshaller escapes regardless) back into <, >
// and &, for schemas a person can read.
func unescapeHTML(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i+2 : i+6]) {
			case "003c":
				out, i = append(out, '<'), i+5
				continue
			case "003e":
				out, i = append(out, '>'), i+5
				continue
			case "0026":
				out, i = append(out, '&'), i+5
				continue
			}
		}
		// Any other escape, \\ included, stays as it is.
		out, i = append(out, b[i], b[i+1]), i+1
	}
	return out
}

// fieldDescriptions describes each struct-typed field by its own doc
// comment, which says more than its type's: the reflector prefers the
// type's.
func fieldDescriptions(s *jsonschema.Schema, t reflect.Type, comments map[string]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if s.Items != nil {
			fieldDescriptions(s.Items, t.Elem(), comments)
		}
	case reflect.Map:
		if s.AdditionalProperties != nil {
			fieldDescriptions(s.AdditionalProperties, t.Elem(), comments)
		}
	case reflect.Struct:
		if s.Properties == nil {
			return
		}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			p, ok := s.Properties.Get(name)
			if !ok {
				continue
			}
			if c := comments[t.PkgPath()+"."+t.Name()+"."+f.Name]; c != "" {
				p.Description = c
			}
			fieldDescriptions(p, f.Type, comments)
		}
	}
}

// lookup finds the schema of a field path: "spec.revisions[].name", with
// "[]" for the items of a list and "{}" for the values of a map.
func lookup(s *jsonschema.Schema, path string) (*jsonschema.Schema, error) {
	if path == "" {
		return s, nil
	}
	for _, part := range strings.Split(strings.NewReplacer("[]", ".[]", "{}", ".{}").Replace(path), ".") {
		var next *jsonschema.Schema
		switch part {
		case "[]":
			next = s.Items
		case "{}":
			next = s.AdditionalProperties
		default:
			if s.Properties != nil {
				next, _ = s.Properties.Get(part)
			}
		}
		if next == nil {
			return nil, fmt.Errorf("no field %q: the Go type must have changed", part)
		}
		s = next
	}
	return s, nil
}
