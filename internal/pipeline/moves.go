package pipeline

import (
	"bytes"
	"cmp"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// renderedFile is what a rendered file says of itself: the config field it
// was rendered from, the revision its pointer named (points-at), and, for
// an Ingress, whether it was the live revision's.
type renderedFile struct {
	file     *fileset.File
	data     []byte
	field    string
	pointsAt string
	live     string
	// sealed: written with its own digest (by this istio-gitops, not an
	// older one); recorded is that digest, digest the one of its bytes now
	// (see state.Sealed).
	sealed           bool
	recorded, digest string
}

// RenderedRecord is what an object rendered from the config records of
// itself: the config field it was rendered from, the revision its pointer
// named (points-at), and, for an Ingress, the live revision when it was
// the live revision's. ok is false for an object not rendered.
func RenderedRecord(obj *yaml.RNode) (field, pointsAt, live string, ok bool) {
	a := obj.GetAnnotations()
	field, ok = a[api.RenderedFromAnnotation]
	if !ok {
		return "", "", "", false
	}
	if isIngress(field) {
		live = a[api.LiveRevisionAnnotation]
	}
	return field, a[api.PointsAtAnnotation], live, true
}

// readRendered reads a rendered file's own record; ok is false for a file
// that is not one.
func readRendered(f *fileset.File) (renderedFile, bool) {
	objs, err := f.Objects()
	if err != nil || len(objs) != 1 {
		return renderedFile{}, false
	}
	field, pointsAt, live, ok := RenderedRecord(objs[0])
	if !ok {
		return renderedFile{}, false
	}
	b, err := f.Bytes()
	if err != nil {
		return renderedFile{}, false
	}
	r := renderedFile{file: f, data: b, field: field, pointsAt: pointsAt, live: live}
	r.recorded, r.digest, r.sealed = state.Sealed(b)
	return r, true
}

// isIngress reports whether a field renders a revision's Ingresses.
func isIngress(field string) bool { return field == fieldIngress || field == fieldIngresses }

// isPointer reports whether a field points at one revision.
func isPointer(field string) bool {
	switch field {
	case fieldActive, fieldLive, fieldCNI, fieldZtunnel, fieldNodeAgentsOld:
		return true
	}
	return strings.HasPrefix(field, fieldTags+".")
}

// pointerName is how a move line names a field: as the config spells it.
func pointerName(field string) string { return strings.TrimPrefix(field, "spec.") }

// moves says what the run changed of the files rendered from the config:
// one line a pointer that moved (the active revision, each tag, the live
// gateways, istio-cni, ztunnel), with its files, and one line for each
// other cause of a change (a field such as spec.flux set or changed, a
// revision regenerated or patched, a record written anew). Nothing is said
// when nothing changed, or on a tree's first run. Where a pointer stood is
// read from the objects rendered from it (or, once, from the record of a
// tree written by an older istio-gitops).
func moves(t *tree, o *old, revs map[string]*revOut, r *rendered, res *results) {
	rec := t.common.record
	if rec == nil {
		return
	}
	before := map[string]renderedFile{}
	for _, rf := range o.records {
		before[rf.file.Path] = rf
	}
	after := map[string]renderedFile{}
	for _, f := range r.files {
		if rf, ok := readRendered(f); ok {
			after[f.Path] = rf
		}
	}
	was := oldPointers(t, o)
	// A tree written by an older istio-gitops: its rendered files say
	// where they point only through the record.
	if p := rec.Spec.Pointers; p != nil {
		for path, rf := range before {
			if rf.sealed || rf.pointsAt != "" {
				continue
			}
			switch {
			case rf.field == fieldActive:
				rf.pointsAt = p.ActiveRevision
			case rf.field == fieldLive:
				rf.pointsAt = p.GatewaysLive
			case rf.field == fieldNodeAgentsOld:
				rf.pointsAt = p.NodeAgents
			case strings.HasPrefix(rf.field, fieldTags+"."):
				rf.pointsAt = p.Tags[strings.TrimPrefix(rf.field, fieldTags+".")]
			case isIngress(rf.field) && p.GatewaysLive != "" && revisionOf(t, path) == p.GatewaysLive:
				rf.live = p.GatewaysLive
			}
			before[path] = rf
		}
	}
	now := newPointers(t, after)
	moved := map[string][]string{}
	causes := map[string][]string{}
	paths := map[string]bool{}
	for p := range before {
		paths[p] = true
	}
	for p := range after {
		paths[p] = true
	}
	for _, p := range config.SortedKeys(paths) {
		b, hadIt := before[p]
		a, hasIt := after[p]
		if hadIt && hasIt && bytes.Equal(b.data, a.data) {
			continue
		}
		field := a.field
		if !hasIt {
			field = b.field
		}
		if m := moveOf(field, b, hadIt, a, hasIt, was, now); m != "" {
			moved[m] = append(moved[m], p)
			continue
		}
		c := causeOf(t, revs, field, p, b, hadIt, a, hasIt)
		causes[c] = append(causes[c], p)
	}
	for _, field := range pointerOrder(moved) {
		res.note(framework.Info, fmt.Sprintf("%s %s -> %s: %s", pointerName(field), orNone(strings.Join(was[field], ",")), orNone(strings.Join(now[field], ",")), strings.Join(moved[field], ", ")))
	}
	// A host moved is said by itself, with its Ingresses.
	hosts := hostMoves(t, o, r, res)
	for _, c := range config.SortedKeys(causes) {
		files := slices.DeleteFunc(causes[c], func(p string) bool { return hosts[p] })
		if len(files) > 0 {
			res.note(framework.Info, fmt.Sprintf("%s: %s", c, strings.Join(files, ", ")))
		}
	}
}

// moveOf is the pointer whose move changed a file, or "".
func moveOf(field string, b renderedFile, hadIt bool, a renderedFile, hasIt bool, was, now map[string][]string) string {
	if isIngress(field) {
		// The live-only annotations go with spec.gateways.live.
		if hadIt && hasIt && (b.live == "") != (a.live == "") {
			return fieldLive
		}
		return ""
	}
	if !isPointer(field) {
		return ""
	}
	moved := b.pointsAt != a.pointsAt
	if !hadIt || !hasIt {
		// A file new or gone: the pointer came to name a revision that
		// has it, or left one.
		moved = !slices.Equal(was[field], now[field])
	}
	if moved {
		return field
	}
	return ""
}

// causeOf says why a rendered file changed when no pointer moved it.
func causeOf(t *tree, revs map[string]*revOut, field, p string, b renderedFile, hadIt bool, a renderedFile, hasIt bool) string {
	switch {
	case !hasIt:
		return field + " (no longer rendered)"
	case !hadIt:
		return field + " (newly rendered)"
	case !b.sealed:
		return "records moved onto the rendered objects (a tree written by an older istio-gitops)"
	}
	src := a.pointsAt
	if isIngress(field) {
		src = revisionOf(t, p)
	}
	if ro := revs[src]; ro != nil {
		switch {
		case ro.regenerated:
			return fmt.Sprintf("%s (revision %q regenerated from %s)", field, src, t.runPath(sourceOf(t.cfg, src)))
		case len(ro.patched) > 0:
			return fmt.Sprintf("%s (revision %q patched: GitPatch %s)", field, src, strings.Join(ro.patched, ", "))
		}
	}
	return field + " (the config changed)"
}

// pointerOrder lists the pointers that moved in the order of the config.
func pointerOrder(moved map[string][]string) []string {
	var tags []string
	for _, f := range config.SortedKeys(moved) {
		if strings.HasPrefix(f, fieldTags+".") {
			tags = append(tags, f)
		}
	}
	order := slices.Concat([]string{fieldActive}, tags, []string{fieldLive, fieldNodeAgentsOld, fieldCNI, fieldZtunnel})
	return slices.DeleteFunc(order, func(f string) bool {
		_, ok := moved[f]
		return !ok
	})
}

// oldPointers are where each pointer stood when the tree was last
// written: what the objects rendered from it record, or, for a tree
// written by an older istio-gitops, its record's pointers. A pointer
// can name more than one revision only after a bad merge.
func oldPointers(t *tree, o *old) map[string][]string {
	was := pointersOf(slices.Values(o.records))
	if rec := t.common.record; rec != nil && rec.Spec.Pointers != nil {
		p := rec.Spec.Pointers
		fillPointer(was, fieldActive, p.ActiveRevision)
		fillPointer(was, fieldLive, p.GatewaysLive)
		fillPointer(was, fieldCNI, p.NodeAgents)
		fillPointer(was, fieldZtunnel, p.NodeAgents)
		for _, tag := range config.SortedKeys(p.Tags) {
			fillPointer(was, fieldTags+"."+tag, p.Tags[tag])
		}
	}
	return was
}

// newPointers are where the pointers stand after the run.
func newPointers(t *tree, after map[string]renderedFile) map[string][]string {
	now := pointersOf(maps.Values(after))
	s := t.cfg.Spec
	fillPointer(now, fieldActive, s.ActiveRevision)
	for _, tag := range config.SortedKeys(s.Tags) {
		fillPointer(now, fieldTags+"."+tag, s.Tags[tag])
	}
	if t.cfg.MovesTraffic() {
		fillPointer(now, fieldLive, s.Gateways.Live)
	}
	return now
}

// pointersOf are where the pointers stand as rendered files say, by
// field: the revisions each names, sorted (an Ingress says where the live
// gateways stand).
func pointersOf(rfs iter.Seq[renderedFile]) map[string][]string {
	at := map[string][]string{}
	for rf := range rfs {
		field, rev := rf.field, rf.pointsAt
		if isIngress(field) {
			field, rev = fieldLive, rf.live
		}
		if rev != "" && isPointer(field) && !slices.Contains(at[field], rev) {
			at[field] = append(at[field], rev)
		}
	}
	for f := range at {
		slices.Sort(at[f])
	}
	return at
}

// fillPointer sets where a pointer stands when no rendered file says so.
func fillPointer(at map[string][]string, field, rev string) {
	if _, known := at[field]; !known && rev != "" {
		at[field] = []string{rev}
	}
}

// revisionOf is the revision folder a file of the tree is in, or "".
func revisionOf(t *tree, p string) string {
	rel, ok := t.rel(p)
	if !ok {
		return ""
	}
	top, rest, _ := strings.Cut(rel, "/")
	if _, listed := t.cfg.Revision(top); listed && strings.HasPrefix(rest, layout.Generated+"/") {
		return top
	}
	if _, retiring := t.retired[top]; retiring {
		return top
	}
	return ""
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
func hostMoves(t *tree, o *old, r *rendered, res *results) map[string]bool {
	said := map[string]bool{}
	before, after := publishedHosts(t, o.rendered), publishedHosts(t, r.files)
	if len(before) == 0 {
		return said
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
		for _, f := range files {
			said[f] = true
		}
		name := "host " + k.host
		if len(templates[k.host]) > 1 {
			name += fmt.Sprintf(" (Ingress %s)", k.template)
		}
		res.note(framework.Info, fmt.Sprintf("%s %s -> %s: %s", name, from, to, strings.Join(slices.Compact(files), ", ")))
	}
	return said
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
		if !isIngress(in.GetAnnotations()[api.RenderedFromAnnotation]) {
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
