package pipeline

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
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
		if f == field || field == fieldLive && f == fieldIngress {
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
