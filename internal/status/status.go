// Package status says what a mesh tree says, at a glance: each revision
// with its Istio version, which is active, whose gateways are live and
// whose node agents run, where the tags point, and how many namespaces
// (and workloads that pick a revision themselves) sit on each.
package status

import (
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/istioctl"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/nodeagent"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/pointer"
	"github.com/istio-gitops/istio-gitops/internal/revision"
	"github.com/istio-gitops/istio-gitops/internal/state"
	"github.com/istio-gitops/istio-gitops/internal/webhook"
)

// Status is one tree's state.
type Status struct {
	Config    string
	Path      string
	Revisions []Revision
	Tags      []Tag
	// Namespaces are the Namespace manifests found, by what they select;
	// Workloads the workloads that select a revision themselves.
	Namespaces, Workloads []Selection
	// Warnings are what the reader must act on: namespaces and workloads
	// that ask for a sidecar and that nothing in the tree injects.
	Warnings []string
	// Hosts are the hosts each Ingress template publishes in DNS, and
	// from which revision's Ingress (spec.gateways.ingress hosts), by host.
	Hosts []Host
}

// Host is a host external-dns publishes from one revision's Ingress.
type Host struct {
	Name string
	// Ingress is the template's name (its Ingresses are <name>-<rev>).
	Ingress  string
	Revision string
}

// Revision is one control plane.
type Revision struct {
	Name, Version string
	Active, Live  bool
	// NodeAgents reports whether ambient node agents run from this
	// revision's output; Agents says which (istio-cni, ztunnel): each
	// moves on its own.
	NodeAgents bool
	Agents     []string
	// Generated reports whether the tree holds its files yet.
	Generated bool
}

// Tag points at a revision.
type Tag struct{ Name, Revision string }

// Selection is the namespaces selecting one revision or tag.
type Selection struct {
	// Selects is the value of istio.io/rev, or "default" for
	// istio-injection=enabled.
	Selects string
	// Label is the namespace label doing it.
	Label string
	// Revision is where Selects leads ("" when nowhere in the tree).
	Revision string
	// NotInjected says Selects is the default tag and the tree renders no
	// default tag webhook: nothing injects what it selects.
	NotInjected bool
	// Namespaces are the namespaces (or the workloads, as Kind ns/name).
	Namespaces []string
}

// Of computes the status of the IstioGitOps config cfgNode over items
// (the tree, and any Namespace manifests kept elsewhere).
func Of(cfgNode *yaml.RNode, items []*yaml.RNode) (*Status, error) {
	return OfFiles(cfgNode, fileset.FromItems(items))
}

// OfFiles is Of over files: only the records, the tag webhooks of
// common/, the sources of revisions not generated yet and the files the
// run does not own are parsed.
func OfFiles(cfgNode *yaml.RNode, files fileset.Set) (*Status, error) {
	cfg, err := config.Load(cfgNode)
	if err != nil {
		return nil, err
	}
	root := path.Dir(object.Path(cfgNode))
	s := &Status{Config: cfg.Metadata.Name, Path: object.Path(cfgNode)}
	versions := map[string]string{}
	generated := map[string]bool{}
	agents := map[string]bool{}
	sources := map[string]*fileset.File{}
	// The tree's own objects (istiod, gateways) are not the teams'.
	var theirs, tagWebhooks []*yaml.RNode
	for _, f := range files {
		parts := strings.Split(relFile(root, f.Path), "/")
		switch {
		case len(parts) == 3 && parts[1] == layout.Generated && parts[2] == layout.StateFile:
			objs, err := f.Objects()
			if err == nil && len(objs) == 1 && state.Is(objs[0], state.Kind) {
				if st, err := state.Read(objs[0]); err == nil {
					versions[parts[0]] = st.Spec.Version
					generated[parts[0]] = true
				}
			}
			continue
		case len(parts) > 3 && parts[1] == layout.Generated && parts[2] == "node-agents":
			agents[parts[0]] = true
			continue
		case len(parts) >= 2 && parts[0] == layout.Common && strings.HasPrefix(parts[len(parts)-1], pointer.TagWebhookPrefix):
			if objs, err := f.Objects(); err == nil {
				tagWebhooks = append(tagWebhooks, objs...)
			}
			continue
		case len(parts) >= 3 && (parts[1] == layout.Generated || parts[0] == layout.Common):
			continue
		}
		sources[f.Path] = f
		objs, err := f.Objects()
		if err != nil {
			return nil, err
		}
		// `kubectl get ns -o yaml` writes a List.
		if objs, err = object.Unwrap(objs); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		for _, o := range objs {
			if err := object.CheckPodMetadata(o); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", f.Path, object.Describe(o), err)
			}
		}
		theirs = append(theirs, objs...)
	}
	for _, r := range cfg.Spec.Revisions {
		v := r.Version
		if v == "" {
			v = versions[r.Name]
		}
		if v == "" {
			if f := sources[path.Join(root, r.Source)]; f != nil {
				objs, _ := f.Objects()
				v, _ = istioctl.Version(objs)
			}
		}
		var runs []string
		for _, a := range nodeagent.Agents {
			if rev, _ := cfg.NodeAgent(string(a)); agents[r.Name] && rev == r.Name {
				runs = append(runs, a.String())
			}
		}
		s.Revisions = append(s.Revisions, Revision{
			Name: r.Name, Version: v,
			Active:     r.Name == cfg.Spec.ActiveRevision,
			Live:       r.Name == cfg.Spec.Gateways.Live,
			NodeAgents: len(runs) > 0,
			Agents:     runs,
			Generated:  generated[r.Name],
		})
	}
	for _, t := range config.SortedKeys(cfg.Spec.Tags) {
		s.Tags = append(s.Tags, Tag{Name: t, Revision: cfg.Spec.Tags[t]})
	}
	for _, in := range cfg.Ingresses() {
		for _, rev := range cfg.RevisionNames() {
			for _, h := range in.HostsOf(rev, cfg.Spec.Gateways.Live) {
				s.Hosts = append(s.Hosts, Host{Name: h, Ingress: in.Name(), Revision: rev})
			}
		}
	}
	slices.SortStableFunc(s.Hosts, func(a, b Host) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Ingress, b.Ingress))
	})
	injector, found := defaultInjector(cfg, root, tagWebhooks)
	s.Namespaces, s.Workloads = selections(cfg, theirs, injector, found)
	s.Warnings = notInjected(cfg, root, s.Namespaces, s.Workloads)
	return s, nil
}

// defaultInjector is the revision the tree's default tag webhook
// (common/, istio-revision-tag-default) injects from: it alone injects
// namespaces labelled istio-injection=enabled or istio.io/rev=default and
// pods labelled sidecar.istio.io/inject=true, so they are counted where
// it points, as the tree deploys it. found is false when the tree has no
// such webhook (a tree not run since spec.activeRevision renders it).
func defaultInjector(cfg *config.IstioGitOps, root string, items []*yaml.RNode) (rev string, found bool) {
	for _, it := range items {
		parts := strings.Split(relPath(root, it), "/")
		if len(parts) < 2 || parts[0] != layout.Common || !pointer.IsPointer(it) || it.GetKind() != webhook.KindMutating {
			continue
		}
		if pointer.TagOf(it, cfg.Spec.Namespace) == pointer.DefaultTag {
			return pointer.TargetOf(it), true
		}
	}
	return "", false
}

// relPath is an item's path relative to the tree's root.
func relPath(root string, it *yaml.RNode) string { return relFile(root, object.Path(it)) }

// relFile is a path relative to the tree's root.
func relFile(root, p string) string {
	if root == "." {
		return p
	}
	return strings.TrimPrefix(p, root+"/")
}

// notInjected warns of the namespaces and workloads that select the
// default tag when the tree has no webhook for it, naming them and what
// to do.
func notInjected(cfg *config.IstioGitOps, root string, groups ...[]Selection) []string {
	var out []string
	for _, sels := range groups {
		for _, sel := range sels {
			if !sel.NotInjected {
				continue
			}
			rev := cfg.Spec.ActiveRevision
			if r, ok := cfg.Spec.Tags[revision.DefaultTag]; ok {
				rev = r
			}
			out = append(out, fmt.Sprintf("not injected: %s (%s): nothing in the tree injects them, since %s has no MutatingWebhookConfiguration %s%s; run `istio-gitops run %s`, which renders it from spec.activeRevision (%q), or add `default: %s` under spec.tags to choose the revision",
				strings.Join(sel.Namespaces, ", "), sel.Label, layout.Common, pointer.TagWebhookPrefix, revision.DefaultTag, root, rev, rev))
		}
	}
	return out
}

// selections groups the Namespaces of the input, and the workloads that
// pick a revision themselves, by what they select, as Istio's injector
// reads their labels (revision.ObjectSelects).
func selections(cfg *config.IstioGitOps, items []*yaml.RNode, injector string, found bool) (namespaces, workloads []Selection) {
	pointers := revision.Pointers{Revisions: cfg.RevisionNames(), Tags: cfg.Spec.Tags, Active: cfg.Spec.ActiveRevision}
	group := func(by map[string][]string, labelOf map[string]string) []Selection {
		var out []Selection
		for _, label := range config.SortedKeys(by) {
			names := by[label]
			slices.Sort(names)
			s := Selection{Selects: labelOf[label], Label: label, Revision: pointers.Resolve(labelOf[label]), Namespaces: slices.Compact(names)}
			if s.Selects == revision.DefaultTag && !slices.Contains(cfg.RevisionNames(), s.Selects) {
				s.Revision, s.NotInjected = injector, !found
			}
			out = append(out, s)
		}
		return out
	}
	nsBy, wlBy := map[string][]string{}, map[string][]string{}
	labelOf := map[string]string{}
	// labelled are the namespaces of the input whose own labels decide
	// their pods' injection.
	labelled := map[string]bool{}
	for _, it := range items {
		if it.GetKind() == "Namespace" && it.GetApiVersion() == "v1" {
			l := it.GetLabels()
			_, inj := l[api.InjectionLabel]
			_, rev := l[api.RevisionLabel]
			labelled[it.GetName()] = inj || rev
		}
	}
	for _, it := range items {
		sel, isNamespace, ok := revision.ObjectSelects(it)
		if !ok && revision.AsksDefault(it) && !labelled[it.GetNamespace()] {
			sel, ok = revision.InjectSelector, true
		}
		if !ok {
			continue
		}
		labelOf[sel.Label] = sel.Value
		if isNamespace {
			nsBy[sel.Label] = append(nsBy[sel.Label], it.GetName())
		} else {
			wlBy[sel.Label] = append(wlBy[sel.Label], object.Describe(it))
		}
	}
	return group(nsBy, labelOf), group(wlBy, labelOf)
}

// count is how many namespaces end on rev.
func (s *Status) count(rev string) int { return countOn(s.Namespaces, rev) }

// workloads is how many workloads pick rev themselves.
func (s *Status) workloads(rev string) int { return countOn(s.Workloads, rev) }

func countOn(sels []Selection, rev string) int {
	n := 0
	for _, sel := range sels {
		if sel.Revision == rev {
			n += len(sel.Namespaces)
		}
	}
	return n
}

// Text writes the status as a table.
func (s *Status) Text(w io.Writer) {
	fmt.Fprintf(w, "IstioGitOps %q (%s)\n\n", s.Config, s.Path)
	fmt.Fprintf(w, "%-12s %-10s %-7s %-5s %-9s %-24s %-10s %s\n", "REVISION", "VERSION", "ACTIVE", "LIVE", "NODES", "TAGS", "NAMESPACES", "WORKLOADS")
	for _, r := range s.Revisions {
		v := r.Version
		if !r.Generated {
			v += " (not generated yet)"
		}
		fmt.Fprintf(w, "%-12s %-10s %-7s %-5s %-9s %-24s %-10d %d\n", r.Name, orDash(v), mark(r.Active), mark(r.Live), r.nodes("*"),
			orDash(strings.Join(s.tagsOf(r.Name), ",")), s.count(r.Name), s.workloads(r.Name))
	}
	selectorLines(w, "NAMESPACES BY SELECTOR", s.Namespaces)
	selectorLines(w, "WORKLOADS THAT PICK A REVISION THEMSELVES", s.Workloads)
	if len(s.Hosts) > 0 {
		fmt.Fprintln(w, "\nDNS HOSTS BY REVISION (external-dns, spec.gateways.ingress hosts)")
		for _, r := range s.Revisions {
			fmt.Fprintf(w, "  %s: %s\n", r.Name, orDash(strings.Join(s.hostsOf(r.Name, false), ", ")))
		}
	}
	for _, m := range s.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", m)
	}
}

// hostsOf are the hosts rev's Ingresses publish, each named with its
// Ingress template where two templates publish it.
func (s *Status) hostsOf(rev string, markdown bool) []string {
	templates := map[string]map[string]bool{}
	for _, h := range s.Hosts {
		if templates[h.Name] == nil {
			templates[h.Name] = map[string]bool{}
		}
		templates[h.Name][h.Ingress] = true
	}
	var out []string
	for _, h := range s.Hosts {
		if h.Revision != rev {
			continue
		}
		name := h.Name
		if markdown {
			name = "`" + name + "`"
		}
		if len(templates[h.Name]) > 1 {
			name += " (" + h.Ingress + ")"
		}
		out = append(out, name)
	}
	return out
}

// selectorLines writes a titled section of a line per selector: where it
// leads and what it selects. Nothing when there is no selector.
func selectorLines(w io.Writer, title string, sels []Selection) {
	if len(sels) == 0 {
		return
	}
	fmt.Fprintln(w, "\n"+title)
	for _, sel := range sels {
		to := sel.Revision
		switch {
		case sel.NotInjected:
			to = "not injected"
		case to == "":
			to = "no revision of this tree"
		}
		fmt.Fprintf(w, "  %s -> %s: %d (%s)\n", sel.Label, to, len(sel.Namespaces), strings.Join(sel.Namespaces, ", "))
	}
}

// Markdown writes the status as a table and a Mermaid diagram (namespaces
// -> tags -> revisions), fit for a pull-request description.
func (s *Status) Markdown(w io.Writer) {
	fmt.Fprintf(w, "### Istio mesh `%s`\n\n", s.Config)
	fmt.Fprintln(w, "| revision | Istio | active | live gateways | node agents | tags | namespaces | workloads |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range s.Revisions {
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s | %s | %d | %d |\n", r.Name, orDash(r.Version), yes(r.Active), yes(r.Live), r.nodes("yes"),
			orDash(strings.Join(s.tagsOf(r.Name), ", ")), s.count(r.Name), s.workloads(r.Name))
	}
	if len(s.Hosts) > 0 {
		fmt.Fprintln(w, "\n| revision | DNS hosts it publishes (external-dns) |\n| --- | --- |")
		for _, r := range s.Revisions {
			fmt.Fprintf(w, "| `%s` | %s |\n", r.Name, orDash(strings.Join(s.hostsOf(r.Name, true), ", ")))
		}
	}
	fmt.Fprintln(w, "\n```mermaid\nflowchart LR")
	for _, r := range s.Revisions {
		label := r.Name
		if r.Version != "" {
			label += "<br/>Istio " + r.Version
		}
		if r.Active {
			label += "<br/>active"
		}
		if r.Live {
			label += "<br/>live gateways"
		}
		if r.NodeAgents {
			label += "<br/>" + r.nodes("node agents")
		}
		fmt.Fprintf(w, "  %s[\"%s\"]\n", node("rev", r.Name), label)
	}
	for _, t := range s.Tags {
		fmt.Fprintf(w, "  %s([\"tag %s\"]) --> %s\n", node("tag", t.Name), t.Name, node("rev", t.Revision))
	}
	for _, sel := range s.Namespaces {
		label := fmt.Sprintf("%s<br/>%s", plural(len(sel.Namespaces), "namespace"), shortList(sel.Namespaces))
		target := node("rev", sel.Selects)
		if slices.ContainsFunc(s.Tags, func(t Tag) bool { return t.Name == sel.Selects }) {
			target = node("tag", sel.Selects)
		} else if sel.NotInjected {
			target = node("unknown", sel.Selects)
			fmt.Fprintf(w, "  %s{{\"%s: not injected\"}}\n", target, sel.Selects)
		} else if sel.Revision == "" {
			target = node("unknown", sel.Selects)
			fmt.Fprintf(w, "  %s{{\"%s: not in this tree\"}}\n", target, sel.Selects)
		} else if sel.Selects != sel.Revision {
			target = node("rev", sel.Revision)
		}
		fmt.Fprintf(w, "  %s[/\"%s\"/] -->|%s| %s\n", node("ns", sel.Label), label, sel.Label, target)
	}
	fmt.Fprintln(w, "```")
	for _, m := range s.Warnings {
		fmt.Fprintf(w, "\n> **Warning**: %s\n", m)
	}
}

func (s *Status) tagsOf(rev string) []string {
	var out []string
	for _, t := range s.Tags {
		if t.Revision == rev {
			out = append(out, t.Name)
		}
	}
	return out
}

// node is a Mermaid node id: letters, digits and underscores.
func node(kind, name string) string {
	return kind + "_" + strings.NewReplacer("-", "_", ".", "_", "/", "_", "=", "_").Replace(name)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func shortList(names []string) string {
	if len(names) > 4 {
		return strings.Join(names[:4], ", ") + fmt.Sprintf(", +%d", len(names)-4)
	}
	return strings.Join(names, ", ")
}

func mark(b bool) string {
	if b {
		return "*"
	}
	return ""
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nodes says which node agents run from the revision: all as all, one by
// its name, none as "".
func (r Revision) nodes(all string) string {
	switch len(r.Agents) {
	case 0:
		return ""
	case len(nodeagent.Agents):
		return all
	}
	return strings.Join(r.Agents, ",")
}
