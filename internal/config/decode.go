package config

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Decoded is what Decode found wrong with a config.
type Decoded struct {
	// List holds every mistake found.
	List  field.ErrorList
	fatal bool
}

// HasFatal reports whether the config could not be decoded at all, so its
// values cannot be validated.
func (d Decoded) HasFatal() bool { return d.fatal }

// Decode decodes a function config strictly into v (a struct with json
// tags): a key written twice (a bad merge), every field v does not have
// (by its path, such as spec.revisions[1].versoin) and every value of the
// wrong type is a mistake. The YAML is read as Kubernetes reads it, through
// its JSON form.
func Decode(node *yaml.RNode, v any) Decoded {
	if node == nil {
		return Decoded{List: field.ErrorList{field.Required(field.NewPath("functionConfig"), "must be given")}, fatal: true}
	}
	if err := object.CheckShape(node); err != nil {
		var dup *object.DuplicateKeyError
		if errors.As(err, &dup) {
			return Decoded{List: field.ErrorList{&field.Error{Type: field.ErrorTypeDuplicate, Field: dup.Path, BadValue: field.OmitValueType{},
				Detail: fmt.Sprintf("must be set once, not on lines %d and %d (a merge kept both?)", dup.First, dup.Line)}}, fatal: true}
		}
		return Decoded{List: field.ErrorList{field.Invalid(field.NewPath("metadata"), nil, err.Error())}, fatal: true}
	}
	data, err := jsonOf(node)
	if err != nil {
		return Decoded{List: field.ErrorList{field.Invalid(field.NewPath("spec"), nil, "must be YAML that maps to JSON: "+err.Error())}, fatal: true}
	}
	strict, err := json.UnmarshalStrict(data, v)
	if err != nil {
		// The decoder stops at the first value of the wrong type: walk the
		// document against v's type for every one of them, and every
		// unknown field, so that one run reports all the mistakes.
		var doc any
		list := field.ErrorList{typeError(err)}
		if json.UnmarshalCaseSensitivePreserveInts(data, &doc) == nil {
			if all := walk(doc, reflect.TypeOf(v), nil); len(all) > 0 {
				list = all
			}
		}
		return Decoded{List: list, fatal: true}
	}
	var d Decoded
	for _, e := range strict {
		d.List = append(d.List, unknownField(e))
	}
	return d
}

// jsonOf is node's JSON form, as RNode.MarshalJSON gives it, decoded
// straight from the node: MarshalJSON writes the node out as YAML and
// parses that again, which for a record of thousands of files is most of
// what a run with nothing to do allocates.
func jsonOf(node *yaml.RNode) ([]byte, error) {
	var v any
	if err := node.YNode().Decode(&v); err != nil {
		return nil, err
	}
	return stdjson.Marshal(v)
}

// unknownField turns sigs.k8s.io/json's `unknown field "spec.x"` into a
// field error at spec.x.
func unknownField(err error) *field.Error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return &field.Error{Type: field.ErrorTypeNotSupported, Field: strings.Trim(rest, `"`), BadValue: field.OmitValueType{},
			Detail: "unknown field: is it misspelled, or in the wrong place?"}
	}
	if rest, ok := strings.CutPrefix(msg, "duplicate field "); ok {
		return &field.Error{Type: field.ErrorTypeDuplicate, Field: strings.Trim(rest, `"`), BadValue: field.OmitValueType{}, Detail: "must be set once"}
	}
	return field.Invalid(field.NewPath("spec"), nil, msg)
}

// typeError names the field of a JSON type mismatch.
func typeError(err error) *field.Error {
	var te interface{ Error() string }
	te = err
	msg := te.Error()
	// json: cannot unmarshal string into Go struct field Spec.spec.revisions of type []config.Revision
	if i := strings.Index(msg, "Go struct field "); i >= 0 {
		rest := msg[i+len("Go struct field "):]
		name, typ, _ := strings.Cut(rest, " of type ")
		if _, f, ok := strings.Cut(name, "."); ok {
			name = f
		}
		what, _, _ := strings.Cut(strings.TrimPrefix(msg, "json: cannot unmarshal "), " into")
		return &field.Error{Type: field.ErrorTypeTypeInvalid, Field: name, BadValue: field.OmitValueType{},
			Detail: fmt.Sprintf("must be %s, not %s", goType(typ), what)}
	}
	return field.Invalid(field.NewPath("spec"), nil, msg)
}

func goType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.Contains(t, "."):
		return "a map"
	case t == "bool", t == "*bool":
		return "true or false"
	}
	return "a " + strings.TrimPrefix(t, "*")
}

// Error is every mistake of one function config.
type Error struct {
	Kind, Name string
	Errs       field.ErrorList
}

func (e *Error) Error() string {
	msgs := make([]string, 0, len(e.Errs))
	for _, fe := range e.Errs {
		msgs = append(msgs, Message(fe))
	}
	return fmt.Sprintf("%s %q: %s", e.Kind, e.Name, strings.Join(msgs, "; "))
}

// Message words a field error as the rest of istio-gitops words errors:
// the field, the value quoted, what it must be.
func Message(fe *field.Error) string {
	if s, ok := fe.BadValue.(string); ok && fe.Type != field.ErrorTypeRequired && fe.Type != field.ErrorTypeForbidden {
		return fmt.Sprintf("%s: %q %s", fe.Field, s, fe.Detail)
	}
	return fmt.Sprintf("%s: %s", fe.Field, fe.Detail)
}

// Results are the mistakes as function results, one a field, so that
// kpt, kustomize and `--output json` show each with its field.
func (e *Error) Results(file string) framework.Results {
	var out framework.Results
	for _, fe := range e.Errs {
		r := &framework.Result{
			Severity: framework.Error,
			Message:  fmt.Sprintf("%s %q: %s", e.Kind, e.Name, Message(fe)),
			Field:    &framework.Field{Path: fe.Field},
		}
		if file != "" {
			r.File = &framework.File{Path: file}
		}
		out = append(out, r)
	}
	return out
}

// walk checks a decoded JSON document against type t, as the strict
// decoder would, but past the first mistake: every value of the wrong type
// and every unknown field, by its path, in document order (fields sorted).
func walk(doc any, t reflect.Type, p *field.Path) field.ErrorList {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if doc == nil {
		return nil
	}
	at := func() string {
		if p == nil {
			return "."
		}
		return p.String()
	}
	wrong := func() field.ErrorList {
		return field.ErrorList{&field.Error{Type: field.ErrorTypeTypeInvalid, Field: at(), BadValue: field.OmitValueType{},
			Detail: fmt.Sprintf("must be %s, not %s", goType(typeName(t)), jsonKind(doc))}}
	}
	switch t.Kind() {
	case reflect.Interface:
		return nil
	case reflect.Struct:
		obj, ok := doc.(map[string]any)
		if !ok {
			return wrong()
		}
		fields := jsonFields(t)
		var errs field.ErrorList
		for _, k := range SortedKeys(obj) {
			child := field.NewPath(k)
			if p != nil {
				child = p.Child(k)
			}
			f, known := fields[k]
			if !known {
				errs = append(errs, unknownField(fmt.Errorf("unknown field %q", child.String())))
				continue
			}
			errs = append(errs, walk(obj[k], f, child)...)
		}
		return errs
	case reflect.Map:
		obj, ok := doc.(map[string]any)
		if !ok {
			return wrong()
		}
		var errs field.ErrorList
		for _, k := range SortedKeys(obj) {
			child := field.NewPath(k)
			if p != nil {
				child = p.Key(k)
			}
			errs = append(errs, walk(obj[k], t.Elem(), child)...)
		}
		return errs
	case reflect.Slice:
		list, ok := doc.([]any)
		if !ok {
			return wrong()
		}
		var errs field.ErrorList
		for i, e := range list {
			errs = append(errs, walk(e, t.Elem(), p.Index(i))...)
		}
		return errs
	case reflect.String:
		if _, ok := doc.(string); !ok {
			return wrong()
		}
	case reflect.Bool:
		if _, ok := doc.(bool); !ok {
			return wrong()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		switch doc.(type) {
		case int64, float64:
		default:
			return wrong()
		}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields to their types,
// embedded structs' included.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "":
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
		case name == "":
			out[f.Name] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

// typeName is a Go type as the decoder's errors name it, for goType.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "[]" + t.Elem().String()
	case reflect.Map:
		return "map[" + t.Key().String() + "]" + t.Elem().String()
	case reflect.Struct:
		return t.String()
	}
	return t.Kind().String()
}

// jsonKind names a decoded JSON value's type as the decoder's errors do.
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "number"
}
