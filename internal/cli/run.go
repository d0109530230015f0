package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/output"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
)

// RunOutput is what `run --output json` prints.
type RunOutput struct {
	Results []output.Result `json:"results"`
	// Error says why the run failed; nothing was written then.
	Error string `json:"error,omitempty"`
}

func newRunCommand(ps krm.Processors) *cobra.Command {
	var (
		format     string
		namespaces []string
		opts       pipeline.Options
	)
	cmd := &cobra.Command{
		Use:   "run DIR",
		Short: "Run the function configs found in DIR and write DIR back, as `kustomize fn run DIR` would",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.Check(format); err != nil {
				return err
			}
			var err error
			if opts.Namespaces, err = readNamespaces(namespaces); err != nil {
				return err
			}
			prepareHeap()
			results, err := onDisk(ps, args[0], opts).RunDir(args[0])
			return printRun(cmd.OutOrStdout(), format, results, err)
		},
	}
	output.AddFlag(cmd, &format)
	cmd.Flags().BoolVar(&opts.AllowRemovals, "allow-removals", false,
		"let this run's regenerations remove more than a few objects of a folder (a profile change); without it such an output is taken for a truncated one")
	addNamespacesFlag(cmd, &namespaces)
	return cmd
}

// addNamespacesFlag adds --namespaces: Namespace manifests kept elsewhere.
func addNamespacesFlag(cmd *cobra.Command, paths *[]string) {
	cmd.Flags().StringArrayVar(paths, "namespaces", nil,
		"a file or folder of Namespace manifests (and workloads) kept outside the tree, read and never written; they count for the retire guard and the status (repeatable)")
}

// readNamespaces reads the files and folders given with --namespaces.
func readNamespaces(paths []string) (fileset.Set, error) {
	var out fileset.Set
	for _, p := range paths {
		files, err := fleet.Read(p)
		if err != nil {
			return nil, fmt.Errorf("--namespaces: %w", err)
		}
		out = append(out, files...)
	}
	return out, nil
}

// now is the clock the order of spec.promotion is judged by; tests set
// it.
var now = time.Now

// onDisk is ps over the folder dir on disk (run, generate --run): the
// IstioGitOps trees also read what their configs name beside them and keep
// their fleet's order, run with opts.
func onDisk(ps krm.Processors, dir string, opts pipeline.Options) krm.Processors {
	out := krm.Processors{}
	for k, p := range ps {
		out[k] = p
	}
	if _, ok := out[config.Kind].(pipeline.Processor); ok {
		out[config.Kind] = fleet.Processor{Root: dir, Options: opts, Clock: now}
	}
	return out
}

// printRun prints a run's results (and error, when it failed) as
// format asks and returns err, or the printing's error.
func printRun(w io.Writer, format string, results framework.Results, err error) error {
	if format != output.JSON {
		if err != nil {
			// The error line says every error once (a config's mistakes
			// all together): the results' own error lines would repeat it.
			results = withoutErrors(results, err)
		}
		PrintResults(w, results)
		return err
	}
	doc := RunOutput{Results: output.Results(results)}
	if err != nil {
		doc.Error = err.Error()
	}
	if werr := output.Write(w, doc); werr != nil && err == nil {
		err = werr
	}
	return err
}

// PrintResults writes one line a result: severity, file, object, message.
// The results of a run over several trees come tree by tree, each under a
// line naming it.
func PrintResults(w io.Writer, results framework.Results) {
	tree := ""
	for _, r := range results {
		if t := r.Tags[krm.TreeTag]; t != "" && t != tree {
			tree = t
			fmt.Fprintf(w, "== %s\n", t)
		}
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

// withoutErrors are the results less the errors err says already.
func withoutErrors(results framework.Results, err error) framework.Results {
	said := err.Error()
	var out framework.Results
	for _, r := range results {
		if r.Severity == framework.Error {
			msg := r.Message
			if _, tail, ok := strings.Cut(msg, ": "); ok {
				msg = tail
			}
			if strings.Contains(said, msg) {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
