// Package cli holds the istio-gitops command line: the KRM function on
// stdin, and the subcommands that read and write a directory themselves.
// Each command has its own file; newRoot lists them.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/migrate"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/version"
)

// Exit codes, the same for every command.
const (
	// ExitOK: done.
	ExitOK = 0
	// ExitUser: the input, the config or the command line is wrong; the
	// message says what and where, and nothing was written.
	ExitUser = 1
	// ExitInternal: a bug of istio-gitops (a panic); please report it.
	ExitInternal = 2
)

// Processors are the function configs this binary runs, by kind.
func Processors() krm.Processors {
	return krm.Processors{
		config.Kind:  pipeline.Processor{},
		migrate.Kind: &migrate.Processor{},
	}
}

// NewRootCommand is the istio-gitops command.
func NewRootCommand() *cobra.Command {
	return newRoot(Processors())
}

// newRoot is the istio-gitops command running the function configs of ps,
// on stdin and in `run`.
func newRoot(ps krm.Processors) *cobra.Command {
	root := &cobra.Command{
		Use:   "istio-gitops",
		Short: "Keep an Istio mesh in Git: a KRM function that lays out istioctl output per canary revision",
		Long: `istio-gitops reads a ResourceList on stdin and writes one on stdout when run
with no arguments (kustomize fn run, kpt fn eval, kpt fn render, a container).
Its subcommands read and write a directory themselves.

Exit codes: 0 done, 1 an error of the input, config or command line
(nothing written), 2 an internal error (a bug: please report it).`,
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFunction(ps, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(
		newRunCommand(ps),
		newGenerateCommand(ps),
		newStatusCommand(),
		newFleetCommand(),
		newMigrateCommand(),
		newPatchCommand(),
		newSchemaCommand(),
		newVersionCommand(),
	)
	addSuggestions(root)
	return root
}

// Main runs the command line and returns the process exit code.
func Main() int {
	return execute(NewRootCommand(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// execute runs root with args and returns the exit code. A panic is a bug
// whatever the input: it is reported as an internal error, with its stack,
// rather than as a crash a user could take for their own mistake.
func execute(root *cobra.Command, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if v := recover(); v != nil {
			reportPanic(stderr, v, debug.Stack())
			code = ExitInternal
		}
	}()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		var ie *internalError
		if errors.As(err, &ie) {
			return ExitInternal
		}
		return ExitUser
	}
	return ExitOK
}

// internalError is an error that is a bug of istio-gitops, not of its
// input: exit 2.
type internalError struct{ err error }

func (e *internalError) Error() string { return "internal error: " + e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

// reportPanic writes a recovered panic and its stack to w.
func reportPanic(w io.Writer, v any, stack []byte) {
	fmt.Fprintf(w, "internal error: %v\n\n%s\nThis is a bug of %s: please report it with the input that caused it.\n",
		v, stack, version.Get())
}
