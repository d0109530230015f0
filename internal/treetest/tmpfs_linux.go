package treetest

import (
	"os"
	"path/filepath"
	"syscall"
)

const (
	shm          = "/dev/shm"
	tmpfsMagic   = 0x01021994
	tempDirStart = "istio-gitops-tests-"
	lockFile     = ".owner"
)

// owner is the lock this process holds on its folder while it runs.
var owner *os.File

// memoryTempDir is a new folder on /dev/shm when it is a tmpfs with at
// least 2 GiB free, or "". The tests create and delete tens of thousands of
// small files; on ext4 allocating their inodes takes a fifth of the
// suite's CPU, on a tmpfs next to nothing. The folder is open to every
// user, as /tmp is: a test runs the binary as the image's user. The
// process holds a lock on it, so that the folders of test processes that
// were interrupted (a tmpfs does not give their memory back) are removed
// by the next one, whatever PID namespace each ran in.
func memoryTempDir() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(shm, &st); err != nil || st.Type != tmpfsMagic || st.Bavail*uint64(st.Bsize) < 2<<30 {
		return ""
	}
	removeOrphans(shm)
	// Locked under another name, then renamed: no other process may
	// find the folder before its lock is held.
	making, err := os.MkdirTemp(shm, "making-"+tempDirStart)
	if err != nil {
		return ""
	}
	dir := filepath.Join(shm, filepath.Base(making)[len("making-"):])
	f, err := os.Create(filepath.Join(making, lockFile))
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err == nil {
		err = os.Chmod(making, 0o1777)
	}
	if err == nil {
		err = os.Rename(making, dir)
	}
	if err != nil {
		os.RemoveAll(making)
		return ""
	}
	owner = f
	return dir
}

// removeOrphans removes the folders in root whose process is gone:
// their lock is free.
func removeOrphans(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, tempDirStart+"*"))
	for _, d := range dirs {
		f, err := os.Open(filepath.Join(d, lockFile))
		if err != nil {
			continue // not ours
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(d)
		}
		f.Close()
	}
}
