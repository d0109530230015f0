// Package promotion holds a fleet's order: a cluster moves to an Istio
// version only after the clusters it follows (spec.promotion.after) ran
// it, as their active version, for the soak time, read from Git history.
// It knows what a cluster's tree shows (State: the versions it lists and
// where its pointers point), how that changed over the first-parent
// history (Timeline), which steps the order refuses (Check), and what it
// allows next (Advise).
package promotion

import (
	"fmt"
	"slices"
	"strings"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/object"
)

// Pointer is a config field that points at one revision: where a step
// moves the cluster.
type Pointer struct {
	// Field is its path in the config, such as spec.activeRevision or
	// spec.tags.prod-stable.
	Field    string `json:"field"`
	Revision string `json:"revision"`
}

// Field paths of the pointers; TagsField is the prefix of one field per
// tag.
const (
	ActiveField  = config.FieldActiveRevision
	LiveField    = config.FieldLive
	CNIField     = config.FieldNodeAgentsCNI
	ZtunnelField = config.FieldNodeAgentsZtunnel
	TagsField    = config.FieldTags + "."
	hostsKey     = ".hosts."
)

// HostOf is the DNS host a pointer's field moves (spec.gateways.ingress.hosts.<host>,
// or an entry of spec.gateways.ingresses), if it is a host's.
func HostOf(field string) (string, bool) {
	if !strings.HasPrefix(field, config.FieldIngress) {
		return "", false
	}
	_, host, ok := strings.Cut(field, hostsKey)
	return host, ok
}

// Pointers lists where cfg points, in a stable order: the active revision,
// the tags by name, the live gateways, the DNS hosts of each Ingress
// template, istio-cni, ztunnel. A
// pointer the config gains joins this list, and the order guards it. The live gateways and the node agents count
// where they decide something: set in the config, or (the live gateways)
// followed by stable Services or an Ingress; their defaults follow the
// active revision. A host not listed follows the live gateways.
func Pointers(cfg *config.IstioGitOps) []Pointer {
	s := cfg.Spec
	ps := []Pointer{{Field: ActiveField, Revision: s.ActiveRevision}}
	for _, tag := range config.SortedKeys(s.Tags) {
		ps = append(ps, Pointer{Field: TagsField + tag, Revision: s.Tags[tag]})
	}
	if s.Gateways.Live != "" && (cfg.MovesTraffic() || written(cfg, "gateways", "live")) {
		ps = append(ps, Pointer{Field: LiveField, Revision: s.Gateways.Live})
	}
	for _, in := range cfg.Ingresses() {
		for _, host := range config.SortedKeys(in.Hosts) {
			ps = append(ps, Pointer{Field: in.Field + hostsKey + host, Revision: in.Hosts[host]})
		}
	}
	// istio-cni and ztunnel move one at a time, each a step of its own:
	// each agent is a pointer, its own field's or nodeAgents.revision's,
	// as the objects rendered for it record it.
	na := s.NodeAgents
	for _, a := range []struct{ own, key, field string }{{na.CNI, "cni", CNIField}, {na.Ztunnel, "ztunnel", ZtunnelField}} {
		rev := ""
		if a.own != "" && written(cfg, "nodeAgents", a.key) {
			rev = a.own
		} else if na.Revision != "" && written(cfg, "nodeAgents", "revision") {
			rev = na.Revision
		}
		if rev != "" {
			ps = append(ps, Pointer{Field: a.field, Revision: rev})
		}
	}
	return ps
}

// written reports whether the config as read sets spec.<path> (a config
// without its YAML, made in code, sets what it holds).
func written(cfg *config.IstioGitOps, path ...string) bool {
	if cfg.Node == nil {
		return true
	}
	return object.Scalar(cfg.Node, append([]string{"spec"}, path...)...) != ""
}

// State is a cluster as its tree shows it at one point: the revisions it
// lists with their Istio versions, and where its pointers point.
type State struct {
	// Name is the config's metadata.name.
	Name      string
	Revisions []string
	// Versions are the revisions' Istio versions ("" where not known).
	Versions map[string]string
	Pointers []Pointer
}

// StateOf is what a config shows; version gives the version of a revision
// the config does not pin (its record's).
func StateOf(cfg *config.IstioGitOps, version func(rev string) string) *State {
	s := &State{Name: cfg.Metadata.Name, Versions: map[string]string{}, Pointers: Pointers(cfg)}
	for _, r := range cfg.Spec.Revisions {
		s.Revisions = append(s.Revisions, r.Name)
		v := r.Version
		if v == "" && version != nil {
			v = version(r.Name)
		}
		s.Versions[r.Name] = v
	}
	return s
}

// Version is the Istio version of rev ("" when the tree does not say).
func (s *State) Version(rev string) string {
	if s == nil {
		return ""
	}
	return s.Versions[rev]
}

// Pointer is the revision a field points at, if it is set.
func (s *State) Pointer(field string) (string, bool) {
	if s == nil {
		return "", false
	}
	for _, p := range s.Pointers {
		if p.Field == field {
			return p.Revision, true
		}
	}
	return "", false
}

// PointerVersion is the version a field points at ("" when unset or not
// known).
func (s *State) PointerVersion(field string) string {
	rev, ok := s.Pointer(field)
	if !ok {
		return ""
	}
	return s.Version(rev)
}

// Active is the active version: that of spec.activeRevision.
func (s *State) Active() string { return s.PointerVersion(ActiveField) }

// ActiveRevision is spec.activeRevision.
func (s *State) ActiveRevision() string {
	rev, _ := s.Pointer(ActiveField)
	return rev
}

// Lists reports whether a listed revision has version v.
func (s *State) Lists(v string) bool {
	if s == nil || v == "" {
		return false
	}
	for _, r := range s.Revisions {
		if s.Versions[r] == v {
			return true
		}
	}
	return false
}

// ListedVersions are the versions of the listed revisions, oldest
// revision first, each once.
func (s *State) ListedVersions() []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, r := range s.Revisions {
		if v := s.Versions[r]; v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// describe says what the cluster runs: its active version and revision.
func (s *State) describe() string {
	if s == nil {
		return "no tree"
	}
	v := s.Active()
	if v == "" {
		v = "an unknown version"
	}
	return fmt.Sprintf("%s (active revision %q)", v, s.ActiveRevision())
}
