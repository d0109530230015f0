package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/object"
)

// The external-dns annotations a revision's Ingress carries once
// spec.gateways.ingress.hosts is set: with the hostname source
// annotation-only, external-dns publishes the hosts of the hostname
// annotation alone, never those of the rules, so each host is published
// from exactly one load balancer although every Ingress keeps every rule.
const (
	HostnameAnnotation       = "external-dns.alpha.kubernetes.io/hostname"
	HostnameSourceAnnotation = "external-dns.alpha.kubernetes.io/ingress-hostname-source"
	AnnotationOnly           = "annotation-only"
)

// DNSAnnotationPrefixes are the prefixes of external-dns's annotations:
// external-dns.alpha.kubernetes.io/ until v0.21, external-dns.kubernetes.io/
// from v0.22 on (which reads the first only with
// --enable-legacy-annotation-prefix). The function writes its
// annotations under both, with the same values, so that every version
// reads them.
var DNSAnnotationPrefixes = []string{"external-dns.alpha.kubernetes.io/", "external-dns.kubernetes.io/"}

// DNSAnnotations are an external-dns annotation's keys under each prefix,
// such as DNSAnnotations("hostname").
func DNSAnnotations(name string) []string {
	out := make([]string, 0, len(DNSAnnotationPrefixes))
	for _, p := range DNSAnnotationPrefixes {
		out = append(out, p+name)
	}
	return out
}

// IsDNSAnnotation reports whether an annotation is external-dns's.
func IsDNSAnnotation(key string) bool {
	return slices.ContainsFunc(DNSAnnotationPrefixes, func(p string) bool { return strings.HasPrefix(key, p) })
}

// Config fields that render Ingresses, as the rendered-from annotation
// names them.
const (
	FieldIngress   = "spec.gateways.ingress"
	FieldIngresses = "spec.gateways.ingresses"
)

// IngressSpec is one Ingress template of the config, with where it is.
type IngressSpec struct {
	*Ingress
	// Field is its path in the config: spec.gateways.ingress, or
	// spec.gateways.ingresses[1].
	Field string
	// RenderedFrom is the config field its Ingresses are annotated as
	// rendered from: FieldIngress or FieldIngresses (unindexed, so that
	// reordering the list changes no file).
	RenderedFrom string
	// index is its place in spec.gateways.ingresses; -1 for ingress.
	index int
}

// Ingresses lists the Ingress templates: spec.gateways.ingress first, then
// spec.gateways.ingresses in order.
func (c *IstioGitOps) Ingresses() []IngressSpec {
	var out []IngressSpec
	g := &c.Spec.Gateways
	if g.Ingress != nil {
		out = append(out, IngressSpec{Ingress: g.Ingress, Field: FieldIngress, RenderedFrom: FieldIngress, index: -1})
	}
	for i := range g.Ingresses {
		out = append(out, IngressSpec{Ingress: &g.Ingresses[i], Field: fmt.Sprintf("%s[%d]", FieldIngresses, i), RenderedFrom: FieldIngresses, index: i})
	}
	return out
}

// TemplateNode is the template as read, so that its order and comments
// survive: a copy of the config's node, or, for a config built in code,
// a node made from Template.
func (s IngressSpec) TemplateNode(cfg *IstioGitOps) (*yaml.RNode, error) {
	if len(s.Template) == 0 {
		return nil, nil
	}
	if cfg.Node != nil {
		n, err := s.lookup(cfg.Node)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %s.template: %w", Kind, cfg.Metadata.Name, s.Field, err)
		}
		if n != nil {
			return n.Copy(), nil
		}
	}
	n, err := yaml.FromMap(s.Template)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %s.template: %w", Kind, cfg.Metadata.Name, s.Field, err)
	}
	return n, nil
}

func (s IngressSpec) lookup(cfg *yaml.RNode) (*yaml.RNode, error) {
	if s.index < 0 {
		return cfg.Pipe(yaml.Lookup("spec", "gateways", "ingress", "template"))
	}
	list, err := cfg.Pipe(yaml.Lookup("spec", "gateways", "ingresses"))
	if err != nil || list == nil {
		return nil, err
	}
	elems, err := list.Elements()
	if err != nil || s.index >= len(elems) {
		return nil, err
	}
	return elems[s.index].Pipe(yaml.Lookup("template"))
}

// Name is the template's metadata.name; each revision's Ingress is named
// <name>-<revision>.
func (in *Ingress) Name() string {
	s, _ := nested(in.Template, "metadata", "name").(string)
	return s
}

// TemplateAnnotations are the keys of the template's annotations,
// sorted.
func (in *Ingress) TemplateAnnotations() []string {
	a, _ := nested(in.Template, "metadata", "annotations").(map[string]any)
	return SortedKeys(a)
}

// RuleHosts are the hosts of the template's spec.rules, wildcards
// included, sorted, each once.
func (in *Ingress) RuleHosts() []string {
	rules, _ := nested(in.Template, "spec", "rules").([]any)
	var out []string
	for _, r := range rules {
		m, _ := r.(map[string]any)
		if h, _ := m["host"].(string); h != "" {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ManagesDNS reports whether the function writes the external-dns
// annotations of this template's Ingresses: hosts is set.
func (in *Ingress) ManagesDNS() bool { return in.Hosts != nil }

// HostsOf are the hosts revision rev's Ingress publishes, sorted: those
// spec...hosts assigns to it, and, on the live revision's, the rule hosts
// it does not list. Nil when the template does not manage DNS.
func (in *Ingress) HostsOf(rev, live string) []string {
	if !in.ManagesDNS() {
		return nil
	}
	var out []string
	for _, h := range SortedKeys(in.Hosts) {
		if in.Hosts[h] == rev {
			out = append(out, h)
		}
	}
	if rev == live {
		for _, h := range in.RuleHosts() {
			if _, listed := in.Hosts[h]; !listed {
				out = append(out, h)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RuleCovers reports whether an Ingress rule's host serves host, as the
// Ingress API matches them: equal, or a wildcard rule "*.example.com"
// for a host one DNS label longer (shop.example.com, not
// a.shop.example.com nor example.com).
func RuleCovers(rule, host string) bool {
	if rule == host {
		return true
	}
	suffix, ok := strings.CutPrefix(rule, "*")
	if !ok || strings.HasPrefix(host, "*") {
		return false
	}
	label, ok := strings.CutSuffix(host, suffix)
	return ok && label != "" && !strings.Contains(label, ".")
}

func nested(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// validateIngresses checks every Ingress template of the config.
func (c *IstioGitOps) validateIngresses(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]string{}
	for _, s := range c.Ingresses() {
		at := fieldPath(p, s)
		errs = append(errs, c.validateIngress(at, s)...)
		name := s.Name()
		if name == "" {
			continue
		}
		if other, dup := names[name]; dup {
			errs = append(errs, field.Invalid(at.Child("template", "metadata", "name"), name,
				fmt.Sprintf("must be unique: %s.template names its Ingresses %s-<revision> too", other, name)))
			continue
		}
		names[name] = s.Field
	}
	return errs
}

// fieldPath is the path of an Ingress template's entry under p
// (spec.gateways).
func fieldPath(p *field.Path, s IngressSpec) *field.Path {
	if s.index < 0 {
		return p.Child("ingress")
	}
	return p.Child("ingresses").Index(s.index)
}

func (c *IstioGitOps) validateIngress(p *field.Path, s IngressSpec) field.ErrorList {
	var errs field.ErrorList
	in := s.Ingress
	if !*c.Spec.Gateways.PerRevision {
		errs = append(errs, field.Forbidden(p, "must not be set when spec.gateways.perRevision is false: each revision's Ingress fronts that revision's gateways"))
	}
	if len(in.Template) == 0 {
		errs = append(errs, field.Required(p.Child("template"), "must be an Ingress object"))
	} else if err := c.checkTemplateShape(s); err != nil {
		errs = append(errs, field.Invalid(p.Child("template"), nil, err.Error()))
		return errs
	}
	if k, _ := in.Template["kind"].(string); k != "" && k != "Ingress" {
		errs = append(errs, field.Invalid(p.Child("template", "kind"), k, `must be "Ingress"`))
	}
	for i, a := range in.LiveOnlyAnnotations {
		if a == "" || strings.Contains(strings.TrimSuffix(a, "*"), "*") {
			errs = append(errs, field.Invalid(p.Child("liveOnlyAnnotations").Index(i), a, `must be an annotation key, optionally ending in "*"`))
		}
	}
	for _, rev := range SortedKeys(in.PerRevision) {
		at := p.Child("perRevision").Key(rev)
		errs = append(errs, c.listed(at, rev, "remove its entry here")...)
		v := in.PerRevision[rev]
		for _, k := range SortedKeys(v.Annotations) {
			if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
				errs = append(errs, field.Invalid(at.Child("annotations").Key(k), k, "must be an annotation key: "+strings.Join(msgs, "; ")))
			}
		}
		for _, k := range SortedKeys(v.Labels) {
			if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
				errs = append(errs, field.Invalid(at.Child("labels").Key(k), k, "must be a label key: "+strings.Join(msgs, "; ")))
			} else if msgs := validation.IsValidLabelValue(v.Labels[k]); len(msgs) > 0 {
				errs = append(errs, field.Invalid(at.Child("labels").Key(k), v.Labels[k], "must be a label value: "+strings.Join(msgs, "; ")))
			}
		}
	}
	if !in.ManagesDNS() {
		return errs
	}
	// The function writes these once hosts is set; one written by hand
	// too would be silently replaced.
	owned := append(DNSAnnotations("hostname"), DNSAnnotations("ingress-hostname-source")...)
	ownedMsg := fmt.Sprintf("must not be set while %s is: the function writes it on each revision's Ingress, with the hosts that revision publishes", p.Child("hosts"))
	annotations, _ := nested(in.Template, "metadata", "annotations").(map[string]any)
	for _, k := range owned {
		if _, ok := annotations[k]; ok {
			errs = append(errs, field.Forbidden(p.Child("template", "metadata", "annotations").Key(k), ownedMsg))
		}
		for _, rev := range SortedKeys(in.PerRevision) {
			if _, ok := in.PerRevision[rev].Annotations[k]; ok {
				errs = append(errs, field.Forbidden(p.Child("perRevision").Key(rev).Child("annotations").Key(k), ownedMsg))
			}
		}
	}
	rules := in.RuleHosts()
	for _, h := range SortedKeys(in.Hosts) {
		at := p.Child("hosts").Key(h)
		if msgs := validation.IsDNS1123Subdomain(strings.TrimPrefix(h, "*.")); len(msgs) > 0 || h == "*" {
			errs = append(errs, field.Invalid(at, h, "must be a host name (lower case, such as shop.example.com or *.example.com)"))
			continue
		}
		if !slices.ContainsFunc(rules, func(r string) bool { return RuleCovers(r, h) }) {
			have := "it has no rule with a host"
			if len(rules) > 0 {
				have = fmt.Sprintf("its rules' hosts are %q", rules)
			}
			errs = append(errs, field.Invalid(at, h, fmt.Sprintf("must be served by a rule of %s.template (a host, or one label under a wildcard host): %s", p, have)))
		}
		errs = append(errs, c.listed(at, in.Hosts[h], "move its hosts to another revision")...)
	}
	return errs
}

// checkTemplateShape checks the template as every stage reads it
// (object.CheckShape): metadata, labels and annotations as maps of
// strings, no key twice.
func (c *IstioGitOps) checkTemplateShape(s IngressSpec) error {
	n, err := s.TemplateNode(c)
	if err != nil {
		return err
	}
	if n == nil {
		return nil
	}
	return object.CheckShape(n)
}

// ingressShapes checks the shapes of the Ingress entries' maps, as
// object.CheckShape checks labels and annotations: perRevision a map of
// revisions to values, each value's annotations and labels maps of
// strings, hosts a map of strings.
func ingressShapes(node *yaml.RNode) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "gateways")
	stringMap := func(m *yaml.Node, at *field.Path) {
		var se *object.ShapeError
		if err := object.CheckStringMap(m, at.String()); errors.As(err, &se) {
			if se.Key != "" {
				at = at.Key(se.Key)
			}
			errs = append(errs, field.Invalid(at, nil, fmt.Sprintf("%s (line %d)", se.Msg, se.Line)))
		}
	}
	check := func(entry *yaml.Node, at *field.Path) {
		if entry == nil || entry.Kind != yaml.MappingNode {
			return
		}
		stringMap(mapField(entry, "hosts"), at.Child("hosts"))
		per := mapField(entry, "perRevision")
		if per == nil || per.Kind == yaml.ScalarNode && per.Tag == yaml.NodeTagNull {
			return
		}
		if per.Kind != yaml.MappingNode {
			errs = append(errs, field.Invalid(at.Child("perRevision"), nil, fmt.Sprintf("must be a map of revisions to values, not a %s (line %d)", object.KindName(per.Kind), per.Line)))
			return
		}
		for i := 0; i+1 < len(per.Content); i += 2 {
			rev, v := per.Content[i].Value, per.Content[i+1]
			vp := at.Child("perRevision").Key(rev)
			if v.Kind != yaml.MappingNode {
				errs = append(errs, field.Invalid(vp, nil, fmt.Sprintf("must be a map holding annotations and labels, not a %s (line %d)", object.KindName(v.Kind), v.Line)))
				continue
			}
			for _, f := range []string{"annotations", "labels"} {
				stringMap(mapField(v, f), vp.Child(f))
			}
		}
	}
	gw := mapField(node.YNode(), "spec")
	gw = mapField(gw, "gateways")
	check(mapField(gw, "ingress"), p.Child("ingress"))
	if list := mapField(gw, "ingresses"); list != nil && list.Kind == yaml.SequenceNode {
		for i, e := range list.Content {
			check(e, p.Child("ingresses").Index(i))
		}
	}
	return errs
}

// mapField is the value of key in the mapping m; nil when m is not a
// mapping or has no such key.
func mapField(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
