package generate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Istioctl runs istioctl; tests give a stub.
type Istioctl interface {
	// Run runs istioctl with args in dir, its output going to stdout and
	// stderr. An istioctl that exits non-zero is an error saying its exit
	// status.
	Run(ctx context.Context, dir string, args []string, stdout, stderr io.Writer) error
	// String names the istioctl in messages.
	String() string
}

// Exec is the istioctl program at Path: a path, or a name looked up on
// PATH.
type Exec struct{ Path string }

func (e Exec) String() string { return e.Path }

// waitDelay is how long Run waits, once istioctl exited or was killed,
// for its output to end: a process it started may hold it open forever.
var waitDelay = 2 * time.Second

// Run runs the program in a process group of its own: when ctx is done,
// the whole group is killed, whatever istioctl started; once istioctl has
// exited, a process it started that still holds its output is killed too,
// and the run fails (exec.ErrWaitDelay).
func (e Exec) Run(ctx context.Context, dir string, args []string, stdout, stderr io.Writer) error {
	name := e.Path
	if strings.ContainsRune(name, filepath.Separator) || strings.ContainsRune(name, '/') {
		// A relative path names the program from here, not from dir, where
		// it runs.
		abs, err := filepath.Abs(name)
		if err != nil {
			return err
		}
		name = abs
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// istioctl is gone, a process of its group holds the output: the
		// group lives on while it does, so its id is still the group's.
		_ = killGroup(cmd.Process.Pid)
	}
	return err
}

// killGroup kills the process group led by pid.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// timeoutError is the cause of a generate that ran out of time.
type timeoutError time.Duration

func (t timeoutError) Error() string {
	return fmt.Sprintf("did not finish within %s (--timeout): it was killed, with every process it started", time.Duration(t))
}

// ranErr says why running istioctl failed: out of time, a process it
// started that held its output, or istioctl's own exit status.
func ranErr(ctx context.Context, err error) error {
	var t timeoutError
	if errors.As(context.Cause(ctx), &t) {
		return t
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return fmt.Errorf("exited, but a process it started still held its output %s later: it was killed", waitDelay)
	}
	return fmt.Errorf("failed with %w", err)
}

// clientVersion asks ic for its own version, as `istioctl version` prints
// it: "unknown" for a build that was not stamped with one.
func clientVersion(ctx context.Context, ic Istioctl, dir string, stderr io.Writer) (string, error) {
	args := []string{"version", "--remote=false", "-o", "json"}
	var out capped
	out.max = 1 << 20
	err := ic.Run(ctx, dir, args, &out, stderr)
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("istioctl %q was not found: it must be on PATH, or be given with --istioctl PATH", ic.String())
	case context.Cause(ctx) != nil:
		return "", fmt.Errorf("%s %s %w", ic, strings.Join(args, " "), ranErr(ctx, err))
	case err != nil:
		return "", fmt.Errorf("%s %s %w: it must be istioctl", ic, strings.Join(args, " "), ranErr(ctx, err))
	}
	var v struct {
		ClientVersion *struct {
			Version *string `json:"version"`
		} `json:"clientVersion"`
	}
	if err := json.Unmarshal(out.buf.Bytes(), &v); err != nil || v.ClientVersion == nil || v.ClientVersion.Version == nil {
		return "", fmt.Errorf("%s %s must print a JSON document with clientVersion.version, as istioctl does: it printed %q",
			ic, strings.Join(args, " "), clip(out.buf.String()))
	}
	return strings.TrimSpace(*v.ClientVersion.Version), nil
}

// clip shortens what a program printed for a message.
func clip(s string) string {
	const n = 200
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
