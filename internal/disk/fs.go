package disk

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// FS is what a run does to the file system; tests wrap it to inject faults.
type FS interface {
	Open(name string) (io.ReadCloser, error)
	Lstat(name string) (fs.FileInfo, error)
	Mkdir(name string, perm fs.FileMode) error
	// Create writes a new file, failing if name exists.
	Create(name string, data []byte, perm fs.FileMode) error
	Rename(oldpath, newpath string) error
	Remove(name string) error
	// Sync makes a file's content, or a folder's entries, durable
	// (fsync): what a power loss may not take back.
	Sync(name string) error
}

// OS is the real file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) Open(name string) (io.ReadCloser, error) {
	// O_NOFOLLOW: a file replaced by a link after the tree was read is
	// not followed either. O_NONBLOCK: nor does one replaced by a named
	// pipe block the run (it reads as empty); a regular file ignores it.
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }

func (osFS) Mkdir(name string, perm fs.FileMode) error {
	if err := failpoint(); err != nil {
		return err
	}
	return os.Mkdir(name, perm)
}

func (osFS) Create(name string, data []byte, perm fs.FileMode) error {
	if err := failpoint(); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (osFS) Rename(oldpath, newpath string) error {
	if err := failpoint(); err != nil {
		return err
	}
	return os.Rename(oldpath, newpath)
}

func (osFS) Remove(name string) error {
	if err := failpoint(); err != nil {
		return err
	}
	return os.Remove(name)
}

func (osFS) Sync(name string) error {
	if err := failpoint(); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// FailpointEnv, when set to N, kills the process with SIGKILL before its
// Nth change to the file system. It exists for the kill test, which
// interrupts real runs at every point of their commit; nothing else sets it.
const FailpointEnv = "ISTIO_GITOPS_TEST_KILL_BEFORE_WRITE"

var (
	killAt = func() int64 {
		n, _ := strconv.ParseInt(os.Getenv(FailpointEnv), 10, 64)
		return n
	}()
	changes atomic.Int64
)

func failpoint() error {
	if killAt <= 0 {
		return nil
	}
	if changes.Add(1) == killAt {
		if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
			return fmt.Errorf("failpoint: %w", err)
		}
		select {} // SIGKILL is not delivered synchronously everywhere.
	}
	return nil
}

// syncWorkers is how many syncs run at once: a sync waits on the disk,
// not a core, and a journaling file system commits concurrent syncs
// together.
const syncWorkers = 32

// SyncParallel runs fn(0..n-1), which wait on the disk (write, sync), on
// up to syncWorkers goroutines, and returns the error of the lowest index.
func SyncParallel(n int, fn func(i int) error) error {
	return parallel(n, min(syncWorkers, max(n, 1)), fn)
}

// Parallel runs fn(0..n-1) on every core and returns the error of the
// lowest index, so the error reported does not depend on scheduling. A
// panic in fn is raised again in the caller's goroutine, where the
// command's last-resort recover sees it.
func Parallel(n int, fn func(i int) error) error {
	return parallel(n, min(runtime.GOMAXPROCS(0), max(n, 1)), fn)
}

func parallel(n, workers int, fn func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		panicked atomic.Pointer[any]
	)
	call := func(i int) {
		defer func() {
			if r := recover(); r != nil {
				panicked.CompareAndSwap(nil, &r)
			}
		}()
		errs[i] = fn(i)
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				call(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(*p)
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
