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

// Run runs the program.
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
	return cmd.Run()
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
	case err != nil:
		return "", fmt.Errorf("%s %s failed with %w: it must be istioctl", ic, strings.Join(args, " "), err)
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
