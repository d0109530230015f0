// Package envoyfilter drops the EnvoyFilters istioctl pins to another Istio
// version than the revision's own.
package envoyfilter

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/istio-gitops/istio-gitops/internal/object"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Drop is an EnvoyFilter left out, and why.
type Drop struct {
	Object *yaml.RNode
	Reason string
}

// Filter is a kio.Filter that keeps every object but the EnvoyFilters whose
// proxyVersion matchers all exclude Version. Istio 1.8 to 1.20 emitted, next
// to the current filters, copies for the previous minor version (pinned with
// match.proxy.proxyVersion); a canary tree keeps each version's own.
type Filter struct {
	Version string
	// Dropped lists what the last Filter call left out, in input order.
	Dropped []Drop
}

// Filter implements kio.Filter.
func (f *Filter) Filter(nodes []*yaml.RNode) ([]*yaml.RNode, error) {
	f.Dropped = nil
	kept := nodes[:0:0]
	for _, n := range nodes {
		drop, reason, err := Pinned(n, f.Version)
		if err != nil {
			return nil, err
		}
		if drop {
			f.Dropped = append(f.Dropped, Drop{Object: n, Reason: reason})
			continue
		}
		kept = append(kept, n)
	}
	return kept, nil
}

// Pinned reports whether obj is an EnvoyFilter pinned away from version:
// every configPatch carries match.proxy.proxyVersion and none matches.
// A filter with an unpinned patch applies to every proxy and is kept.
func Pinned(obj *yaml.RNode, version string) (bool, string, error) {
	if obj.GetKind() != "EnvoyFilter" {
		return false, "", nil
	}
	patches, err := obj.Pipe(yaml.Lookup("spec", "configPatches"))
	if err != nil || patches == nil || len(patches.Content()) == 0 {
		return false, "", nil
	}
	var exprs []string
	for i, p := range patches.Content() {
		v, err := yaml.NewRNode(p).Pipe(yaml.Lookup("match", "proxy", "proxyVersion"))
		if err != nil || v == nil || yaml.GetValue(v) == "" {
			return false, "", nil
		}
		expr := yaml.GetValue(v)
		re, err := regexp.Compile(expr)
		if err != nil {
			return false, "", fmt.Errorf("%s: spec.configPatches[%d].match.proxy.proxyVersion %q must be a regular expression: %w",
				object.Describe(obj), i, expr, err)
		}
		if version == "" {
			return false, "", fmt.Errorf("%s is pinned to proxyVersion %q: the revision's Istio version must be known (set spec.revisions[].version)",
				object.Describe(obj), expr)
		}
		// Istio matches proxyVersion with an unanchored regexp.MatchString.
		if re.MatchString(version) {
			return false, "", nil
		}
		exprs = append(exprs, fmt.Sprintf("%q", expr))
	}
	return true, fmt.Sprintf("proxyVersion %s does not match Istio %s", strings.Join(uniq(exprs), ", "), version), nil
}

func uniq(s []string) []string {
	out := s[:0:0]
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}
