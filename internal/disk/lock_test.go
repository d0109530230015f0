package disk

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const lockHelperEnv = "ISTIO_GITOPS_TEST_LOCK_HELPER"

// TestLockHelper is not a test: run by TestLockTree in a child process, it
// holds the lock of a folder until its standard input closes or it is
// killed.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("a helper of TestLockTree")
	}
	l, err := LockTree(dir, os.Getenv(lockHelperEnv+"_SHARED") == "")
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	l.Unlock()
	os.Exit(0)
}

// holder is a child process holding a lock.
func holder(t *testing.T, dir string, shared bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	if shared {
		cmd.Env = append(cmd.Env, lockHelperEnv+"_SHARED=1")
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("the helper could not lock %s: %q", dir, line)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	return cmd
}

// TestLockTree: one command at a time per tree, and per tree and folder
// holding it, across processes; shared locks (status) side by side; a
// lock is gone when its process is killed; in one process, a tree is
// locked once, and a command that holds a folder may lock trees below it.
func TestLockTree(t *testing.T) {
	parent := t.TempDir()
	tree := filepath.Join(parent, "clusters", "prod")
	other := filepath.Join(parent, "clusters", "staging")
	for _, d := range []string{tree, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustFail := func(dir string, exclusive bool, want string) {
		t.Helper()
		l, err := LockTree(dir, exclusive)
		if err == nil {
			l.Unlock()
			t.Fatalf("%s: locked while another command holds it", dir)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v must say %q", err, want)
		}
	}
	mustLock := func(dir string, exclusive bool) *Lock {
		t.Helper()
		l, err := LockTree(dir, exclusive)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	t.Run("another process holds the tree", func(t *testing.T) {
		h := holder(t, tree, false)
		mustFail(tree, true, "another istio-gitops command is working on this tree (it holds the tree's lock): wait for it to finish, then run again")
		mustFail(tree, false, "another istio-gitops command is working on this tree")
		mustFail(filepath.Join(parent, "clusters"), true, "another istio-gitops command is working on this tree")
		mustLock(other, true).Unlock()
		// Killed, it holds nothing.
		if err := h.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = h.Wait()
		mustLock(tree, true).Unlock()
	})
	t.Run("another process holds a folder above", func(t *testing.T) {
		holder(t, filepath.Join(parent, "clusters"), false)
		mustFail(tree, true, "is working on "+filepath.Join(parent, "clusters")+", which holds this tree")
	})
	t.Run("shared", func(t *testing.T) {
		holder(t, tree, true)
		mustLock(tree, false).Unlock()
		mustFail(tree, true, "another istio-gitops command is working on this tree")
	})
	t.Run("in one process", func(t *testing.T) {
		l := mustLock(tree, true)
		mustFail(tree, true, "another istio-gitops command is working on this tree")
		l.Unlock()
		p := mustLock(filepath.Join(parent, "clusters"), true)
		c := mustLock(tree, true)
		c.Unlock()
		p.Unlock()
		mustLock(tree, true).Unlock()
	})
	t.Run("a journal above", func(t *testing.T) {
		writeTree(t, filepath.Join(parent, "clusters"), map[string]string{JournalFile: "{}"})
		defer os.Remove(filepath.Join(parent, "clusters", JournalFile))
		mustFail(tree, true, "a command was interrupted while it wrote this folder")
	})
}

// TestUnlockWithACopyAlive: a child being started holds a copy of the
// lock's descriptor until its exec; the tree must be free once Unlock
// returns, not once that copy is closed.
func TestUnlockWithACopyAlive(t *testing.T) {
	dir := t.TempDir()
	l, err := LockTree(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := syscall.Dup(int(l.held[0].f.Fd())) // what fork gives the child
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dup)
	l.Unlock()
	again, err := LockTree(dir, true)
	if err != nil {
		t.Fatalf("the tree is still locked after Unlock: %v", err)
	}
	again.Unlock()
}
