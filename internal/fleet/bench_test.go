package fleet_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

var budget = flag.Bool("budget", false, "check the fleet status budget: 50 clusters over 5,000 commits in at most 2 s, linear in clusters")

// buildFleet builds a repository of n clusters' trees with commits commits
// of history, with `git fast-import` (a packed repository, as a clone
// is): each commit changes one cluster, in turn, moving a tag, promoting
// or rolling back, its config different every time so that every change
// is parsed. Cluster i follows cluster i-1 with a soak of 24h. It returns
// the folder of the working tree.
func buildFleet(tb testing.TB, n, commits int) string {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skip("git not found")
	}
	dir := tb.TempDir()
	treetest.Git(tb, dir, "init", "-q", "-b", "main")
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(in)
	file := func(path, content string) {
		fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := make([]int, n)
	for c := 0; c <= commits; c++ {
		when := start.Add(time.Duration(c) * time.Hour)
		msg := fmt.Sprintf("step %d", c)
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Platform Team <platform@example.com> %d +0000\ndata %d\n%s\n", when.Unix(), len(msg), msg)
		if c == 0 {
			for i := range n {
				root := clusterPath(i)
				file(root+"/istio-gitops.yaml", benchConfig(i, 0))
				for _, rev := range []string{"1-30", "1-31"} {
					file(root+"/"+rev+"/generated/state.yaml", benchRecord(rev))
					for k := range 20 {
						file(fmt.Sprintf("%s/%s/generated/configmap/cm-%02d.yaml", root, rev, k),
							fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%02d\n  namespace: istio-system\n", k))
					}
				}
				file(root+"/namespaces.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels:\n    istio.io/rev: stable\n")
			}
			continue
		}
		i := (c - 1) % n
		steps[i]++
		file(clusterPath(i)+"/istio-gitops.yaml", benchConfig(i, steps[i]))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("git fast-import: %v\n%s", err, stderr.String())
	}
	treetest.Git(tb, dir, "checkout", "-q", "-f", "main")
	return dir
}

func clusterPath(i int) string { return fmt.Sprintf("clusters/c%02d/istio", i) }

// benchConfig is cluster i's config at its step: a tag moved at every
// step, the active revision every third.
func benchConfig(i, step int) string {
	active, tag := "1-30", "1-30"
	if step%3 == 1 {
		active = "1-31"
	}
	if step%2 == 1 {
		tag = "1-31"
	}
	after := ""
	if i > 0 {
		after = fmt.Sprintf("  promotion:\n    after: [../../c%02d/istio]\n    soak: 24h\n", i-1)
	}
	return fmt.Sprintf(`# step %d
apiVersion: fn.istio-gitops.dev/v1alpha1
kind: IstioGitOps
metadata:
  name: c%02d
  annotations:
    config.kubernetes.io/local-config: "true"
spec:
  revisions:
  - name: 1-30
  - name: 1-31
  activeRevision: %s
  tags:
    stable: %s
%s`, step, i, active, tag, after)
}

func benchRecord(rev string) string {
	return fmt.Sprintf(`apiVersion: fn.istio-gitops.dev/v1alpha1
kind: RevisionState
metadata:
  name: %s
  annotations:
    config.kubernetes.io/local-config: "true"
spec:
  version: 1.%s.0
  files: {}
`, rev, strings.Split(rev, "-")[1])
}

// statusTime is the time of one fleet status over dir, and the CPU time
// it took (on a busy machine the wall time says more of the others).
func statusTime(tb testing.TB, dir string, n int) (time.Duration, time.Duration) {
	tb.Helper()
	cpu0 := cpuTime()
	t0 := time.Now()
	rep, err := fleet.Status(dir, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d := time.Since(t0)
	cpu := cpuTime() - cpu0
	if err != nil {
		tb.Fatal(err)
	}
	if len(rep.Clusters) != n {
		tb.Fatalf("%d clusters, want %d", len(rep.Clusters), n)
	}
	for _, c := range rep.Clusters {
		if len(c.Pointers) == 0 || c.Pointers[0].Since == nil {
			tb.Fatalf("%s: no age read from the history", c.Name)
		}
	}
	return d, cpu
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFleetStatus: `fleet status` over 10, 25 and 50 clusters with
// 5,000 commits of history.
func BenchmarkFleetStatus(b *testing.B) {
	for _, n := range []int{10, 25, 50} {
		dir := buildFleet(b, n, 5000)
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			for b.Loop() {
				statusTime(b, dir, n)
			}
		})
	}
}

// TestFleetStatusBudget (make bench, -budget): 50 clusters over 5,000
// commits take at most 2 s, and the time grows at most linearly with the
// clusters (50 clusters at most 5 times 10 clusters, with room for noise),
// on the best of three runs. Without -budget, a small fleet checks the
// same path.
func TestFleetStatusBudget(t *testing.T) {
	if !*budget {
		statusTime(t, buildFleet(t, 4, 60), 4)
		return
	}
	best := func(dir string, n int) (time.Duration, time.Duration) {
		var b, c time.Duration
		for i := range 3 {
			d, cpu := statusTime(t, dir, n)
			if i == 0 || d < b {
				b = d
			}
			if i == 0 || cpu < c {
				c = cpu
			}
		}
		return b, c
	}
	d10, cpu10 := best(buildFleet(t, 10, 5000), 10)
	d50, cpu50 := best(buildFleet(t, 50, 5000), 50)
	t.Logf("fleet status over 5,000 commits: 10 clusters %s (CPU %s), 50 clusters %s (CPU %s); ratio %.2f, linear is 5",
		d10.Round(time.Millisecond), cpu10.Round(time.Millisecond), d50.Round(time.Millisecond), cpu50.Round(time.Millisecond), float64(d50)/float64(d10))
	if d50 > 2*time.Second {
		t.Errorf("50 clusters over 5,000 commits took %s, the budget is 2 s (the process used %s of CPU: if far less, the machine is busy; run again)", d50, cpu50)
	}
	// Linearity on CPU time, which a busy machine does not inflate.
	if float64(cpu50) > 5*1.5*float64(cpu10) {
		t.Errorf("50 clusters took %.1f times the CPU of 10 clusters: more than linear", float64(cpu50)/float64(cpu10))
	}
}
