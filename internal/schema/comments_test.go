package schema

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/config"
)

// module is this module's path; its packages sit below the repository root.
const module = "github.com/istio-gitops/istio-gitops"

// sourceComments reads the doc comments of the types the schemas are made
// from, and of their fields, from the Go sources of their packages.
func sourceComments(t *testing.T) map[string]string {
	t.Helper()
	comments := map[string]string{}
	types := reachable()
	var pkgs []string
	for _, name := range config.SortedKeys(types) {
		if pkg := types[name].PkgPath(); !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
	}
	for _, pkg := range pkgs {
		dir := filepath.Join(repo, filepath.FromSlash(strings.TrimPrefix(pkg, module+"/")))
		fset := token.NewFileSet()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			fileComments(f, pkg, types, comments)
		}
	}
	return comments
}

// fileComments adds the doc comments of a file's types among types, and of
// their fields that JSON sees.
func fileComments(f *ast.File, pkg string, types map[string]reflect.Type, comments map[string]string) {
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, spec := range g.Specs {
			ts := spec.(*ast.TypeSpec)
			typ, ok := types[pkg+"."+ts.Name.Name]
			if !ok || ts.Assign != 0 {
				continue
			}
			text := ts.Doc.Text()
			if text == "" && len(g.Specs) == 1 {
				text = g.Doc.Text()
			}
			if text != "" {
				comments[pkg+"."+ts.Name.Name] = clean(text)
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, field := range st.Fields.List {
				text := field.Doc.Text()
				if text == "" {
					text = field.Comment.Text()
				}
				if text == "" {
					continue
				}
				for _, n := range field.Names {
					if f, ok := typ.FieldByName(n.Name); ok && f.IsExported() && f.Tag.Get("json") != "-" {
						comments[pkg+"."+ts.Name.Name+"."+n.Name] = clean(text)
					}
				}
			}
		}
	}
}

// clean joins a comment's wrapped lines: paragraphs stay apart, a line
// break inside one is a space.
func clean(text string) string {
	var paras []string
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		paras = append(paras, strings.Join(strings.Fields(p), " "))
	}
	return strings.Join(paras, "\n\n")
}

// reachable are the named types of this module the schemas are made of,
// by package path and name.
func reachable() map[string]reflect.Type {
	types := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		key := t.PkgPath() + "." + t.Name()
		if _, seen := types[key]; seen || !strings.HasPrefix(t.PkgPath(), module+"/") {
			return
		}
		types[key] = t
		if t.Kind() == reflect.Struct {
			for f := range t.Fields() {
				if f.IsExported() && f.Tag.Get("json") != "-" {
					walk(f.Type)
				}
			}
		}
	}
	for _, k := range kinds {
		walk(k.typ)
	}
	return types
}
