package promotion_test

import (
	"fmt"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/promotion"
)

// A cluster that follows preprod with a soak of 72h promotes 1-31 while
// preprod has run 1.31.0 for 20h only: the order refuses the step and
// says when it will be allowed.
func ExampleCheck_Run() {
	prod := &config.IstioGitOps{Spec: config.Spec{
		Revisions:      []config.Revision{{Name: "1-30", Version: "1.30.2"}, {Name: "1-31", Version: "1.31.0"}},
		ActiveRevision: "1-31",
		Promotion:      &config.Promotion{After: []string{"../../preprod/istio"}, Soak: "72h"},
	}}
	before := *prod
	before.Spec.ActiveRevision = "1-30"
	preprod := promotion.StateOf(&config.IstioGitOps{Metadata: config.Metadata{Name: "preprod"}, Spec: config.Spec{
		Revisions: []config.Revision{{Name: "1-31", Version: "1.31.0"}}, ActiveRevision: "1-31",
	}}, nil)
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	check := &promotion.Check{
		Config: prod, File: "clusters/prod/istio/istio-gitops.yaml",
		Now: promotion.StateOf(prod, nil), Before: promotion.StateOf(&before, nil),
		Upstreams: []promotion.Upstream{{Path: "clusters/preprod/istio", Name: "preprod", State: preprod,
			Timeline: &promotion.Timeline{Spans: []promotion.Span{{State: preprod, Oldest: promotion.Commit{When: now.Add(-20 * time.Hour)}}}}}},
		InGit: true, Clock: now,
	}
	for _, p := range check.Run().Refused {
		fmt.Println(p.Message)
	}
	// Output:
	// spec.activeRevision: "1-31" is Istio 1.31.0, which preprod (clusters/preprod/istio) has run for 20h only (since 2026-03-09T13:00:00Z, commit 000000000000): the soak is 72h, so the step is allowed in 2d4h (at 2026-03-12T13:00:00Z)
}
