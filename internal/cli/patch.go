package cli

import (
	"github.com/spf13/cobra"

	"github.com/istio-gitops/istio-gitops/internal/patch"
)

// newPatchCommand groups the GitPatch commands: `patch import`.
func newPatchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "patch",
		Short: "Work with GitPatch objects",
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(patch.ImportCommand())
	return cmd
}
