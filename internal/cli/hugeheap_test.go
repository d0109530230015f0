package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestThpOff: GODEBUG's disablethp, the last setting winning.
func TestThpOff(t *testing.T) {
	for godebug, want := range map[string]bool{
		"":                            false,
		"disablethp=1":                true,
		"madvdontneed=1,disablethp=1": true,
		"disablethp=1,disablethp=0":   false,
		"disablethp=0":                false,
		" disablethp=1 ":              true,
		"xdisablethp=1":               false,
	} {
		if got := thpOff(godebug); got != want {
			t.Errorf("thpOff(%q) = %v, want %v", godebug, got, want)
		}
	}
}

// TestHugeHeap: where the kernel gives huge pages on request, a run's
// objects land in them (the child process below allocates what a run
// does, in small objects); with GODEBUG=disablethp=1 they do not.
func TestHugeHeap(t *testing.T) {
	if os.Getenv("HUGEHEAP_CHILD") != "" {
		prepareHeap()
		var keep [][]byte
		for range 16 << 20 / 128 {
			keep = append(keep, make([]byte, 128))
		}
		fmt.Printf("AnonHugePages %d\n", anonHugeKiB(t))
		runtime.KeepAlive(keep)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("huge pages are asked for on Linux only")
	}
	if b, err := os.ReadFile(thpSettings); err != nil || !bytes.Contains(b, []byte("[madvise]")) {
		t.Skipf("the kernel does not give huge pages on request here (%s: %q, %v)", thpSettings, bytes.TrimSpace(b), err)
	}
	child := func(godebug string) int {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHugeHeap$")
		cmd.Env = append(os.Environ(), "HUGEHEAP_CHILD=1", "GODEBUG="+godebug)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		_, v, ok := strings.Cut(string(out), "AnonHugePages ")
		if !ok {
			t.Fatalf("child said:\n%s", out)
		}
		kib, err := strconv.Atoi(strings.Fields(v)[0])
		if err != nil {
			t.Fatal(err)
		}
		return kib
	}
	on, off := child(""), child("disablethp=1")
	t.Logf("16 MiB of small objects: %d KiB in huge pages, %d KiB with disablethp=1", on, off)
	if on-off < 8<<10 {
		t.Errorf("%d KiB in huge pages, %d KiB without: the objects must be in huge pages", on, off)
	}
}

func anonHugeKiB(t *testing.T) int {
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "AnonHugePages:"); ok {
			n, err := strconv.Atoi(strings.Fields(v)[0])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no AnonHugePages in /proc/self/smaps_rollup")
	return 0
}
