package promotion

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/history"
)

var clock = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// cluster is a state: revisions as "1-30=1.30.2", the active one, and
// more pointers as "field=rev".
func cluster(revs []string, active string, more ...string) *State {
	s := &State{Name: "c", Versions: map[string]string{}, Pointers: []Pointer{{ActiveField, active}}}
	for _, r := range revs {
		name, v, _ := strings.Cut(r, "=")
		s.Revisions = append(s.Revisions, name)
		s.Versions[name] = v
	}
	for _, m := range more {
		f, r, _ := strings.Cut(m, "=")
		s.Pointers = append(s.Pointers, Pointer{f, r})
	}
	return s
}

var (
	on130   = cluster([]string{"1-30=1.30.2"}, "1-30")
	with131 = cluster([]string{"1-30=1.30.2", "1-31=1.31.0"}, "1-30")
	on131   = cluster([]string{"1-30=1.30.2", "1-31=1.31.0"}, "1-31")
	only131 = cluster([]string{"1-31=1.31.0"}, "1-31")
)

// timeline is a history, newest first: each span a state and the hours
// ago its oldest commit was made.
func timeline(truncated bool, spans ...any) *Timeline {
	tl := &Timeline{Truncated: truncated}
	for i := 0; i < len(spans); i += 2 {
		at := clock.Add(-time.Duration(spans[i+1].(int)) * time.Hour)
		c := history.Commit{When: at}
		tl.Spans = append(tl.Spans, Span{State: spans[i].(*State), Newest: c, Oldest: c})
	}
	return tl
}

func promotionConfig(soak string, override *config.Override) *config.IstioGitOps {
	return &config.IstioGitOps{Metadata: config.Metadata{Name: "prod"},
		Spec: config.Spec{Promotion: &config.Promotion{After: []string{"../staging"}, Soak: soak, Override: override}}}
}

func upstream(st *State, tl *Timeline) Upstream {
	if tl != nil {
		st = tl.Head()
	}
	return Upstream{Path: "clusters/staging", Name: "staging", State: st, Timeline: tl}
}

// TestCheck: what the order refuses and lets through, one step at a time.
func TestCheck(t *testing.T) {
	staging131For := func(hours int) *Timeline { return timeline(false, on131, hours, with131, hours+24, on130, 500) }
	future := &config.Override{Reason: "CVE-2026-0001", Expires: clock.Add(48 * time.Hour).Format(time.RFC3339)}
	past := &config.Override{Reason: "CVE-2026-0001", Expires: clock.Add(-time.Hour).Format(time.RFC3339)}
	for _, c := range []struct {
		name             string
		soak             string
		override         *config.Override
		now, before      *State
		past             *Timeline
		ups              []Upstream
		outside          bool
		want             []string // substrings, one per refused step
		err, note        string
		allowedInHours   float64
		overridden, none bool
	}{
		{name: "list a version no upstream lists", now: with131, before: on130, past: timeline(false, on130, 100),
			ups:  []Upstream{upstream(nil, timeline(false, on130, 500))},
			want: []string{`spec.revisions[1]: revision "1-31" is Istio 1.31.0, which no cluster this one follows lists in the committed history (HEAD): staging (clusters/staging) lists 1.30.2; add 1.31.0 there first`}},
		{name: "list a version one upstream lists", now: with131, before: on130,
			ups: []Upstream{upstream(nil, timeline(false, on130, 500)), upstream(nil, timeline(false, with131, 3))}, none: true},
		{name: "list again a version it ran before", now: cluster([]string{"1-29=1.29.1", "1-30=1.30.2"}, "1-30"), before: on130,
			past: timeline(false, on130, 100, cluster([]string{"1-29=1.29.1"}, "1-29"), 900),
			ups:  []Upstream{upstream(nil, timeline(false, on131, 5))}, none: true},
		{name: "promote what the upstream does not run", soak: "24h", now: on131, before: with131,
			ups:  []Upstream{upstream(nil, timeline(false, with131, 30))},
			want: []string{`spec.activeRevision: "1-31" is Istio 1.31.0, which staging (clusters/staging) does not run in the committed history (HEAD): it runs 1.30.2 (active revision "1-30"); promote 1.31.0 there first`}},
		{name: "promote before the soak", soak: "24h", now: on131, before: with131,
			ups:            []Upstream{upstream(nil, staging131For(10))},
			want:           []string{`staging (clusters/staging) has run for 10h only (since 2026-03-10T02:00:00Z, commit`, `the soak is 24h, so the step is allowed in 14h (at 2026-03-11T02:00:00Z)`},
			allowedInHours: 14},
		{name: "promote after the soak", soak: "24h", now: on131, before: with131, ups: []Upstream{upstream(nil, staging131For(30))}, none: true},
		{name: "soak 0: what the upstream runs at HEAD is enough", now: on131, before: with131, ups: []Upstream{upstream(nil, staging131For(0))}, none: true},
		{name: "roll back to a version it ran", soak: "24h", now: with131, before: on131, past: timeline(false, on131, 5, with131, 50),
			ups: []Upstream{upstream(nil, timeline(false, cluster([]string{"1-32=1.32.0"}, "1-32"), 1))}, none: true},
		{name: "no move", soak: "24h", now: with131, before: with131, ups: []Upstream{upstream(nil, timeline(false, only131, 1))}, none: true},
		{name: "retire", soak: "24h", now: only131, before: on131, ups: []Upstream{upstream(nil, timeline(false, only131, 1))}, none: true},
		{name: "a new tag at the version it runs", soak: "24h", now: cluster([]string{"1-30=1.30.2"}, "1-30", "spec.tags.old=1-30"), before: on130,
			ups: []Upstream{upstream(nil, timeline(false, only131, 1))}, none: true},
		{name: "a tag moved to the canary", soak: "24h", now: cluster([]string{"1-30=1.30.2", "1-31=1.31.0"}, "1-30", "spec.tags.canary=1-31"),
			before: cluster([]string{"1-30=1.30.2", "1-31=1.31.0"}, "1-30", "spec.tags.canary=1-30"),
			ups:    []Upstream{upstream(nil, staging131For(2))},
			want:   []string{`spec.tags.canary: "1-31" is Istio 1.31.0, which staging (clusters/staging) has run for 2h only`}, allowedInHours: 22},
		{name: "a DNS host moved to the canary", soak: "24h", now: cluster([]string{"1-30=1.30.2", "1-31=1.31.0"}, "1-30", "spec.gateways.ingress.hosts.shop.example.com=1-31"),
			before: cluster([]string{"1-30=1.30.2", "1-31=1.31.0"}, "1-30", "spec.gateways.ingress.hosts.shop.example.com=1-30"),
			ups:    []Upstream{upstream(nil, timeline(false, with131, 30))},
			want:   []string{`spec.gateways.ingress.hosts.shop.example.com: "1-31" is Istio 1.31.0, which staging (clusters/staging) does not run`}},
		{name: "shallow history too short", soak: "24h", now: on131, before: with131,
			ups:  []Upstream{upstream(nil, timeline(true, on131, 10))},
			want: []string{`has run since at least 2026-03-10T02:00:00Z (commit`, `where this shallow clone's history starts: a soak of 24h cannot be read from it; fetch the whole history (git fetch --unshallow`}},
		{name: "shallow history long enough", soak: "24h", now: on131, before: with131, ups: []Upstream{upstream(nil, timeline(true, on131, 30))}, none: true},
		{name: "outside Git with a soak", soak: "24h", outside: true, now: on131, before: with131, ups: []Upstream{upstream(on131, nil)},
			err: "spec.promotion.soak: 24h is read from the Git history of the clusters of spec.promotion.after, and the tree is not in a Git repository"},
		{name: "outside Git without a soak", outside: true, now: on131, before: with131, ups: []Upstream{upstream(with131, nil)},
			want: []string{`which staging (clusters/staging) does not run: it runs 1.30.2`}},
		{name: "override", soak: "24h", override: future, now: on131, before: with131, ups: []Upstream{upstream(nil, staging131For(2))},
			want: []string{"has run for 2h only"}, overridden: true, allowedInHours: 22,
			note: "spec.promotion.override: the order of spec.promotion.after is bypassed until " + future.Expires + " (in 2d): CVE-2026-0001"},
		{name: "override expired", soak: "24h", override: past, now: on131, before: with131, ups: []Upstream{upstream(nil, staging131For(30))},
			err: "spec.promotion.override expired at " + past.Expires + " (1h ago): remove it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			check := &Check{Config: promotionConfig(c.soak, c.override), File: "prod/istio-gitops.yaml", Now: c.now, Before: c.before,
				Past: c.past, Upstreams: c.ups, InGit: !c.outside, Clock: clock}
			v := check.Run()
			switch {
			case c.err != "":
				if v.Err == nil || !strings.Contains(v.Err.Error(), c.err) {
					t.Fatalf("error %v, want %q", v.Err, c.err)
				}
				return
			case v.Err != nil:
				t.Fatal(v.Err)
			}
			if c.none && len(v.Refused) > 0 {
				t.Fatalf("refused: %+v", v.Refused)
			}
			if len(c.want) > 0 {
				if len(v.Refused) != 1 {
					t.Fatalf("refused %d steps, want 1: %+v", len(v.Refused), v.Refused)
				}
				for _, w := range c.want {
					if !strings.Contains(v.Refused[0].Message, w) {
						t.Errorf("message:\n%s\nwant %q", v.Refused[0].Message, w)
					}
				}
				if a := v.Refused[0].Allowed; c.allowedInHours > 0 && (a == nil || a.Sub(clock) != time.Duration(c.allowedInHours*float64(time.Hour))) {
					t.Errorf("allowed at %v, want in %vh", a, c.allowedInHours)
				}
			}
			if v.Overridden != c.overridden {
				t.Errorf("overridden %v", v.Overridden)
			}
			if c.note != "" && (len(v.Notes) != 1 || !strings.Contains(v.Notes[0], c.note)) {
				t.Errorf("notes %q, want %q", v.Notes, c.note)
			}
		})
	}
}

// TestAdvise: what the order allows next, in a line.
func TestAdvise(t *testing.T) {
	for _, c := range []struct {
		name string
		soak string
		now  *State
		ups  []Upstream
		want []string
	}{
		{"first", "", on130, nil, []string{"first in the order: follows no cluster"}},
		{"up to date", "24h", on131, []Upstream{upstream(nil, timeline(false, on131, 50))}, []string{"runs 1.31.0, as the clusters it follows do"}},
		{"promote now", "24h", with131, []Upstream{upstream(nil, timeline(false, on131, 50))}, []string{"may promote 1.31.0 now"}},
		{"promote later", "24h", with131, []Upstream{upstream(nil, timeline(false, on131, 19, with131, 40))},
			[]string{"may promote 1.31.0 in 5h (at 2026-03-10T17:00:00Z)"}},
		{"add and promote later", "24h", on130, []Upstream{upstream(nil, timeline(false, on131, 19))},
			[]string{"may add 1.31.0 now, promote it in 5h (at 2026-03-10T17:00:00Z)"}},
		{"canary", "24h", on130, []Upstream{upstream(nil, timeline(false, with131, 19))},
			[]string{"runs 1.30.2, as the clusters it follows do", "may add 1.31.0 (a canary upstream)"}},
		{"disagree", "24h", on130, []Upstream{upstream(nil, timeline(false, on131, 19)), upstream(nil, timeline(false, on130, 19))},
			[]string{"waits: the clusters it follows disagree: staging runs 1.31.0, staging runs 1.30.2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := promotionConfig(c.soak, nil)
			if c.ups == nil {
				cfg.Spec.Promotion = nil
			}
			var got []string
			for _, n := range (&Check{Config: cfg, Now: c.now, Upstreams: c.ups, InGit: true, Clock: clock}).Advise() {
				got = append(got, n.Message)
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("advice:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second: "<1m", 12 * time.Minute: "12m", 5*time.Hour + 12*time.Minute: "5h12m", 47 * time.Hour: "47h",
		50 * time.Hour: "2d2h", 72 * time.Hour: "3d",
	} {
		if got := Human(d); got != want {
			t.Errorf("Human(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestPointers: the list the order guards, from a config.
func TestPointers(t *testing.T) {
	cfg := &config.IstioGitOps{Spec: config.Spec{
		ActiveRevision: "1-30",
		Tags:           map[string]string{"stable": "1-30", "canary": "1-31"},
		Gateways: config.Gateways{Live: "1-30", Ingress: &config.Ingress{Hosts: map[string]string{"www.example.com": "1-30", "shop.example.com": "1-31"}},
			Ingresses: []config.Ingress{{Hosts: map[string]string{"api.example.com": "1-31"}}}},
		NodeAgents: config.NodeAgents{Revision: "1-30"},
	}}
	var got []string
	for _, p := range Pointers(cfg) {
		got = append(got, p.Field+"="+p.Revision)
	}
	want := []string{"spec.activeRevision=1-30", "spec.tags.canary=1-31", "spec.tags.stable=1-30", "spec.gateways.live=1-30",
		"spec.gateways.ingress.hosts.shop.example.com=1-31", "spec.gateways.ingress.hosts.www.example.com=1-30",
		"spec.gateways.ingresses[0].hosts.api.example.com=1-31", "spec.nodeAgents.cni=1-30", "spec.nodeAgents.ztunnel=1-30"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pointers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for field, host := range map[string]string{"spec.gateways.ingress.hosts.shop.example.com": "shop.example.com", "spec.gateways.ingresses[0].hosts.api.example.com": "api.example.com"} {
		if h, ok := HostOf(field); !ok || h != host {
			t.Errorf("HostOf(%q) = %q, %v", field, h, ok)
		}
	}
	if _, ok := HostOf("spec.tags.hosts.x"); ok {
		t.Error("a tag is no host")
	}
	// A past commit's config: the hosts read too.
	p := parseConfig([]byte("apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: IstioGitOps\nmetadata: {name: prod}\nspec:\n  revisions: [{name: 1-30}, {name: 1-31, version: 1.31.0}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {kind: Ingress}\n      hosts: {shop.example.com: 1-31}\n"))
	if p == nil || p.state.ActiveRevision() != "1-30" || p.state.Version("1-31") != "1.31.0" || !slices.Equal(p.unpinned, []string{"1-30"}) {
		t.Fatalf("parsed %+v", p)
	}
	if rev, ok := p.state.Pointer("spec.gateways.ingress.hosts.shop.example.com"); !ok || rev != "1-31" {
		t.Errorf("the host's pointer: %q %v", rev, ok)
	}
}
