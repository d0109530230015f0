package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/output"
)

// RunOutput is what `run --output json` prints.
type RunOutput struct {
	Results []output.Result `json:"results"`
	// Error says why the run failed; nothing was written then.
	Error string `json:"error,omitempty"`
}

func newRunCommand(ps krm.Processors) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "run DIR",
		Short: "Run the function configs found in DIR and write DIR back, as `kustomize fn run DIR` would",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.Check(format); err != nil {
				return err
			}
			results, err := ps.RunDir(args[0])
			if format == output.JSON {
				doc := RunOutput{Results: output.Results(results)}
				if err != nil {
					doc.Error = err.Error()
				}
				if werr := output.Write(cmd.OutOrStdout(), doc); werr != nil && err == nil {
					err = werr
				}
				return err
			}
			PrintResults(cmd.OutOrStdout(), results)
			return err
		},
	}
	output.AddFlag(cmd, &format)
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
