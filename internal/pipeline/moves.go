package pipeline

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// moves says, one line a pointer, what the config moved since the last
// run (as common/'s record has it): the active revision, each tag, the
// live gateways and the node agents, with the files that changed. Nothing
// is said when nothing moved, or on a tree's first run. It returns the
// pointers to record.
func moves(t *tree, o *old, r *rendered, res *results) *state.Pointers {
	s := t.cfg.Spec
	now := &state.Pointers{ActiveRevision: s.ActiveRevision, Tags: maps.Clone(s.Tags)}
	if t.cfg.MovesTraffic() {
		now.GatewaysLive = s.Gateways.Live
	}
	if len(r.byField[fieldNodeAgents]) > 0 {
		now.NodeAgents = s.NodeAgents.Revision
	}
	hostMoves(t, o, r, res)
	rec := t.common.record
	if rec == nil || rec.Spec.Pointers == nil {
		return now
	}
	was := rec.Spec.Pointers
	before := map[string][]byte{}
	fieldOf := map[string]string{}
	for _, f := range o.rendered {
		b, err := f.Bytes()
		if err != nil {
			continue
		}
		before[f.Path] = b
		if objs, err := f.Objects(); err == nil && len(objs) == 1 {
			fieldOf[f.Path] = objs[0].GetAnnotations()[api.RenderedFromAnnotation]
		}
	}
	after := map[string][]byte{}
	for _, f := range r.files {
		if b, err := f.Bytes(); err == nil {
			after[f.Path] = b
		}
	}
	say := func(name, from, to, field string) {
		if from == to {
			return
		}
		var changed []string
		seen := map[string]bool{}
		for _, p := range append(r.byField[field], pathsOf(fieldOf, field)...) {
			if seen[p] {
				continue
			}
			seen[p] = true
			if !bytes.Equal(before[p], after[p]) {
				changed = append(changed, p)
			}
		}
		if len(changed) == 0 {
			return
		}
		slices.Sort(changed)
		res.note(framework.Info, fmt.Sprintf("%s %s -> %s: %s", name, orNone(from), orNone(to), strings.Join(changed, ", ")))
	}
	say("activeRevision", was.ActiveRevision, now.ActiveRevision, fieldActive)
	tags := map[string]bool{}
	for k := range now.Tags {
		tags[k] = true
	}
	for k := range was.Tags {
		tags[k] = true
	}
	for _, tag := range config.SortedKeys(tags) {
		say("tags."+tag, was.Tags[tag], now.Tags[tag], fieldTags+"."+tag)
	}
	say("gateways.live", was.GatewaysLive, now.GatewaysLive, fieldLive)
	say("nodeAgents.revision", was.NodeAgents, now.NodeAgents, fieldNodeAgents)
	return now
}

func pathsOf(fieldOf map[string]string, field string) []string {
	var out []string
	for _, p := range config.SortedKeys(fieldOf) {
		f := fieldOf[p]
		if f == field || field == fieldLive && (f == fieldIngress || f == fieldIngresses) {
			out = append(out, p)
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// hostMoves says, one line a host, which hosts external-dns now publishes
// from another revision's Ingress than when the tree was last written,
// with the Ingress files that changed. Where each host was is read from
// the Ingresses rendered then (their hostname annotations), not from a
// record: each host's state lives on the Ingress that publishes it, so
// that a git revert of a move reverts it too. Nothing is said on a tree's
// first run.
func hostMoves(t *tree, o *old, r *rendered, res *results) {
	before, after := publishedHosts(t, o.rendered), publishedHosts(t, r.files)
	if len(before) == 0 {
		return
	}
	type key struct{ template, host string }
	was, now := map[key][]string{}, map[key][]string{}
	// The Ingress templates publishing each host.
	templates := map[string]map[string]bool{}
	for _, side := range []struct {
		ings []ingressHosts
		at   map[key][]string
	}{{before, was}, {after, now}} {
		for _, in := range side.ings {
			for _, h := range in.hosts {
				if templates[h] == nil {
					templates[h] = map[string]bool{}
				}
				templates[h][in.template] = true
				k := key{in.template, h}
				side.at[k] = append(side.at[k], in.rev)
			}
		}
	}
	changed := map[string]bool{}
	old := map[string][]byte{}
	for _, in := range before {
		old[in.path] = in.bytes
	}
	for _, in := range after {
		changed[in.path] = !bytes.Equal(old[in.path], in.bytes)
	}
	keys := map[key]bool{}
	for k := range was {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	sorted := slices.SortedFunc(maps.Keys(keys), func(a, b key) int {
		return cmp.Or(strings.Compare(a.host, b.host), strings.Compare(a.template, b.template))
	})
	// A name no Ingress publishes itself may still resolve through a
	// published wildcard: say so.
	resolve := func(at map[key][]string, k key) (revs, through string) {
		if r := at[k]; len(r) > 0 {
			return revList(r), ""
		}
		if _, rest, ok := strings.Cut(k.host, "."); ok && !strings.HasPrefix(k.host, "*") {
			w := key{k.template, "*." + rest}
			if r := at[w]; len(r) > 0 {
				return revList(r), w.host
			}
		}
		return "", ""
	}
	say := func(revs, through string) string {
		if through != "" {
			return fmt.Sprintf("%s (through %s)", revs, through)
		}
		return orNone(revs)
	}
	for _, k := range sorted {
		fromRevs, fromVia := resolve(was, k)
		toRevs, toVia := resolve(now, k)
		if fromRevs == toRevs {
			continue
		}
		from, to := say(fromRevs, fromVia), say(toRevs, toVia)
		var files []string
		for _, in := range append(slices.Clone(before), after...) {
			if in.template == k.template && changed[in.path] && (slices.Contains(was[k], in.rev) || slices.Contains(now[k], in.rev)) {
				files = append(files, in.path)
			}
		}
		slices.Sort(files)
		name := "host " + k.host
		if len(templates[k.host]) > 1 {
			name += fmt.Sprintf(" (Ingress %s)", k.template)
		}
		res.note(framework.Info, fmt.Sprintf("%s %s -> %s: %s", name, from, to, strings.Join(slices.Compact(files), ", ")))
	}
}

// ingressHosts is a rendered Ingress that publishes hosts in DNS.
type ingressHosts struct {
	path, rev, template string
	hosts               []string
	bytes               []byte
}

// publishedHosts reads the hosts each rendered Ingress among files
// publishes (with the hostname source annotation-only).
func publishedHosts(t *tree, files []*fileset.File) []ingressHosts {
	var out []ingressHosts
	for _, f := range files {
		rel, ok := t.rel(f.Path)
		rev, _, _ := strings.Cut(rel, "/")
		if !ok || rev == layout.Common {
			continue
		}
		objs, err := f.Objects()
		if err != nil || len(objs) != 1 || objs[0].GetKind() != "Ingress" {
			continue
		}
		in := objs[0]
		if from := in.GetAnnotations()[api.RenderedFromAnnotation]; from != fieldIngress && from != fieldIngresses {
			continue
		}
		hosts, ok := gateway.PublishedHosts(in)
		if !ok {
			continue
		}
		b, err := f.Bytes()
		if err != nil {
			continue
		}
		out = append(out, ingressHosts{path: f.Path, rev: rev, template: strings.TrimSuffix(in.GetName(), "-"+rev), hosts: hosts, bytes: b})
	}
	return out
}

func revList(revs []string) string {
	slices.Sort(revs)
	return strings.Join(slices.Compact(revs), ",")
}
