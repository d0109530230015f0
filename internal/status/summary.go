package status

// Summary is the status as data, for `status --output json`: the table's
// rows and the namespaces by selector.
type Summary struct {
	// Config is the IstioGitOps config's name, Path its file.
	Config    string        `json:"config"`
	Path      string        `json:"path"`
	Revisions []RevisionRow `json:"revisions"`
	Tags      []TagRow      `json:"tags"`
	Selectors []Selector    `json:"selectors"`
	// Workloads are the workloads that pick a revision themselves, by
	// what they select (Namespaces holds them as Kind namespace/name).
	Workloads []Selector `json:"workloads"`
	// Warnings are what must be acted on: namespaces and workloads that
	// ask for a sidecar that nothing in the tree injects.
	Warnings []string `json:"warnings"`
}

// RevisionRow is one row of the table.
type RevisionRow struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Generated says the tree holds the revision's files yet.
	Generated bool `json:"generated"`
	Active    bool `json:"active"`
	Live      bool `json:"live"`
	// NodeAgents says ambient node agents run from this revision; Agents
	// which of them (istio-cni, ztunnel).
	NodeAgents bool     `json:"nodeAgents"`
	Agents     []string `json:"agents"`
	// Tags point at the revision.
	Tags []string `json:"tags"`
	// Hosts are the hosts its Ingresses publish in DNS (external-dns).
	Hosts []HostRow `json:"hosts"`
	// Namespaces counts the namespaces that end on the revision;
	// Workloads the workloads that pick it themselves.
	Namespaces int `json:"namespaces"`
	Workloads  int `json:"workloads"`
}

// HostRow is a host a revision's Ingress publishes.
type HostRow struct {
	Name string `json:"name"`
	// Ingress is the Ingress template's name.
	Ingress string `json:"ingress"`
}

// TagRow is a revision tag and the revision it points at.
type TagRow struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
}

// Selector is the namespaces selecting one revision or tag.
type Selector struct {
	// Label is the namespace label doing it, such as istio.io/rev=1-30.
	Label string `json:"label"`
	// Selects is the revision or tag it names ("default" for
	// istio-injection=enabled).
	Selects string `json:"selects"`
	// Revision is where Selects leads; empty when nowhere in the tree.
	Revision string `json:"revision"`
	// NotInjected says nothing in the tree injects them: they select the
	// default tag, and the tree has no webhook for it.
	NotInjected bool     `json:"notInjected,omitempty"`
	Namespaces  []string `json:"namespaces"`
}

// Summary is the status as data; lists are never nil.
func (s *Status) Summary() Summary {
	out := Summary{Config: s.Config, Path: s.Path, Revisions: []RevisionRow{}, Tags: []TagRow{}, Selectors: []Selector{}, Workloads: []Selector{}, Warnings: []string{}}
	for _, r := range s.Revisions {
		tags := s.tagsOf(r.Name)
		if tags == nil {
			tags = []string{}
		}
		agents := r.Agents
		if agents == nil {
			agents = []string{}
		}
		hosts := []HostRow{}
		for _, h := range s.Hosts {
			if h.Revision == r.Name {
				hosts = append(hosts, HostRow{Name: h.Name, Ingress: h.Ingress})
			}
		}
		out.Revisions = append(out.Revisions, RevisionRow{
			Name: r.Name, Version: r.Version, Generated: r.Generated, Active: r.Active, Live: r.Live, NodeAgents: r.NodeAgents, Agents: agents,
			Tags: tags, Hosts: hosts, Namespaces: s.count(r.Name), Workloads: s.workloads(r.Name),
		})
	}
	for _, t := range s.Tags {
		out.Tags = append(out.Tags, TagRow{Name: t.Name, Revision: t.Revision})
	}
	for _, sel := range s.Namespaces {
		out.Selectors = append(out.Selectors, Selector{Label: sel.Label, Selects: sel.Selects, Revision: sel.Revision, NotInjected: sel.NotInjected, Namespaces: sel.Namespaces})
	}
	for _, sel := range s.Workloads {
		out.Workloads = append(out.Workloads, Selector{Label: sel.Label, Selects: sel.Selects, Revision: sel.Revision, NotInjected: sel.NotInjected, Namespaces: sel.Namespaces})
	}
	out.Warnings = append(out.Warnings, s.Warnings...)
	return out
}
