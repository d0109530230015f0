package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/istio-gitops/istio-gitops/internal/schema"
)

func newSchemaCommand() *cobra.Command {
	kinds := schema.Kinds()
	return &cobra.Command{
		Use:   "schema KIND",
		Short: "Print the JSON Schema of " + strings.Join(kinds, ", ") + " (draft-07, for editors and CI)",
		Long: `Print the JSON Schema of a kind, made from this binary's own types: the same
as schemas/<kind>.json of its release. Point an editor at it with a
yaml-language-server modeline, or validate configs in CI:

  # yaml-language-server: $schema=../schemas/istiogitops.json`,
		Example:   "  istio-gitops schema IstioGitOps > istiogitops.json",
		Args:      cobra.ExactArgs(1),
		ValidArgs: kinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := schema.For(args[0])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
}
