package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/generate"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/output"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
)

func newGenerateCommand(ps krm.Processors) *cobra.Command {
	var (
		format, rev, istioctl string
		run                   bool
		timeout               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "generate DIR --revision R",
		Short: "Run istioctl on R/istio-operator.yaml and write R's source (istioctl-output.yaml), the istioctl's version checked",
		Long: `generate runs

  ISTIOCTL manifest generate -f R/istio-operator.yaml --set revision=R

in the tree of the IstioGitOps config found in DIR, and writes its output
to the revision's source (spec.revisions[].source, default
R/istioctl-output.yaml), only when istioctl succeeded and printed objects,
and atomically. istioctl's messages are shown as it prints them.

First the istioctl's version (istioctl version --remote=false -o json) is
checked against the revision's: spec.revisions[].version, else the version
R/generated/state.yaml records, else the one the name carries (1-31: 1.31).
A mismatch is an error; an istioctl built without a version ("unknown") is
a warning. The output must hold the revision's istiod Deployment and no
other revision's objects. istioctl runs in a process group of its own: past
--timeout it is killed with every process it started, and so is a process
it started that still holds its output after it exited.

With --run, the tree is then run as ` + "`istio-gitops run DIR`" + ` runs it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.Check(format); err != nil {
				return err
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout: %s must be more than 0", timeout)
			}
			results, err := generate.Run(cmd.Context(), generate.Options{
				Timeout:  timeout,
				Dir:      args[0],
				Revision: rev,
				Istioctl: generate.Exec{Path: istioctl},
				Stderr:   cmd.ErrOrStderr(),
			})
			if err == nil {
				if run {
					prepareHeap()
					var res framework.Results
					res, err = onDisk(ps, args[0], pipeline.Options{}).RunDir(args[0])
					results = append(results, res...)
				} else {
					results = append(results, &framework.Result{Severity: framework.Info,
						Message: fmt.Sprintf("next: istio-gitops run %s", args[0])})
				}
			}
			return printRun(cmd.OutOrStdout(), format, results, err)
		},
	}
	output.AddFlag(cmd, &format)
	cmd.Flags().StringVar(&rev, "revision", "", "the revision `R` to generate; it must be listed in spec.revisions")
	_ = cmd.MarkFlagRequired("revision")
	cmd.Flags().StringVar(&istioctl, "istioctl", "istioctl", "the istioctl to run: a `PATH`, or a name looked up on $PATH; its version must be the revision's")
	cmd.Flags().BoolVar(&run, "run", false, "then run DIR, as istio-gitops run DIR does")
	cmd.Flags().DurationVar(&timeout, "timeout", generate.DefaultTimeout, "how long istioctl may run (its version, then the manifests) before it is killed, with every process it started")
	return cmd
}
