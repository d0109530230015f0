package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// TestSpeed measures, side by side in one run, `istio-gitops run` adding a
// revision to a tree against `kustomize build` of the tree it writes; the
// run must take at most 0.25 of the build's wall time on a quiet machine
// and stay under 150 MiB. `make bench` runs it (BENCH=1);
// timing is left out of `make test`, where a loaded machine would make it
// flaky.
func TestSpeed(t *testing.T) {
	if os.Getenv("BENCH") == "" {
		t.Skip("set BENCH=1 (make bench) to measure")
	}
	kustomize, err := kustomizeTool()
	if err != nil {
		skipOrFail(t, err)
	}
	for _, c := range []struct {
		name string
		from string // golden tree the revision is added to
		add  string // revision added
	}{
		{"second revision", "bootstrap", "1-31"},
		{"third revision", "add-1-31", "1-32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var runs, builds []time.Duration
			var rss int64
			for range 7 {
				dir := speedTree(t, c.from, c.add)
				d, r := timed(t, binary, "run", dir)
				runs = append(runs, d)
				rss = max(rss, r)
				d, _ = timed(t, kustomize, "build", dir)
				builds = append(builds, d)
			}
			run, build := median(runs), median(builds)
			ratio := float64(run) / float64(build)
			t.Logf("add %s: istio-gitops run %v, kustomize build %v, ratio %.2f, peak RSS %.1f MiB",
				c.add, run.Round(time.Millisecond), build.Round(time.Millisecond), ratio, float64(rss)/1024)
			if ratio > 0.25 {
				t.Errorf("run takes %.2f of kustomize build's time, must be at most 0.25", ratio)
			}
			if rss > 150*1024 {
				t.Errorf("peak RSS %d KiB, must stay under 150 MiB", rss)
			}
		})
	}
}

// speedTree is a golden tree with istioctl output for revision add; 1-32
// is made from 1-31's output, as no such release is bundled.
func speedTree(t *testing.T, from, add string) string {
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(golden, from, "want"), dir)
	b, err := os.ReadFile(filepath.Join(repo, "testdata/istioctl/1-31/default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if add != "1-31" {
		b = bytes.ReplaceAll(b, []byte("1-31"), []byte(add))
		b = bytes.ReplaceAll(b, []byte("1.31.0"), []byte("1.32.0"))
	}
	treetest.Write(t, filepath.Join(dir, add, "istioctl-output.yaml"), b)
	cfg := filepath.Join(dir, "istio-gitops.yaml")
	c, _ := os.ReadFile(cfg)
	c = []byte(strings.Replace(string(c), "  revisions:\n", "  revisions:\n  - name: "+add+"\n", 1))
	// Newest last.
	lines := strings.Split(string(c), "\n")
	i := slices.Index(lines, "  - name: "+add)
	j := i + 1
	for j < len(lines) && strings.HasPrefix(lines[j], "  - ") {
		j++
	}
	lines = append(lines[:i], append(slices.Clone(lines[i+1:j]), append([]string{"  - name: " + add}, lines[j:]...)...)...)
	treetest.Write(t, cfg, []byte(strings.Join(lines, "\n")))
	return dir
}

func timed(t *testing.T, name string, args ...string) (time.Duration, int64) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	d := time.Since(start)
	return d, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
