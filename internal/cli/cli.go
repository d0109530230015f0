// Package cli holds the istio-gitops command line: the KRM function on
// stdin, and the subcommands that read and write a directory themselves.
package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/migrate"
	"github.com/istio-gitops/istio-gitops/internal/patch"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
	"github.com/istio-gitops/istio-gitops/internal/status"
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
	root := &cobra.Command{
		Use:   "istio-gitops",
		Short: "Keep an Istio mesh in Git: a KRM function that lays out istioctl output per canary revision",
		Long: `istio-gitops reads a ResourceList on stdin and writes one on stdout when run
with no arguments (kustomize fn run, kpt fn eval, kpt fn render, a container).
Its subcommands read and write a directory themselves.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rw := &kio.ByteReadWriter{
				Reader:                cmd.InOrStdin(),
				Writer:                cmd.OutOrStdout(),
				KeepReaderAnnotations: true,
			}
			return framework.Execute(Processors(), rw)
		},
	}
	patchCmd := &cobra.Command{
		Use:   "patch",
		Short: "Work with GitPatch objects",
	}
	patchCmd.AddCommand(patch.ImportCommand())
	root.AddCommand(newRunCommand(), patchCmd, migrate.Command(), newStatusCommand())
	return root
}

func newRunCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "run DIR",
		Short: "Run the function configs found in DIR and write DIR back, as `kustomize fn run DIR` would",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			results, err := Processors().RunDir(args[0])
			PrintResults(cmd.OutOrStdout(), results)
			return err
		},
	}
}

func newStatusCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status DIR",
		Short: "Say what the tree in DIR says: revisions, versions, active and live, tags, namespaces",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "markdown" {
				return fmt.Errorf("--format: %q must be text or markdown", format)
			}
			items, err := disk.ReadObjects(args[0])
			if err != nil {
				return err
			}
			cfgs := krm.ConfigsOf(items, config.Kind)
			if len(cfgs) == 0 {
				return fmt.Errorf("%s: no IstioGitOps config found", args[0])
			}
			for i, c := range cfgs {
				s, err := status.Of(c, items)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				if format == "markdown" {
					s.Markdown(cmd.OutOrStdout())
				} else {
					s.Text(cmd.OutOrStdout())
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, or markdown (a table and a Mermaid diagram for a pull request)")
	return cmd
}

// PrintResults writes one line a result: severity, file, object, message.
func PrintResults(w io.Writer, results framework.Results) {
	for _, r := range results {
		var parts []string
		parts = append(parts, fmt.Sprintf("%-7s", string(r.Severity)))
		if r.File != nil && r.File.Path != "" {
			parts = append(parts, r.File.Path+":")
		}
		if ref := r.ResourceRef; ref != nil {
			id := ref.Kind + " " + ref.Name
			if ref.Namespace != "" {
				id = ref.Kind + " " + ref.Namespace + "/" + ref.Name
			}
			parts = append(parts, id+":")
		}
		parts = append(parts, r.Message)
		fmt.Fprintln(w, strings.Join(parts, " "))
	}
}

// Main runs the command and returns the process exit code.
func Main() int {
	if err := NewRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}
