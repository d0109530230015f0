package promotion

import (
	"fmt"
	"strings"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/history"
)

// Upstream is a cluster this one follows.
type Upstream struct {
	// Path is the tree's folder as spec.promotion.after lists it; Name is
	// its config's name.
	Path, Name string
	// State is what its tree shows: at HEAD in Git, its files outside.
	State *State
	// Timeline is its first-parent history from HEAD (nil outside Git).
	Timeline *Timeline
}

func (u Upstream) describe() string { return fmt.Sprintf("%s (%s)", u.Name, u.Path) }

// Check is one cluster's step, to be judged against its order.
type Check struct {
	Config *config.IstioGitOps
	// File is the config's file, as messages name it.
	File string
	// Now is the cluster as the step leaves it.
	Now *State
	// Before is the cluster before the step (at the base commit in Git,
	// as its records say outside); nil for a tree that is new.
	Before *State
	// Past is the cluster's history up to the base commit (nil outside
	// Git): the versions it ran before.
	Past      *Timeline
	Upstreams []Upstream
	// InGit reports that the upstreams' states and their times come from
	// Git's history; outside Git only a soak of 0 can be judged.
	InGit bool
	// Clock is the time of the check.
	Clock time.Time
}

// Problem is a step the order refuses.
type Problem struct {
	// Field is the config field of the step.
	Field string `json:"field"`
	// Message says why, the field first (not the file: whoever reports
	// it names the file).
	Message string `json:"message"`
	// Upstream is the cluster the step waits for, by its path in
	// spec.promotion.after.
	Upstream string `json:"upstream,omitempty"`
	// Allowed is when the step will be allowed, if time is all it needs.
	Allowed *time.Time `json:"allowed,omitempty"`
}

// Verdict is what the order says of a step.
type Verdict struct {
	// Refused are the steps the order refuses: errors, unless an override
	// lets them through.
	Refused []Problem
	// Overridden reports that spec.promotion.override lets them through.
	Overridden bool
	// Notes are said on every run: the override in force (without the
	// file, as Problem.Message).
	Notes []string
	// Err is an override that expired or cannot be judged (a soak
	// outside Git): the run must fail.
	Err error
}

// Run judges the step.
func (c *Check) Run() Verdict {
	var v Verdict
	pr := c.Config.Spec.Promotion
	if pr == nil {
		return v
	}
	if o := pr.Override; o != nil {
		expires, _ := time.Parse(time.RFC3339, o.Expires)
		if !c.Clock.Before(expires) {
			v.Err = fmt.Errorf("%s: spec.promotion.override expired at %s (%s ago): remove it, the order of spec.promotion.after holds again (reason given: %q)",
				c.File, o.Expires, Human(c.Clock.Sub(expires)), o.Reason)
			return v
		}
		v.Overridden = true
		v.Notes = append(v.Notes, fmt.Sprintf("spec.promotion.override: the order of spec.promotion.after is bypassed until %s (in %s): %s",
			o.Expires, Human(expires.Sub(c.Clock)), o.Reason))
	}
	if len(c.Upstreams) == 0 {
		return v
	}
	if soak := c.Config.Soak(); soak > 0 && !c.InGit {
		v.Err = fmt.Errorf("%s: spec.promotion.soak: %s is read from the Git history of the clusters of spec.promotion.after, and the tree is not in a Git repository: run it in a clone of the repository, or set soak: 0s",
			c.File, pr.Soak)
		return v
	}
	v.Refused = append(v.Refused, c.listings()...)
	v.Refused = append(v.Refused, c.pointers()...)
	return v
}

// listings refuses a revision of a version no upstream lists, unless the
// cluster listed or ran it before.
func (c *Check) listings() []Problem {
	var out []Problem
	for i, rev := range c.Now.Revisions {
		ver := c.Now.Version(rev)
		if ver == "" || c.Before.Lists(ver) || c.ranBefore("", ver) {
			continue
		}
		listed := false
		var says []string
		for _, u := range c.Upstreams {
			if u.State.Lists(ver) {
				listed = true
				break
			}
			says = append(says, fmt.Sprintf("%s lists %s", u.describe(), orNone(u.State.ListedVersions())))
		}
		if listed {
			continue
		}
		out = append(out, Problem{
			Field: fmt.Sprintf("spec.revisions[%d]", i),
			Message: fmt.Sprintf("spec.revisions[%d]: revision %q is Istio %s, which no cluster this one follows lists%s: %s; add %s there first",
				i, rev, ver, c.committed(), strings.Join(says, "; "), ver),
		})
	}
	return out
}

// pointers refuses a pointer moved to a version that is not the active
// version of every upstream for the soak, unless it points back to a
// version the cluster ran before.
func (c *Check) pointers() []Problem {
	var out []Problem
	soak := c.Config.Soak()
	for _, p := range c.Now.Pointers {
		ver := c.Now.Version(p.Revision)
		if ver == "" || ver == c.Before.PointerVersion(p.Field) || c.ranBefore(p.Field, ver) {
			continue
		}
		at := fmt.Sprintf("%s: %q is Istio %s", p.Field, p.Revision, ver)
		for _, u := range c.Upstreams {
			if u.State.Active() != ver {
				out = append(out, Problem{Field: p.Field, Upstream: u.Path, Message: fmt.Sprintf(
					"%s, which %s does not run%s: it runs %s; promote %s there first", at, u.describe(), c.committed(), u.State.describe(), ver)})
				continue
			}
			if soak == 0 {
				continue
			}
			since, _, known := u.Timeline.Since(func(s *State) bool { return s.Active() == ver })
			allowed := since.When.Add(soak)
			if !known {
				if !c.Clock.Before(allowed) {
					continue
				}
				out = append(out, Problem{Field: p.Field, Upstream: u.Path, Message: fmt.Sprintf(
					"%s, which %s has run since at least %s (commit %s), where this shallow clone's history starts: a soak of %s cannot be read from it; fetch the whole history (git fetch --unshallow; actions/checkout: fetch-depth: 0)",
					at, u.describe(), Stamp(since.When), since.Short(), c.Config.Spec.Promotion.Soak)})
				continue
			}
			if !c.Clock.Before(allowed) {
				continue
			}
			out = append(out, Problem{Field: p.Field, Upstream: u.Path, Allowed: &allowed, Message: fmt.Sprintf(
				"%s, which %s has run for %s only (since %s, commit %s): the soak is %s, so the step is allowed in %s (at %s)",
				at, u.describe(), Human(c.Clock.Sub(since.When)), Stamp(since.When), since.Short(), c.Config.Spec.Promotion.Soak,
				Human(allowed.Sub(c.Clock)), Stamp(allowed))})
		}
	}
	return out
}

// ranBefore reports whether the cluster ran ver before, as its active
// version or at field: a step back to it is a rollback, which the order
// never refuses.
func (c *Check) ranBefore(field, ver string) bool {
	ran := func(s *State) bool {
		return s != nil && (s.Active() == ver || field != "" && s.PointerVersion(field) == ver)
	}
	return ran(c.Before) || c.Past.Ever(ran)
}

// committed says where the upstreams' state was read.
func (c *Check) committed() string {
	if c.InGit {
		return " in the committed history (HEAD)"
	}
	return ""
}

func orNone(vs []string) string {
	if len(vs) == 0 {
		return "no version"
	}
	return strings.Join(vs, ", ")
}

// Stamp writes a time as RFC 3339, in UTC, as messages and reports show it.
func Stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Human writes a duration to the minute: 3d4h, 5h12m, 12m, or <1m.
func Human(d time.Duration) string {
	d = d.Truncate(time.Minute)
	switch {
	case d < time.Minute:
		return "<1m"
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		h := (d - days*24*time.Hour) / time.Hour
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	case d >= time.Hour:
		h := d / time.Hour
		m := (d - h*time.Hour) / time.Minute
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// Commit is a commit of the history, as spans hold them.
type Commit = history.Commit
