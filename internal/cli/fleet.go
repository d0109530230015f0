package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/output"
)

// newFleetCommand is `fleet`: every cluster's tree under a folder, the
// order between them.
func newFleetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "See and check every cluster's tree under a folder, and the order they upgrade in",
		Long: `A fleet is the IstioGitOps trees under one folder, one per cluster, each
naming in spec.promotion.after the clusters it follows. The order and its
soak are read from Git: the committer time of the oldest commit on HEAD's
first-parent history since which a cluster has run a version.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newFleetStatusCommand(), newFleetCheckCommand())
	return cmd
}

func newFleetStatusCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status ROOT",
		Short: "One table of every cluster under ROOT: revisions, versions, pointers and since when, and what the order allows next",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.Check(format, output.Text, markdown, output.JSON); err != nil {
				return err
			}
			clock := now()
			rep, err := fleet.Status(args[0], clock)
			out := cmd.OutOrStdout()
			switch {
			case format == output.JSON:
				if rep == nil {
					rep = &fleet.Report{Clock: clock, Clusters: []fleet.ClusterReport{}}
				}
				if err != nil {
					rep.Error = err.Error()
				}
				if werr := output.Write(out, rep); werr != nil && err == nil {
					err = werr
				}
			case err != nil:
			case format == markdown:
				rep.Markdown(out)
			default:
				rep.Text(out)
			}
			return err
		},
	}
	output.AddFlag(cmd, &format, output.Text, markdown, output.JSON)
	return cmd
}

func newFleetCheckCommand() *cobra.Command {
	var format, base string
	cmd := &cobra.Command{
		Use:   "check ROOT [--base REF]",
		Short: "For CI: check every tree under ROOT (changed since REF) against its records and its order; exit 1 on any violation",
		Long: `Check the trees under ROOT as a pull request's CI should: each tree's files
against its records, and each step against the order of spec.promotion
(the clusters it follows must run a version for the soak before it moves
to it). With --base REF (the pull request's base, such as origin/main),
only the trees whose folder changed between REF and HEAD are checked, and
each step is judged from REF. Each problem is printed as a GitHub Actions
annotation (::error file=...::message); exit 1 on any error.`,
		Example: `  istio-gitops fleet check . --base origin/main`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.Check(format); err != nil {
				return err
			}
			rep, err := fleet.Check(args[0], base, now())
			if rep == nil {
				rep = &fleet.CheckReport{Base: base, Trees: []fleet.TreeCheck{}}
			}
			if err == nil && rep.Failed() {
				err = errors.New("fleet check found errors, annotated above")
			}
			out := cmd.OutOrStdout()
			if format == output.JSON {
				if err != nil {
					rep.Error = err.Error()
				}
				if werr := output.Write(out, rep); werr != nil && err == nil {
					err = werr
				}
				return err
			}
			rep.Annotations(out)
			return err
		},
	}
	output.AddFlag(cmd, &format)
	cmd.Flags().StringVar(&base, "base", "", "check only the trees changed since this commit (a branch, tag or hash, such as origin/main), judging each step from it")
	return cmd
}
