package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

var memory = flag.Bool("memory", false, "run the memory budget test (make test does)")

// TestMemoryBudget runs the binary over outputs of two shapes: peak
// memory must stay under four times the input, whatever its size or number
// of objects, and a second run, with nothing to do, must hash the tree
// rather than parse it.
//   - about 120 MB of istioctl output (1.31's, its CRDs copied under new
//     names until it is that big): a few large objects;
//   - about 48 MB of 1.31's output and 12,000 small ConfigMaps: many
//     small objects, each laid out as it is read.
func TestMemoryBudget(t *testing.T) {
	if !*memory {
		t.Skip("the memory budget runs with -memory (make test passes it)")
	}
	for _, c := range []struct {
		name string
		// write writes the output and returns its size, and the folder
		// of common/ and the number of files the run must write there
		// (its objects, no more: none lost, none twice).
		write func(t *testing.T, file string) (size int64, folder string, files int)
		// again is the most a second run may peak at, in times the input:
		// parsing what the first wrote would cost more.
		again float64
	}{
		{"large objects", func(t *testing.T, file string) (int64, string, int) {
			size, crds := bigOutput(t, file, 120<<20)
			return size, "customresourcedefinition", crds
		}, 0.5},
		{"many small objects", func(t *testing.T, file string) (int64, string, int) {
			return manyConfigMaps(t, file, 12000, 4<<10), "configmap", 12000
		}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			treetest.Write(t, filepath.Join(dir, "istio-gitops.yaml"), []byte(treetest.Config("1-31")))
			size, folder, want := c.write(t, filepath.Join(dir, "1-31", "istioctl-output.yaml"))
			rss, took := measured(t, dir)
			t.Logf("%d MB of istioctl output (%d %s): peak %d MB (%.1fx), %v", size>>20, want, folder, rss>>20, float64(rss)/float64(size), took)
			if rss > 4*size {
				t.Errorf("peak memory %d MB is more than 4 times the input's %d MB", rss>>20, size>>20)
			}
			files, err := filepath.Glob(filepath.Join(dir, "common", folder, "*.yaml"))
			if err != nil || len(files) != want {
				t.Errorf("common/%s holds %d files, want %d", folder, len(files), want)
			}
			rss, took = measured(t, dir)
			t.Logf("second run: peak %d MB (%.1fx), %v", rss>>20, float64(rss)/float64(size), took)
			if float64(rss) > c.again*float64(size) {
				t.Errorf("a run with nothing to do peaked at %d MB: it must not parse the %d MB it wrote", rss>>20, size>>20)
			}
		})
	}
}

// manyConfigMaps writes 1.31's istioctl output followed by n ConfigMaps of
// about each bytes, each of a few dozen short keys; it returns the size.
func manyConfigMaps(t *testing.T, file string, n, each int) int64 {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repo, "testdata/istioctl/1-31/default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.Write(src)
	value := strings.Repeat("v", 100)
	for i := range n {
		fmt.Fprintf(&out, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-%d\n  namespace: istio-system\n  labels:\n    app: settings\ndata:\n", i)
		for k := 0; k < each/(len(value)+16); k++ {
			fmt.Fprintf(&out, "  key-%d: %s\n", k, value)
		}
	}
	treetest.Write(t, file, out.Bytes())
	return int64(out.Len())
}

// bigOutput writes 1.31's istioctl output with its CRDs copied under new
// names until the file holds at least n bytes; it returns the size and
// the number of CRDs.
func bigOutput(t *testing.T, file string, n int64) (int64, int) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repo, "testdata/istioctl/1-31/default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(src, []byte("\n---\n"))
	crd := regexp.MustCompile(`(?m)^kind: CustomResourceDefinition$`)
	name := regexp.MustCompile(`(?m)^(  name: [a-z]+)\.`)
	var out bytes.Buffer
	count := 0
	for i := 0; int64(out.Len()) < n; i++ {
		for _, d := range docs {
			if crd.Match(d) {
				out.Write(name.ReplaceAll(d, []byte(fmt.Sprintf("${1}-copy%d.", i))))
				out.WriteString("\n---\n")
				count++
			}
		}
	}
	for _, d := range docs {
		if !crd.Match(d) {
			out.Write(d)
			out.WriteString("\n---\n")
		}
	}
	treetest.Write(t, file, out.Bytes())
	return int64(out.Len()), count
}

// measured runs the binary over dir and returns its peak resident memory,
// the high-water mark the kernel keeps of the process (VmHWM), polled:
// the rusage a parent reads counts the parent's own memory too, as a Go
// child starts in its parent's address space.
func measured(t *testing.T, dir string) (int64, time.Duration) {
	t.Helper()
	cmd := exec.Command(binary, "run", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	hwm := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	for {
		if b, err := os.ReadFile(status); err == nil {
			if m := hwm.FindSubmatch(b); m != nil {
				var kb int64
				fmt.Sscan(string(m[1]), &kb)
				peak = max(peak, kb<<10)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			if peak == 0 {
				t.Skip("no /proc/PID/status on this system")
			}
			return peak, time.Since(start)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
