package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Lock is one command's hold on a tree: an exclusive lock (flock) on the
// tree's root folder, and a shared one on each folder above it, so that
// two commands never work on one tree at once, nor on a tree and a folder
// holding it. The lock lives on the folders themselves: it leaves no file
// in the tree, and the kernel releases it when the process dies, SIGKILL
// included.
type Lock struct {
	held []*heldLock
}

// heldLock is one folder this process locked, shared by the locks of the
// process that need it.
type heldLock struct {
	key  fileKey
	f    *os.File
	refs int
}

type fileKey struct{ dev, ino uint64 }

// keyOf is the device and inode of a file; ok is false where the system
// does not say them.
func keyOf(fi os.FileInfo) (key fileKey, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{uint64(st.Dev), st.Ino}, true //nolint:unconvert // Dev is int32 on darwin
}

// locks are the folders this process holds, by identity: flock would
// refuse a second lock of the process's own on another descriptor, so a
// shared lock of a folder the process holds takes a reference to it (a
// command over several trees holds their parent, then locks each tree in
// turn); an exclusive one is refused, as from another process.
var (
	locksMu sync.Mutex
	locks   = map[fileKey]*heldLock{}
)

// LockTree takes the lock of the tree at root for one command's whole
// read-decide-write (exclusive) or read (shared). It does not wait: when
// another command holds the tree, the error says so.
func LockTree(root string, exclusive bool) (*Lock, error) {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	if real, err = filepath.Abs(real); err != nil {
		return nil, err
	}
	locksMu.Lock()
	defer locksMu.Unlock()
	l := &Lock{}
	for dir, first := real, true; ; dir, first = filepath.Dir(dir), false {
		if !first {
			if _, err := os.Lstat(filepath.Join(dir, JournalFile)); err == nil {
				l.release()
				return nil, interrupted(dir, JournalFile)
			}
		}
		h, err := lockFolder(dir, first && exclusive)
		switch {
		case err == nil && h != nil:
			l.held = append(l.held, h)
		case err != nil:
			l.release()
			at := dir
			if first {
				at = root // the tree, as the caller named it
			}
			return nil, heldError(root, at, err)
		}
		if parent := filepath.Dir(dir); parent == dir {
			return l, nil
		}
	}
}

func heldError(root, dir string, err error) error {
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	if dir == root {
		return fmt.Errorf("%s: another istio-gitops command is working on this tree (it holds the tree's lock): wait for it to finish, then run again", root)
	}
	return fmt.Errorf("%s: another istio-gitops command is working on %s, which holds this tree: wait for it to finish, then run again", root, dir)
}

// lockFolder locks one folder, exclusive or shared, or takes another
// reference to this process's lock on it. A folder this process cannot
// open (no read permission, above the trees) is passed over: nil, nil.
func lockFolder(dir string, exclusive bool) (*heldLock, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil
	}
	key, ok := keyOf(fi)
	if !ok {
		f.Close()
		return nil, nil
	}
	if h := locks[key]; h != nil {
		f.Close()
		if exclusive {
			// Another command of this process works on it, or below it.
			return nil, syscall.EWOULDBLOCK
		}
		h.refs++
		return h, nil
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	h := &heldLock{key: key, f: f, refs: 1}
	locks[key] = h
	return h, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l == nil {
		return
	}
	locksMu.Lock()
	defer locksMu.Unlock()
	l.release()
}

func (l *Lock) release() {
	for _, h := range l.held {
		h.refs--
		if h.refs == 0 {
			delete(locks, h.key)
			// Unlocked before it is closed: a child this process is
			// starting (git, kustomize) holds a copy of the descriptor
			// until its exec closes it, and with it the lock, so a
			// close alone can leave the tree locked for a moment after
			// the command is done.
			_ = syscall.Flock(int(h.f.Fd()), syscall.LOCK_UN)
			h.f.Close()
		}
	}
	l.held = nil
}
