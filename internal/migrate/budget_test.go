//go:build unix

package migrate

import (
	"flag"
	"io"
	"slices"
	"syscall"
	"testing"
	"time"
)

var budget = flag.Bool("budget", false, "run TestBudget10k: migrate must cost at most 1.5 times a kyaml read and write of 10,000 Namespaces")

// TestBudget10k runs what the two 10k benchmarks run, alternately, three
// times each, and holds the migration to 1.5 times the baseline, on the
// best of each (wall clock and CPU time: the CPU time is what a busy
// machine does not inflate). It takes about half a minute, hence -budget.
func TestBudget10k(t *testing.T) {
	if !*budget {
		t.Skip("run with -budget")
	}
	dir := t.TempDir()
	migrate := func() error {
		cmd := Command()
		cmd.SetOut(io.Discard)
		cmd.SetArgs([]string{dir, "--from", "1-30", "--to", "1-31", "--owner-key", "team"})
		return cmd.Execute()
	}
	baseline := func() error { return baselineReadWrite(dir) }
	var wall, cpu [2][]time.Duration
	for range 3 {
		for i, f := range []func() error{baseline, migrate} {
			writeBenchTree(t, dir)
			c0, w0 := cpuTime(t), time.Now()
			if err := f(); err != nil {
				t.Fatal(err)
			}
			wall[i] = append(wall[i], time.Since(w0))
			cpu[i] = append(cpu[i], cpuTime(t)-c0)
		}
	}
	for _, m := range []struct {
		name string
		d    [2][]time.Duration
	}{{"wall clock", wall}, {"CPU time", cpu}} {
		base, mig := slices.Min(m.d[0]), slices.Min(m.d[1])
		ratio := float64(mig) / float64(base)
		t.Logf("%s: migrate %v, baseline %v, ratio %.2f (runs: migrate %v, baseline %v)", m.name, mig, base, ratio, m.d[1], m.d[0])
		if ratio > 1.5 {
			t.Errorf("%s: migrate takes %.2f times the baseline, want at most 1.5", m.name, ratio)
		}
	}
}

// cpuTime is the user and system time the process used so far.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
