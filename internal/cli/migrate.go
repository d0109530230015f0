package cli

import (
	"github.com/spf13/cobra"

	"github.com/istio-gitops/istio-gitops/internal/migrate"
)

// newMigrateCommand is `migrate DIR`: the RevisionMigration function built
// from flags (its flags and output live with the function).
func newMigrateCommand() *cobra.Command {
	return migrate.Command()
}
