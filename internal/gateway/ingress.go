package gateway

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

const (
	ingressAPIVersion = "networking.k8s.io/v1"
	ingressKind       = "Ingress"
)

// IngressOptions say how one revision's Ingress differs from the
// template.
type IngressOptions struct {
	// Live says the revision's gateways are live: its Ingress keeps the
	// annotations matching LiveOnly (a key, or a prefix ending in "*").
	Live     bool
	LiveOnly []string
	// Values are annotations and labels set over the template's (after
	// LiveOnly: a value given for the revision is always kept).
	Values config.IngressValues
	// DNS writes the external-dns annotations: the hostname source
	// annotation-only, and Hosts (sorted) as the hostname annotation,
	// absent when there are none.
	DNS   bool
	Hosts []string
}

// Ingress renders revision rev's Ingress from template, the way the article
// puts a cloud load balancer in front of each gateway set:
//   - it is named <template name>-<rev>;
//   - every backend service (spec.defaultBackend and
//     spec.rules[].http.paths[].backend) that names a gateway Service by its
//     original name (istio-ingressgateway) is pointed at the revision's
//     Service (istio-ingressgateway-<rev>), whose port it must name;
//   - its namespace is the template's, else the gateway Service's (an
//     Ingress reaches only Services of its own namespace);
//   - annotations matching opts.LiveOnly (a key, or a prefix ending in "*",
//     such as "cert-manager.io/*") are kept only on the live revision's
//     Ingress, so cert-manager and external-dns act on one Ingress only;
//   - opts.Values are set over the template's annotations and labels;
//   - with opts.DNS, external-dns publishes from it opts.Hosts alone (the
//     hostname source annotation-only, the hosts comma-separated in the
//     hostname annotation), whatever its rules say.
//
// objs are the revision's objects after PerRevision. The template is not
// changed; the result is a new object keeping its field order and comments.
func Ingress(template *yaml.RNode, rev string, opts IngressOptions, objs []*yaml.RNode) (*yaml.RNode, error) {
	if template == nil {
		return nil, fmt.Errorf("Ingress template: must be an Ingress object")
	}
	name := template.GetName()
	if name == "" {
		return nil, fmt.Errorf("Ingress template: metadata.name must be set: the revision's Ingress is named <name>-%s", rev)
	}
	desc := fmt.Sprintf("Ingress template %q", name)
	if k := template.GetKind(); k != "" && k != ingressKind {
		return nil, fmt.Errorf("%s: kind %q must be %q", desc, k, ingressKind)
	}
	if av := template.GetApiVersion(); av != "" && av != ingressAPIVersion {
		return nil, fmt.Errorf("%s: apiVersion %q must be %q", desc, av, ingressAPIVersion)
	}
	for i, p := range opts.LiveOnly {
		if p == "" || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			return nil, fmt.Errorf("liveOnlyAnnotations[%d]: %q must be an annotation key, optionally ending in \"*\"", i, p)
		}
	}
	comps, err := Find(objs)
	if err != nil {
		return nil, err
	}
	// Gateway Services by the name the template knows them by.
	services := map[string]*yaml.RNode{}
	var known []string
	for _, c := range comps {
		for _, svc := range c.Services() {
			// Unchanged when gateways are not per revision.
			orig, _ := Original(svc.GetName(), rev)
			services[orig] = svc
			known = append(known, orig)
		}
	}
	slices.Sort(known)

	in := template.Copy()
	if err := layout.ClearReaderAnnotations(in); err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	// A template may leave out its type; the rendered object leads with it.
	if in.GetKind() == "" {
		insertField(in, 0, yaml.KindField, ingressKind)
	}
	if in.GetApiVersion() == "" {
		insertField(in, 0, yaml.APIVersionField, ingressAPIVersion)
	}
	if err := object.SetString(in, name+"-"+rev, "metadata", "name"); err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}

	backends, err := ingressBackends(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	namespace := ""
	rewritten := 0
	for _, b := range backends {
		svc, ok := services[object.Scalar(b.node, "service", "name")]
		if !ok {
			continue
		}
		if err := checkBackendPort(b, svc); err != nil {
			return nil, fmt.Errorf("%s: %w", desc, err)
		}
		if namespace != "" && svc.GetNamespace() != namespace {
			return nil, fmt.Errorf("%s: %s: %s is in namespace %q, another backend's gateway in %q: an Ingress must reach Services of one namespace",
				desc, b.path, object.Describe(svc), svc.GetNamespace(), namespace)
		}
		namespace = svc.GetNamespace()
		if err := object.SetString(b.node, svc.GetName(), "service", "name"); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", desc, b.path, err)
		}
		rewritten++
	}
	if rewritten == 0 {
		return nil, fmt.Errorf("%s: no backend service names a gateway Service of revision %q: spec.defaultBackend or a rule's backend must name one of %q",
			desc, rev, known)
	}
	switch ns := template.GetNamespace(); {
	case ns == "":
		meta, err := in.Pipe(yaml.Lookup(yaml.MetadataField))
		if err != nil {
			return nil, fmt.Errorf("%s: metadata: %w", desc, err)
		}
		// Right after the name, where readers look for it.
		at := 0
		if c := meta.Content(); len(c) > 0 {
			for i := 0; i+1 < len(c); i += 2 {
				if c[i].Value == yaml.NameField {
					at = i + 2
				}
			}
		}
		insertField(meta, at, yaml.NamespaceField, namespace)
	case ns != namespace:
		return nil, fmt.Errorf("%s: metadata.namespace %q must be the gateway Services' namespace %q: an Ingress reaches only Services of its own namespace",
			desc, ns, namespace)
	}

	if !opts.Live {
		for _, k := range config.SortedKeys(in.GetAnnotations()) {
			if !MatchesAny(k, opts.LiveOnly) {
				continue
			}
			if err := in.PipeE(yaml.ClearAnnotation(k)); err != nil {
				return nil, fmt.Errorf("%s: metadata.annotations[%q]: %w", desc, k, err)
			}
		}
		if err := yaml.ClearEmptyAnnotations(in); err != nil {
			return nil, fmt.Errorf("%s: %w", desc, err)
		}
	}
	if err := setValues(in, opts); err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	return in, nil
}

// setValues sets the revision's own annotations and labels, then the
// external-dns ones, each in key order.
func setValues(in *yaml.RNode, opts IngressOptions) error {
	for _, k := range config.SortedKeys(opts.Values.Annotations) {
		if err := object.SetAnnotation(in, k, opts.Values.Annotations[k]); err != nil {
			return fmt.Errorf("metadata.annotations[%q]: %w", k, err)
		}
	}
	for _, k := range config.SortedKeys(opts.Values.Labels) {
		if err := object.SetLabel(in, k, opts.Values.Labels[k]); err != nil {
			return fmt.Errorf("metadata.labels[%q]: %w", k, err)
		}
	}
	if !opts.DNS {
		return nil
	}
	hosts := slices.Compact(slices.Sorted(slices.Values(opts.Hosts)))
	sources, names := config.DNSAnnotations("ingress-hostname-source"), config.DNSAnnotations("hostname")
	for i := range sources {
		if err := object.SetAnnotation(in, sources[i], config.AnnotationOnly); err != nil {
			return fmt.Errorf("metadata.annotations[%q]: %w", sources[i], err)
		}
		if len(hosts) == 0 {
			if err := in.PipeE(yaml.ClearAnnotation(names[i])); err != nil {
				return fmt.Errorf("metadata.annotations[%q]: %w", names[i], err)
			}
			continue
		}
		if err := object.SetAnnotation(in, names[i], strings.Join(hosts, ",")); err != nil {
			return fmt.Errorf("metadata.annotations[%q]: %w", names[i], err)
		}
	}
	return nil
}

// PublishedHosts are the hosts external-dns publishes from an Ingress the
// function rendered with DNS: its hostname annotation, split (under the
// first prefix that restricts external-dns to it). ok is false when the
// Ingress does not restrict external-dns to that annotation.
func PublishedHosts(in *yaml.RNode) (hosts []string, ok bool) {
	a := in.GetAnnotations()
	name := ""
	for _, p := range config.DNSAnnotationPrefixes {
		if a[p+"ingress-hostname-source"] == config.AnnotationOnly {
			name = p + "hostname"
			break
		}
	}
	if name == "" {
		return nil, false
	}
	for _, h := range strings.Split(a[name], ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts, true
}

// MatchesAny reports whether an annotation key matches one of the
// patterns: a key, or a prefix followed by "*".
func MatchesAny(key string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			return strings.HasPrefix(key, prefix)
		}
		return key == p
	})
}

type backend struct {
	path string // for messages: spec.rules[0].http.paths[1].backend
	node *yaml.RNode
}

func ingressBackends(in *yaml.RNode) ([]backend, error) {
	var out []backend
	if b, err := in.Pipe(yaml.Lookup("spec", "defaultBackend")); err != nil {
		return nil, fmt.Errorf("spec.defaultBackend: %w", err)
	} else if b != nil {
		out = append(out, backend{path: "spec.defaultBackend", node: b})
	}
	rules, err := in.Pipe(yaml.Lookup("spec", "rules"))
	if err != nil || rules == nil {
		return out, err
	}
	ruleElems, err := rules.Elements()
	if err != nil {
		return nil, fmt.Errorf("spec.rules: %w", err)
	}
	for i, r := range ruleElems {
		paths, err := r.Pipe(yaml.Lookup("http", "paths"))
		if err != nil {
			return nil, fmt.Errorf("spec.rules[%d].http.paths: %w", i, err)
		}
		if paths == nil {
			continue
		}
		pathElems, err := paths.Elements()
		if err != nil {
			return nil, fmt.Errorf("spec.rules[%d].http.paths: %w", i, err)
		}
		for j, p := range pathElems {
			b, err := p.Pipe(yaml.Lookup("backend"))
			if err != nil {
				return nil, fmt.Errorf("spec.rules[%d].http.paths[%d].backend: %w", i, j, err)
			}
			if b != nil {
				out = append(out, backend{path: fmt.Sprintf("spec.rules[%d].http.paths[%d].backend", i, j), node: b})
			}
		}
	}
	return out, nil
}

// checkBackendPort makes sure the backend's port is one the gateway Service
// exposes: a typo would otherwise surface only as a broken load balancer.
func checkBackendPort(b backend, svc *yaml.RNode) error {
	number := object.Scalar(b.node, "service", "port", "number")
	name := object.Scalar(b.node, "service", "port", "name")
	if number == "" && name == "" {
		return fmt.Errorf("%s.service.port: must give the number or name of a port of %s", b.path, object.Describe(svc))
	}
	ports, err := svc.Pipe(yaml.Lookup("spec", "ports"))
	if err != nil {
		return fmt.Errorf("%s: spec.ports: %w", object.Describe(svc), err)
	}
	var have []string
	if ports != nil {
		elems, err := ports.Elements()
		if err != nil {
			return fmt.Errorf("%s: spec.ports: %w", object.Describe(svc), err)
		}
		for _, p := range elems {
			pn, pp := object.Scalar(p, "name"), object.Scalar(p, "port")
			if (number != "" && pp == number) || (name != "" && pn == name) {
				return nil
			}
			have = append(have, pn+"="+pp)
		}
	}
	want := name
	if number != "" {
		if _, err := strconv.Atoi(number); err != nil {
			return fmt.Errorf("%s.service.port.number: %q must be a number", b.path, number)
		}
		want = number
	}
	return fmt.Errorf("%s.service.port: %q must be a port of %s (%s)", b.path, want, object.Describe(svc), strings.Join(have, ", "))
}

// insertField inserts key: value into the map n at content index at (a key
// index), where SetField would append it at the end.
func insertField(n *yaml.RNode, at int, key, value string) {
	k := yaml.NewScalarRNode(key).YNode()
	v := object.StringNode(value)
	c := n.YNode().Content
	n.YNode().Content = append(c[:at:at], append([]*yaml.Node{k, v}, c[at:]...)...)
}
