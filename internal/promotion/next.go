package promotion

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Next is a step the order allows the cluster, now or later.
type Next struct {
	// Action is "promote" (point activeRevision at Version), "add" (list
	// a revision of Version), "wait" (the upstreams disagree or run
	// nothing newer), or "none" (the cluster follows no one).
	Action  string `json:"action"`
	Version string `json:"version,omitempty"`
	// Allowed is when, if not now.
	Allowed *time.Time `json:"allowed,omitempty"`
	// Message says it in a line, without the cluster's name: "may promote
	// 1.31.0 in 5h12m".
	Message string `json:"message"`
}

// Advise says what the order allows the cluster next: to add and promote
// the version its upstreams all run, when its soak allows it, and to add
// the versions they list as canaries.
func (c *Check) Advise() []Next {
	if len(c.Upstreams) == 0 {
		return []Next{{Action: "none", Message: "first in the order: follows no cluster"}}
	}
	var out []Next
	if o := c.Config.Spec.Promotion.Override; o != nil {
		out = append(out, Next{Action: "override", Message: fmt.Sprintf("order bypassed until %s: %s", o.Expires, o.Reason)})
	}
	var actives []string
	for _, u := range c.Upstreams {
		actives = append(actives, u.State.Active())
	}
	target := actives[0]
	for _, a := range actives[1:] {
		if a != target {
			var says []string
			for i, u := range c.Upstreams {
				says = append(says, fmt.Sprintf("%s runs %s", u.Name, orUnknown(actives[i])))
			}
			return append(out, Next{Action: "wait", Message: "waits: the clusters it follows disagree: " + strings.Join(says, ", ")})
		}
	}
	switch {
	case target == "":
		out = append(out, Next{Action: "wait", Message: "waits: the clusters it follows run no known version" + c.committed()})
	case target == c.Now.Active():
		out = append(out, Next{Action: "none", Version: target, Message: fmt.Sprintf("runs %s, as the clusters it follows do", target)})
	default:
		out = append(out, c.promote(target))
	}
	// Canaries the upstreams list that this cluster does not.
	var canaries []string
	for _, u := range c.Upstreams {
		for _, v := range u.State.ListedVersions() {
			if v != target && !c.Now.Lists(v) && !slices.Contains(canaries, v) {
				canaries = append(canaries, v)
			}
		}
	}
	for _, v := range canaries {
		out = append(out, Next{Action: "add", Version: v, Message: fmt.Sprintf("may add %s (a canary upstream)", v)})
	}
	return out
}

// promote is the advice on moving the active revision to target, the
// version every upstream runs.
func (c *Check) promote(target string) Next {
	listed := c.Now.Lists(target)
	verb := "promote"
	if !listed {
		verb = "add and promote"
	}
	if c.ranBefore(ActiveField, target) {
		return Next{Action: "promote", Version: target, Message: fmt.Sprintf("may %s %s now (a version it ran before)", verb, target)}
	}
	soak := c.Config.Soak()
	var latest time.Time
	unknown := false
	if soak > 0 {
		for _, u := range c.Upstreams {
			since, _, known := u.Timeline.Since(func(s *State) bool { return s.Active() == target })
			if !known {
				unknown = true
			}
			if at := since.When.Add(soak); at.After(latest) {
				latest = at
			}
		}
	}
	n := Next{Action: "promote", Version: target}
	switch {
	case unknown && c.Clock.Before(latest):
		n.Message = fmt.Sprintf("may %s %s once the soak of %s is read: the shallow clone's history is too short", verb, target, c.Config.Spec.Promotion.Soak)
	case c.Clock.Before(latest):
		n.Allowed = &latest
		n.Message = fmt.Sprintf("may %s %s in %s (at %s)", verb, target, Human(latest.Sub(c.Clock)), Stamp(latest))
		if !listed {
			n.Message = fmt.Sprintf("may add %s now, promote it in %s (at %s)", target, Human(latest.Sub(c.Clock)), Stamp(latest))
		}
	default:
		n.Message = fmt.Sprintf("may %s %s now", verb, target)
	}
	return n
}

func orUnknown(v string) string {
	if v == "" {
		return "no known version"
	}
	return v
}
