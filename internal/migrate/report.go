package migrate

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Report is what one run did: every Namespace of the input, every workload
// that overrides its namespace, and notes about the run itself.
type Report struct {
	// Name is the RevisionMigration's metadata.name.
	Name     string
	From, To string
	OwnerKey string
	// Owners are the teams of this run, sorted; empty means every team.
	Owners []string
	// MoveWorkloads is spec.workloads.
	MoveWorkloads bool
	// FromIsDefault says From was taken for the default revision, so
	// istio-injection=enabled namespaces were moved.
	FromIsDefault bool
	// Namespaces are in file order.
	Namespaces []*NamespaceEntry
	// Workloads are in file order.
	Workloads []*WorkloadEntry
	Notes     []Note
}

// NamespaceEntry is one Namespace of the input and what the run did to it.
type NamespaceEntry struct {
	Name  string
	Owner string
	File  string
	Index int
	// Item is the Namespace's place in a List (items[2]), empty for a
	// document of its own.
	Item string
	// Before and After are the revision-choosing labels, as
	// "istio-injection=enabled, istio.io/rev=1-30"; After is set when Moved.
	Before, After string
	Moved         bool
	// Why says why it was left alone.
	Why      string
	Severity framework.Severity
	// InRun: its team is one of this run's (listed in the Markdown).
	InRun bool
}

// WorkloadEntry is a workload whose pod template carries istio.io/rev or
// sidecar.istio.io/inject, overriding its namespace.
type WorkloadEntry struct {
	APIVersion, Kind, Namespace, Name string
	Owner                             string
	File                              string
	Index                             int
	// Item is the workload's place in a List (items[2]), empty for a
	// document of its own.
	Item string
	// Field is the pod metadata's path, such as spec.template.metadata.
	Field string
	// Override lists the overriding labels, as "istio.io/rev=1-30".
	Override string
	Moved    bool
	Note     string
	Severity framework.Severity
	InRun    bool
}

// Note is a message about the run rather than about one object.
type Note struct {
	Severity framework.Severity
	Message  string
}

// Moved counts the namespaces and workloads moved.
func (r *Report) Moved() (namespaces, workloads int) {
	for _, e := range r.Namespaces {
		if e.Moved {
			namespaces++
		}
	}
	for _, w := range r.Workloads {
		if w.Moved {
			workloads++
		}
	}
	return namespaces, workloads
}

// ChangedFiles lists, sorted, the files holding a moved object.
func (r *Report) ChangedFiles() []string {
	return r.moved(func(file, _ string) string { return file })
}

// MovedOwners lists, sorted, the teams owning a moved object.
func (r *Report) MovedOwners() []string {
	return r.moved(func(_, owner string) string { return owner })
}

// moved lists, sorted and each once, what of each moved object's file and
// owner pick returns.
func (r *Report) moved(pick func(file, owner string) string) []string {
	var out []string
	for _, e := range r.Namespaces {
		if e.Moved {
			out = append(out, pick(e.File, e.Owner))
		}
	}
	for _, w := range r.Workloads {
		if w.Moved {
			out = append(out, pick(w.File, w.Owner))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Results renders the report as function results: the notes first, then
// one result per Namespace and per overriding workload, in file order.
func (r *Report) Results() framework.Results {
	var out framework.Results
	for _, n := range r.Notes {
		out = append(out, &framework.Result{Severity: n.Severity, Message: fmt.Sprintf("%s %q: %s", Kind, r.Name, n.Message)})
	}
	type located struct {
		file  string
		index int
		res   *framework.Result
	}
	var objs []located
	for _, e := range r.Namespaces {
		res := &framework.Result{
			Severity:    e.Severity,
			ResourceRef: &yaml.ResourceIdentifier{TypeMeta: yaml.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, NameMeta: yaml.NameMeta{Name: e.Name}},
			File:        &framework.File{Path: e.File, Index: e.Index},
			Tags:        r.tags(e.Owner, e.Moved),
		}
		if e.Moved {
			res.Message = fmt.Sprintf("Namespace %s (%s): %s -> %s", e.Name, r.ownerText(e.Owner), e.Before, e.After)
			res.Field = &framework.Field{Path: inItem(e.Item, "metadata.labels"), CurrentValue: e.Before, ProposedValue: e.After}
		} else {
			res.Message = fmt.Sprintf("Namespace %s (%s): left alone: %s", e.Name, r.ownerText(e.Owner), e.Why)
		}
		objs = append(objs, located{e.File, e.Index, res})
	}
	for _, w := range r.Workloads {
		res := &framework.Result{
			Severity:    w.Severity,
			ResourceRef: &yaml.ResourceIdentifier{TypeMeta: yaml.TypeMeta{APIVersion: w.APIVersion, Kind: w.Kind}, NameMeta: yaml.NameMeta{Name: w.Name, Namespace: w.Namespace}},
			File:        &framework.File{Path: w.File, Index: w.Index},
			Tags:        r.tags(w.Owner, w.Moved),
			Message:     fmt.Sprintf("%s (%s): %s: %s", w.describe(), r.ownerText(w.Owner), w.Override, w.Note),
		}
		if w.Moved {
			res.Field = &framework.Field{Path: inItem(w.Item, w.Field+".labels."+api.RevisionLabel), CurrentValue: r.From, ProposedValue: r.To}
		}
		objs = append(objs, located{w.File, w.Index, res})
	}
	slices.SortStableFunc(objs, func(a, b located) int {
		return cmp.Or(strings.Compare(a.file, b.file), cmp.Compare(a.index, b.index))
	})
	for _, o := range objs {
		out = append(out, o.res)
	}
	return out
}

// inItem is a field's path in the document: under the List item, if any.
func inItem(item, field string) string {
	if item == "" {
		return field
	}
	return item + "." + field
}

func (r *Report) tags(owner string, moved bool) map[string]string {
	t := map[string]string{"action": "left-alone"}
	if moved {
		t["action"] = "moved"
	}
	if owner != "" {
		t["owner"] = owner
	}
	return t
}

func (r *Report) ownerText(owner string) string {
	if owner == "" {
		return "no owner"
	}
	return r.OwnerKey + "=" + owner
}

func (w *WorkloadEntry) describe() string {
	if w.Namespace == "" {
		return fmt.Sprintf("%s %s", w.Kind, w.Name)
	}
	return fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name)
}

// NoOwnerHeading titles the group of namespaces no team owns.
const NoOwnerHeading = "## Namespaces no team owns"

// Markdown renders the report grouped by owner, teams sorted, namespaces
// sorted by name: the body of each team's pull request. Only the teams of
// this run are listed (and, when the run is for every team, the namespaces
// no team owns). Each team's heading is "## Team `<owner>`".
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Move namespaces from %s to %s\n\n", code(r.From), code(r.To))
	if len(r.Owners) == 0 {
		fmt.Fprintf(&b, "Teams: all (owner from the %s label or annotation).\n\n", code(r.OwnerKey))
	} else {
		teams := make([]string, 0, len(r.Owners))
		for _, o := range r.Owners {
			teams = append(teams, code(o))
		}
		fmt.Fprintf(&b, "Teams: %s (owner from the %s label or annotation).\n\n", strings.Join(teams, ", "), code(r.OwnerKey))
	}
	fmt.Fprintf(&b, "Each namespace listed as moved now carries %s. Its pods keep their %s sidecar until they are restarted: "+
		"restart them when it suits you, e.g. `kubectl rollout restart deployment -n <namespace>`, "+
		"and check that they come back with the new proxy (`istioctl proxy-status`).\n",
		code(api.RevisionLabel+": "+r.To), code(r.From))
	if r.MoveWorkloads {
		fmt.Fprintf(&b, "\nPod templates labelled %s were moved too.\n", code(api.RevisionLabel+": "+r.From))
	} else {
		fmt.Fprintf(&b, "\nPod templates labelled %s are listed, not moved (set `spec.workloads` or `--workloads` to move them).\n", code(api.RevisionLabel+": "+r.From))
	}

	owners := map[string]bool{}
	for _, e := range r.Namespaces {
		if e.InRun {
			owners[e.Owner] = true
		}
	}
	for _, w := range r.Workloads {
		if w.InRun {
			owners[w.Owner] = true
		}
	}
	keys := make([]string, 0, len(owners))
	for o := range owners {
		keys = append(keys, o)
	}
	// The unowned group ("") sorts first; it goes last.
	slices.Sort(keys)
	if len(keys) > 0 && keys[0] == "" {
		keys = append(keys[1:], "")
	}
	if len(keys) == 0 {
		b.WriteString("\nNo namespace of this run's teams is in the input.\n")
	}
	for _, o := range keys {
		r.group(&b, o)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s: %s\n", n.Severity, cell(n.Message))
		}
	}
	return b.Bytes()
}

func (r *Report) group(b *bytes.Buffer, owner string) {
	var moved, alone []*NamespaceEntry
	for _, e := range r.Namespaces {
		if !e.InRun || e.Owner != owner {
			continue
		}
		if e.Moved {
			moved = append(moved, e)
		} else {
			alone = append(alone, e)
		}
	}
	var workloads []*WorkloadEntry
	for _, w := range r.Workloads {
		if w.InRun && w.Owner == owner {
			workloads = append(workloads, w)
		}
	}
	byName := func(a, b *NamespaceEntry) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.File, b.File), cmp.Compare(a.Index, b.Index))
	}
	slices.SortFunc(moved, byName)
	slices.SortFunc(alone, byName)
	slices.SortFunc(workloads, func(a, b *WorkloadEntry) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Kind, b.Kind),
			strings.Compare(a.Name, b.Name), strings.Compare(a.File, b.File), cmp.Compare(a.Index, b.Index))
	})

	if owner == "" {
		fmt.Fprintf(b, "\n%s\n\n", NoOwnerHeading)
	} else {
		fmt.Fprintf(b, "\n## Team %s\n\n", code(owner))
	}
	warnings := 0
	for _, e := range alone {
		if e.Severity == framework.Warning {
			warnings++
		}
	}
	for _, w := range workloads {
		if w.Severity == framework.Warning {
			warnings++
		}
	}
	fmt.Fprintf(b, "%d moved, %d left alone, %d overriding workloads, %d warnings.\n", len(moved), len(alone), len(workloads), warnings)
	if len(moved) > 0 {
		b.WriteString("\n### Moved\n\n| Namespace | File | Before | After |\n| --- | --- | --- | --- |\n")
		for _, e := range moved {
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", code(e.Name), code(e.File), code(e.Before), code(e.After))
		}
	}
	if len(alone) > 0 {
		b.WriteString("\n### Left alone\n\n| Namespace | File | Labels | Why |\n| --- | --- | --- | --- |\n")
		for _, e := range alone {
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", code(e.Name), code(e.File), code(e.Before), severityText(e.Severity, e.Why))
		}
	}
	if len(workloads) > 0 {
		b.WriteString("\n### Workloads that override their namespace\n\n| Workload | File | Pod template | Result |\n| --- | --- | --- | --- |\n")
		for _, w := range workloads {
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", code(w.describe()), code(w.File), code(w.Override), severityText(w.Severity, w.Note))
		}
	}
}

func severityText(s framework.Severity, msg string) string {
	if s == framework.Warning || s == framework.Error {
		return fmt.Sprintf("**%s:** %s", s, cell(msg))
	}
	return cell(msg)
}

// code renders a value as inline code in a table cell; "" renders as a dash.
func code(s string) string {
	if s == "" {
		return "-"
	}
	if strings.Contains(s, "`") {
		return cell(s)
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

// cell keeps a value on one table row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
