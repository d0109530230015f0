// Package revision holds what a control-plane revision is: how it is
// named, how an object's name carries it, and how a namespace's labels
// lead to one, directly, through a tag or as the default.
package revision

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/layout"
)

// DefaultTag is the tag (and the selector of istio-injection=enabled)
// that leads to the default revision.
const DefaultTag = "default"

// ValidateName reports why n cannot name a revision: Istio revisions are
// DNS labels, and the tree keeps one in a folder of its name.
func ValidateName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("must not be empty")
	case n == DefaultTag:
		return fmt.Errorf("%q must not be used: istioctl reserves it for the default revision", n)
	case strings.Contains(n, "."):
		return fmt.Errorf("%q must not contain a dot: Istio revisions are DNS labels, write 1-31 for 1.31", n)
	case slices.Contains(layout.Owned, n):
		return fmt.Errorf("%q must not be used: the tree has a folder of that name", n)
	}
	return ValidateLabel(n)
}

// ValidateLabel reports why n cannot name a revision or tag in an object
// name or label: it must be a DNS label.
func ValidateLabel(n string) error {
	if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
		return fmt.Errorf("%q must be a DNS label (lower-case letters, digits and dashes, at most 63)", n)
	}
	return nil
}

// CheckList checks the revisions a deployer (Flux, Argo CD) makes one
// object each for: at least one, each a DNS label, none named like one of
// the tree's folders (layout.Owned), none twice, and none whose object,
// name(revision), has a name too long for a label value: the deployer
// labels what it applies with that name. Messages call the object kind,
// and say its name's prefix comes with with (such as "Flux").
func CheckList(revisions []string, name func(string) string, kind, with string) error {
	if len(revisions) == 0 {
		return fmt.Errorf("spec.revisions: must list at least one revision")
	}
	for i, r := range revisions {
		switch {
		case ValidateLabel(r) != nil:
			return fmt.Errorf("spec.revisions[%d].name: %q must be a DNS label", i, r)
		case slices.Contains(layout.Owned, r):
			return fmt.Errorf("spec.revisions[%d].name: %q must not be used: the tree has a folder of that name", i, r)
		case slices.Contains(revisions[:i], r):
			return fmt.Errorf("spec.revisions[%d].name: %q must be unique", i, r)
		case len(name(r)) > validation.LabelValueMaxLength:
			return fmt.Errorf("spec.revisions[%d].name: %q must be at most %d characters with %s: %s %q is too long for a label value",
				i, r, validation.LabelValueMaxLength-(len(name(r))-len(r)), with, kind, name(r))
		}
	}
	return nil
}

// InName reports whether name carries rev as a dash-separated token:
// istiod-1-31 and istio-validator-1-31-istio-system do, istiod-1-310 does
// not.
func InName(name, rev string) bool {
	if rev == "" {
		return false
	}
	for i := strings.Index(name, rev); i >= 0; {
		end := i + len(rev)
		if (i == 0 || name[i-1] == '-') && (end == len(name) || name[end] == '-') {
			return true
		}
		next := strings.Index(name[i+1:], rev)
		if next < 0 {
			return false
		}
		i += next + 1
	}
	return false
}

// Selector is what a namespace's labels ask of Istio's injector.
type Selector struct {
	// Value is the revision, tag or "default" selected.
	Value string
	// Label is the label doing it, as key=value.
	Label string
}

// NamespaceSelects reads what a namespace's labels select, as Istio's
// injector webhooks do: istio-injection=enabled selects the default
// revision whatever istio.io/rev says; any other istio-injection value
// selects nothing; else istio.io/rev. ok is false when nothing is selected.
func NamespaceSelects(labels map[string]string) (Selector, bool) {
	if inj, ok := labels[api.InjectionLabel]; ok {
		if inj == "enabled" {
			return Selector{Value: DefaultTag, Label: api.InjectionLabel + "=enabled"}, true
		}
		return Selector{}, false
	}
	if rev := labels[api.RevisionLabel]; rev != "" {
		return Selector{Value: rev, Label: api.RevisionLabel + "=" + rev}, true
	}
	return Selector{}, false
}

// Pointers are a tree's revisions and what points at them.
type Pointers struct {
	Revisions []string
	// Tags maps a tag to its revision.
	Tags map[string]string
	// Active is the default revision.
	Active string
}

// Resolve follows a selector to a revision: a revision, a tag, or
// "default" (the default tag, else the active revision); "" when it leads
// nowhere in the tree.
func (p Pointers) Resolve(sel string) string {
	for _, r := range p.Revisions {
		if r == sel {
			return sel
		}
	}
	if rev, ok := p.Tags[sel]; ok {
		return rev
	}
	if sel == DefaultTag {
		return p.Active
	}
	return ""
}

// ObjectSelects reads what an object asks of the injector: a Namespace by
// its labels (see NamespaceSelects); a workload whose pod template (or a
// Pod) sets istio.io/rev itself. ok is false for anything else.
func ObjectSelects(o *yaml.RNode) (sel Selector, namespace, ok bool) {
	if o.GetKind() == "Namespace" && o.GetApiVersion() == "v1" {
		sel, ok = NamespaceSelects(o.GetLabels())
		return sel, true, ok
	}
	if rev := podLabel(o, api.RevisionLabel); rev != "" {
		return Selector{Value: rev, Label: api.RevisionLabel + "=" + rev}, false, true
	}
	return Selector{}, false, false
}

// InjectSelector is what a pod labelled sidecar.istio.io/inject=true
// without istio.io/rev selects: the default tag's object.sidecar-injector
// webhook, when its namespace has neither istio-injection nor istio.io/rev
// (else the namespace's webhook decides).
var InjectSelector = Selector{Value: DefaultTag, Label: api.InjectLabel + "=true"}

// AsksDefault reports whether a workload's pod template (or a Pod) asks
// for a sidecar with sidecar.istio.io/inject=true and names no revision:
// see InjectSelector.
func AsksDefault(o *yaml.RNode) bool {
	if o.GetKind() == "Namespace" {
		return false
	}
	return podLabel(o, api.InjectLabel) == "true" && podLabel(o, api.RevisionLabel) == ""
}

// podLabel is the value of a label of a workload's pod template, or of a
// Pod; "" when it has none.
func podLabel(o *yaml.RNode, label string) string {
	paths := [][]string{{"spec", "template", "metadata", "labels"}, {"spec", "jobTemplate", "spec", "template", "metadata", "labels"}}
	if o.GetKind() == "Pod" {
		paths = [][]string{{"metadata", "labels"}}
	}
	for _, p := range paths {
		n, err := o.Pipe(yaml.Lookup(append(p, label)...))
		if err != nil || n == nil || n.YNode().Kind != yaml.ScalarNode || n.YNode().Value == "" {
			continue
		}
		return n.YNode().Value
	}
	return ""
}
