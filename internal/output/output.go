// Package output holds what the commands share to print for machines
// (--output json): the flag, the shape of a result, and the encoder, so
// run, status and migrate print results alike.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
)

// The formats every command with --output takes.
const (
	Text = "text"
	JSON = "json"
)

// AddFlag adds --output (-o) to cmd, defaulting to text; formats lists
// what it takes (text first).
func AddFlag(cmd *cobra.Command, format *string, formats ...string) {
	if len(formats) == 0 {
		formats = []string{Text, JSON}
	}
	cmd.Flags().StringVarP(format, "output", "o", Text, fmt.Sprintf("output format: %s", quoted(formats)))
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return formats, cobra.ShellCompDirectiveNoFileComp
	})
}

// Check reports a format not among formats (default: text and json).
func Check(format string, formats ...string) error {
	if len(formats) == 0 {
		formats = []string{Text, JSON}
	}
	if !slices.Contains(formats, format) {
		return fmt.Errorf("--output: %q must be one of %s", format, quoted(formats))
	}
	return nil
}

func quoted(formats []string) string {
	return strings.Join(formats, ", ")
}

// Result is one result of a run: what the text output prints on a line.
type Result struct {
	// Severity is error, warning or info.
	Severity string `json:"severity"`
	Message  string `json:"message"`
	// File is the file of the object, relative to the directory run.
	File string `json:"file,omitempty"`
	// Object is the object the result is about.
	Object *Object `json:"object,omitempty"`
	// Field is the field the result is about.
	Field *Field `json:"field,omitempty"`
	// Tags classify the result, such as dropped-from: <revision>.
	Tags map[string]string `json:"tags,omitempty"`
}

// Object identifies an object.
type Object struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// Field is a field of the object, by its path, with the values a change
// moved it between.
type Field struct {
	Path          string `json:"path"`
	CurrentValue  any    `json:"currentValue,omitempty"`
	ProposedValue any    `json:"proposedValue,omitempty"`
}

// Results converts function results; it is never nil, so the JSON holds a
// list even when there is nothing to say.
func Results(rs framework.Results) []Result {
	out := make([]Result, 0, len(rs))
	for _, r := range rs {
		if r == nil {
			continue
		}
		sev := string(r.Severity)
		if sev == "" {
			sev = string(framework.Info)
		}
		res := Result{Severity: sev, Message: r.Message, Tags: r.Tags}
		if r.File != nil {
			res.File = r.File.Path
		}
		if ref := r.ResourceRef; ref != nil {
			res.Object = &Object{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
		}
		if f := r.Field; f != nil {
			res.Field = &Field{Path: f.Path, CurrentValue: f.CurrentValue, ProposedValue: f.ProposedValue}
		}
		out = append(out, res)
	}
	return out
}

// Write writes v as indented JSON and a line break.
func Write(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
