package cli

import (
	"fmt"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/output"
	"github.com/istio-gitops/istio-gitops/internal/status"
)

// markdown is the status's format for a pull request.
const markdown = "markdown"

// StatusOutput is what `status --output json` prints: one entry per
// IstioGitOps config found.
type StatusOutput struct {
	Trees []status.Summary `json:"trees"`
	// Error says why the status could not be read.
	Error string `json:"error,omitempty"`
}

func newStatusCommand() *cobra.Command {
	var (
		format, legacy string
		namespaces     []string
	)
	cmd := &cobra.Command{
		Use:   "status DIR",
		Short: "Say what the tree in DIR says: revisions, versions, active and live, tags, namespaces",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("format") {
				if cmd.Flags().Changed("output") && legacy != format {
					return fmt.Errorf("--format: %q must not contradict --output %q (--format is its old name)", legacy, format)
				}
				format = legacy
			}
			if err := output.Check(format, output.Text, markdown, output.JSON); err != nil {
				return err
			}
			elsewhere, err := readNamespaces(namespaces)
			if err != nil {
				return err
			}
			sums, err := statusOf(cmd, args[0], format, elsewhere)
			if format == output.JSON {
				doc := StatusOutput{Trees: sums}
				if err != nil {
					doc.Error = err.Error()
				}
				if werr := output.Write(cmd.OutOrStdout(), doc); werr != nil && err == nil {
					err = werr
				}
			}
			return err
		},
	}
	output.AddFlag(cmd, &format, output.Text, markdown, output.JSON)
	addNamespacesFlag(cmd, &namespaces)
	// --format was the flag's first name: scripts keep working, quietly
	// (a deprecation notice would land in the Markdown piped to a PR).
	cmd.Flags().StringVar(&legacy, "format", output.Text, "old name of --output")
	_ = cmd.Flags().MarkHidden("format")
	return cmd
}

// statusOf prints the status of every IstioGitOps config in dir as text
// or markdown, or returns it for JSON. Trees side by side are each read on
// their own files (and those of no tree), with the Namespace manifests
// their config names beside them and those given with --namespaces.
func statusOf(cmd *cobra.Command, dir, format string, elsewhere fileset.Set) ([]status.Summary, error) {
	sums := []status.Summary{}
	// Shared: statuses run side by side, never while a command writes.
	lock, err := disk.LockTree(dir, false)
	if err != nil {
		return sums, err
	}
	defer lock.Unlock()
	t, err := disk.Read(dir)
	if err != nil {
		return sums, err
	}
	files := fileset.FromTree(t)
	cfgs, err := krm.FindConfigs(files, config.Kind)
	if err != nil {
		return sums, err
	}
	if len(cfgs) == 0 {
		return sums, fmt.Errorf("%s: no IstioGitOps config found", dir)
	}
	roots := krm.Roots(cfgs)
	out := cmd.OutOrStdout()
	for i, c := range cfgs {
		root := krm.RootOf(object.Path(c))
		view, _ := krm.Split(files, roots, root)
		view = append(view, elsewhere...)
		cfg, err := config.Load(c)
		if err != nil {
			return sums, err
		}
		if len(cfg.Spec.Namespaces.From) > 0 {
			cdir := filepath.Join(dir, filepath.FromSlash(root))
			ns, err := fleet.NamespacesFrom(cdir, filepath.ToSlash(cdir), path.Join(filepath.ToSlash(cdir), path.Base(object.Path(c))), cfg)
			if err != nil {
				return sums, err
			}
			view = append(view, ns...)
		}
		s, err := status.OfFiles(c, view)
		if err != nil {
			return sums, err
		}
		switch format {
		case output.JSON:
			sums = append(sums, s.Summary())
			continue
		case markdown:
			if i > 0 {
				fmt.Fprintln(out)
			}
			s.Markdown(out)
		default:
			if i > 0 {
				fmt.Fprintln(out)
			}
			s.Text(out)
		}
	}
	return sums, nil
}
