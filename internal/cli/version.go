package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/istio-gitops/istio-gitops/internal/output"
	"github.com/istio-gitops/istio-gitops/internal/version"
)

func newVersionCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the VCS revision and the Go toolchain of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.Check(format); err != nil {
				return err
			}
			info := version.Get()
			if format == output.JSON {
				return output.Write(cmd.OutOrStdout(), info)
			}
			fmt.Fprintln(cmd.OutOrStdout(), info)
			return nil
		},
	}
	output.AddFlag(cmd, &format)
	return cmd
}
