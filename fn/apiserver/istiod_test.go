package apiserver_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// stopAfter names, per step of the story, the revision whose istiod the
// step takes down once checked, to show that the tree no longer needs
// it; the next step brings it back first, as its Deployment would.
var stopAfter = map[string]string{"4-promote": "1-30", "5-roll-back": "1-31"}

// explicitDefault names the story cases whose config sets tags.default,
// on the active revision; the others leave the default tag to
// activeRevision.
var explicitDefault = map[string]bool{"demo": true}

// TestIstiod walks the upgrade story (storySteps) with the real istiod of
// each revision running against the server, on the default profile
// through flux/, its default tag following activeRevision, and on the
// demo profile through the root, with tags.default set to the active
// revision. After each step's deploy, every istiod runs (mesh.sync) and:
//   - each has set its CA on every webhook of its revision, the tags' and
//     istiod-default-validator included, and its validators fail closed;
//   - pods in namespaces on each revision, on each tag and on the default
//     (istio-injection=enabled, or sidecar.istio.io/inject=true on the
//     pod) get the sidecar of the revision they select, none without
//     labels, none in kube-system once the GitPatch excludes it;
//   - istiod of the active revision, and no other by their metrics, denies
//     an invalid VirtualService and admits a valid one.
//
// Bootstrap: a re-apply as Flux does changes nothing and istiod writes
// nothing more. Promote and roll back: the same checks pass again with
// the other revision's istiod stopped (pods of namespaces still on it are
// refused: its injector fails closed). Retire: istiod-1-30 is gone with
// its Deployment, and every check passes on 1-31.
func TestIstiod(t *testing.T) {
	t.Parallel()
	requireIstiod(t, both...)
	for _, sc := range storyCases {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			c := newCluster(srv, sc.viaFlux)
			m := newMesh(t, c)
			dir := t.TempDir()
			treetest.Write(t, filepath.Join(dir, "common", "istio-system.yaml"), []byte(namespace))
			patched := false
			for _, s := range storySteps {
				ok := t.Run(s.name, func(t *testing.T) {
					begin := time.Now()
					if len(m.down) > 0 {
						clear(m.down)
						m.sync(t)
					}
					if s.patch {
						addPatch(t, dir, "1-30")
						patched = true
					}
					sources := map[string]string{}
					if s.source != "" {
						sources[s.source] = filepath.Join("istioctl", s.source, sc.fixture)
					}
					cfg := s.cfg
					cfg.flux = sc.viaFlux
					if explicitDefault[sc.name] {
						cfg.tags = maps.Clone(cfg.tags)
						cfg.tags["default"] = cfg.active
					}
					writeTree(t, dir, cfg, sources)
					d := c.deploy(t, dir)
					t.Logf("%s", d.summary())
					m.sync(t)
					m.check(t, cfg, patched)
					switch {
					case s.name == "1-bootstrap":
						checkReapply(t, c, m, dir, cfg)
					case stopAfter[s.name] != "":
						m.hold(t, stopAfter[s.name], true)
						m.check(t, cfg, patched)
					case s.retire != "":
						if m.running(s.retire) {
							t.Errorf("istiod %s still runs after its retirement", s.retire)
						}
					}
					t.Logf("step with istiods in %.1fs", time.Since(begin).Seconds())
				})
				if !ok {
					return
				}
			}
		})
	}
}

// checkReapply applies the tree again as Flux does: nothing changes, the
// CA bundles stay, and istiod writes nothing.
func checkReapply(t *testing.T, c *cluster, m *mesh, dir string, cfg meshConfig) {
	t.Helper()
	before := map[string]map[string]int{}
	for _, rev := range m.revisions() {
		before[rev] = istiodWrites(t, c.srv, rev)
	}
	d := c.deploy(t, dir)
	if len(d.created)+len(d.configured)+len(d.deleted) != 0 {
		t.Errorf("a re-apply created %q, configured %q, deleted %q", d.created, d.configured, d.deleted)
	}
	quiet(t, c, m)
	m.checkWebhooks(t, cfg)
	for _, rev := range m.revisions() {
		if now := istiodWrites(t, c.srv, rev); !maps.Equal(now, before[rev]) {
			t.Errorf("istiod %s wrote its webhooks again after Flux's re-apply: %v, then %v", rev, before[rev], now)
		}
	}
}

// quiet waits until no istiod has written a webhook configuration for a
// second (at most 20 s).
func quiet(t *testing.T, c *cluster, m *mesh) {
	t.Helper()
	count := func() int {
		n := 0
		for _, rev := range m.revisions() {
			for _, w := range istiodWrites(t, c.srv, rev) {
				n += w
			}
		}
		return n
	}
	last, since := count(), time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n := count(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= time.Second {
			return
		}
	}
	t.Errorf("istiod kept writing webhook configurations for 20s")
}

// TestIstiodDriftGuards applies revision 1-30, with a tag, runs its
// istiod, then applies the same tree again three times as Flux does,
// counting the writes of each to the webhook configurations (istiod's
// from the server's audit log, Flux's from its change set).
//
// With the drift guards (the default) istiod writes each configuration
// once, when it starts (its CA bundle), and neither writes again. Without
// them every re-apply resets the validators' failurePolicy to Ignore and
// istiod flips each back to Fail: the fight the guards prevent.
func TestIstiodDriftGuards(t *testing.T) {
	t.Parallel()
	requireIstiod(t, only130...)
	for _, tc := range []struct {
		name   string
		guards bool
	}{{"drift-guards", true}, {"no-drift-guards", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			c := newCluster(srv, false)
			m := newMesh(t, c)
			dir, cfg := stableTree(t, tc.guards)
			t.Logf("first apply: %s", c.deploy(t, dir).summary())
			m.sync(t)
			quiet(t, c, m)
			m.checkWebhooks(t, cfg)
			configs, _ := m.webhookProblems(t, "1-30")
			prev := istiodWrites(t, srv, "1-30")
			t.Logf("istiod's writes as it started: %v", prev)
			for _, w := range configs {
				if n := prev[w]; n == 0 || (tc.guards && n != 1) {
					t.Errorf("istiod wrote %s %d times as it started, want once", w, n)
				}
			}
			const rounds = 3
			resets, flips := 0, 0
			for round := 1; round <= rounds; round++ {
				res, err := c.flux.Reconcile(context.Background(), c.ks[rootKustomization[0].name], build(t, dir, "."))
				if err != nil {
					t.Fatal(err)
				}
				var configured []string
				for _, e := range res.Applied.Entries {
					if e.Action != ssa.UnchangedAction {
						configured = append(configured, describe(e.ObjMetadata))
					}
				}
				slices.Sort(configured)
				m.waitWebhooks(t, "1-30")
				quiet(t, c, m)
				now := istiodWrites(t, srv, "1-30")
				var wrote []string
				for _, w := range slices.Sorted(maps.Keys(now)) {
					for range now[w] - prev[w] {
						wrote = append(wrote, w)
					}
				}
				prev = now
				resets += len(configured)
				flips += len(wrote)
				switch {
				case tc.guards && len(configured)+len(wrote) != 0:
					t.Errorf("round %d: Flux changed %q, istiod wrote %q: with drift guards neither may write", round, configured, wrote)
				case !tc.guards && (len(configured) == 0 || !slices.Equal(configured, wrote)):
					t.Errorf("round %d: Flux changed %q, istiod wrote %q: want the validators reset by one and flipped back by the other, once each", round, configured, wrote)
				}
			}
			t.Logf("%d re-applies: Flux reset %d webhook configurations, istiod wrote %d", rounds, resets, flips)
		})
	}
}

// TestIstiodOnce runs istiod 1-31 against the trees of onceCases marked
// istiod (the ambient profile, Istio's Helm charts): it becomes ready,
// sets up its webhooks, injects and validates, as in TestIstiod.
func TestIstiodOnce(t *testing.T) {
	t.Parallel()
	requireIstiod(t, only131...)
	for _, oc := range onceCases {
		if !oc.istiod {
			continue
		}
		t.Run(oc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			c := newCluster(srv, false)
			m := newMesh(t, c)
			dir := t.TempDir()
			treetest.Write(t, filepath.Join(dir, "common", "istio-system.yaml"), []byte(namespace))
			for f, content := range oc.files {
				treetest.Write(t, filepath.Join(dir, f), []byte(content))
			}
			cfg := meshConfig{revisions: only131, active: "1-31", tags: oc.tags, spec: oc.spec}
			writeTree(t, dir, cfg, map[string]string{"1-31": oc.source})
			t.Logf("%s", c.deploy(t, dir).summary())
			m.sync(t)
			m.check(t, cfg, false)
		})
	}
}
