package migrate

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "sigs.k8s.io/yaml"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/output"
)

// Command is `istio-gitops migrate DIR`: a RevisionMigration built from
// flags, run over DIR the way `kustomize fn run` does.
func Command() *cobra.Command {
	var (
		spec       Spec
		selector   []string
		reportFile string
		format     string
		teams      TeamOptions
		tree       string
		dryRun     bool
	)
	cmd := &cobra.Command{
		Use:   "migrate DIR --from A --to B --owner-key K",
		Short: "Move the Namespaces in DIR to a new Istio revision, team by team",
		Long: `Move the Namespace manifests in DIR from revision (or tag) A to B: each
Namespace on A that one of the selected teams owns gets istio.io/rev: B.
Namespaces labelled istio-injection=enabled move only when A is the default
revision ("default", or where the default tag of the IstioGitOps config in DIR
points: its tags.default, else its activeRevision);
istio-injection=disabled namespaces never move. Workloads whose pod template
sets istio.io/rev or sidecar.istio.io/inject are reported, and moved from A
to B with --workloads.

Files whose objects do not change are left byte for byte; on any error
nothing is written. --report writes a Markdown summary grouped by team, fit
for the body of each team's pull request.

With --branches, DIR is in a Git repository and is not written: the
migration runs over the files HEAD holds, once per owning team, and each
team gets a local branch off HEAD (<branch-prefix><team>) with one commit
changing only that team's files, its message the pull request (title,
what moves, the team's report, the deadline, how to roll back). The
current branch, the index and the working tree are left alone; a working
tree with changes to a file a commit changes is refused. A re-run moves a
branch only when its change differs. --patches DIR writes the same
commits as git format-patch files, one per team, with or without
--branches.

--tree names the cluster's tree (the folder of its IstioGitOps config):
--from and --to must be one of its revisions or tags, and its default tag
says whether --from is the default revision. --dry-run prints what would
move and the report, and writes nothing.`,
		Example: `  istio-gitops migrate namespaces/ --from 1-30 --to 1-31 --owner-key team --owner payments --report payments.md
  istio-gitops migrate namespaces/ --from 1-30 --to 1-31 --owner-key team --branches --deadline 2026-12-31`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			if err := output.Check(format); err != nil {
				return err
			}
			node, err := configNode(spec, selector)
			if err == nil {
				err = checkTeamOptions(cmd, teams)
			}
			if err == nil && dryRun && teams.enabled() {
				err = fmt.Errorf("--dry-run: must not be given with --branches or --patches, which leave DIR as it is already")
			}
			if err == nil && tree != "" {
				teams.meshes, err = checkTree(tree, spec)
			}
			if err == nil {
				return runDir(cmd.OutOrStdout(), args[0], node, reportFile, format, teams, dryRun)
			}
			if format == output.JSON {
				_ = output.Write(cmd.OutOrStdout(), Summary{From: spec.From, To: spec.To, Files: []string{}, Results: []output.Result{}, Error: err.Error()})
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.From, "from", "", "revision or tag the namespaces are on (spec.from)")
	f.StringVar(&spec.To, "to", "", "revision or tag to move them to (spec.to)")
	f.StringVar(&spec.OwnerKey, "owner-key", "", "label or annotation of a Namespace naming its team (spec.ownerKey)")
	f.StringSliceVar(&spec.Owners, "owner", nil, "move only this team's namespaces; repeatable (spec.owners)")
	f.StringSliceVar(&spec.Exclude, "exclude", nil, "never move this namespace; repeatable (spec.exclude)")
	f.StringSliceVar(&selector, "selector", nil, "only namespaces with these labels, key=value,... (spec.selector.matchLabels)")
	f.BoolVar(&spec.Workloads, "workloads", false, "also move pod-template istio.io/rev labels (spec.workloads)")
	f.StringVar(&reportFile, "report", "", "write the Markdown report to this file")
	f.BoolVar(&teams.Branches, "branches", false, "make one local Git branch per team off HEAD, each with one commit, instead of writing DIR")
	f.StringVar(&teams.Prefix, "branch-prefix", "", "start each team's branch name with this (default istio-<to>/)")
	f.StringVar(&teams.Deadline, "deadline", "", "say in each pull request to merge before this date (2026-12-31) or time")
	f.StringVar(&teams.Patches, "patches", "", "write one git format-patch file per team into this folder, instead of writing DIR")
	f.StringVar(&tree, "tree", "", "the cluster's tree (the folder of its IstioGitOps config): --from and --to must be a revision or tag listed there")
	f.BoolVar(&dryRun, "dry-run", false, "print what would move and the report, and write nothing")
	output.AddFlag(cmd, &format)
	for _, name := range []string{"from", "to", "owner-key"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// configNode builds the RevisionMigration the flags describe.
func configNode(spec Spec, selector []string) (*yaml.RNode, error) {
	for _, kv := range selector {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--selector: %q must be key=value", kv)
		}
		if spec.Selector == nil {
			spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{}}
		}
		if old, dup := spec.Selector.MatchLabels[k]; dup && old != v {
			return nil, fmt.Errorf("--selector: %q must be given one value, not %q and %q", k, old, v)
		}
		spec.Selector.MatchLabels[k] = v
	}
	m := RevisionMigration{
		APIVersion: api.APIVersion,
		Kind:       Kind,
		Metadata: config.Metadata{
			Name:        spec.From + "-to-" + spec.To,
			Annotations: map[string]string{api.LocalConfigAnnotation: "true"},
		},
		Spec: spec,
	}
	b, err := k8syaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%s from flags: %w", Kind, err)
	}
	node, err := yaml.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s from flags: %w", Kind, err)
	}
	// Validate here, so a bad flag fails before DIR is read.
	if _, err := Load(node); err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	return node, nil
}

// snapshot keeps the bytes of the files a run changes, read after the run
// decided and before the directory is written, to tell what the YAML writer
// changed besides the labels.
type snapshot struct {
	*Processor
	dir    string
	before map[string][]byte
}

func (s *snapshot) Process(rl *framework.ResourceList) error {
	if err := s.Processor.Process(rl); err != nil {
		return err
	}
	s.before = map[string][]byte{}
	for _, f := range s.Report.ChangedFiles() {
		b, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(f)))
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		s.before[f] = b
	}
	return nil
}

// Summary is what `migrate --output json` prints: the run's results and
// what moved.
type Summary struct {
	From            string `json:"from"`
	To              string `json:"to"`
	NamespacesMoved int    `json:"namespacesMoved"`
	WorkloadsMoved  int    `json:"workloadsMoved"`
	// Files are the files changed, relative to DIR.
	Files []string `json:"files"`
	// Report is the Markdown report written (--report).
	Report string `json:"report,omitempty"`
	// Branches are the teams' commits (--branches, --patches).
	Branches []Branch `json:"branches,omitempty"`
	// DryRun says nothing was written (--dry-run); Markdown is then the
	// report.
	DryRun   bool            `json:"dryRun,omitempty"`
	Markdown string          `json:"markdown,omitempty"`
	Results  []output.Result `json:"results"`
	// Error says why the run failed; nothing was written then.
	Error string `json:"error,omitempty"`
}

// checkTeamOptions refuses flags of --branches and --patches given
// without either.
func checkTeamOptions(cmd *cobra.Command, o TeamOptions) error {
	if !o.enabled() {
		for _, f := range []string{"branch-prefix", "deadline"} {
			if cmd.Flags().Changed(f) {
				return fmt.Errorf("--%s: must be given with --branches or --patches", f)
			}
		}
	}
	return checkDeadline(o.Deadline)
}

// checkTree reads the cluster's tree of --tree: --from and --to must be
// one of its revisions or tags (--from may be "default", the default
// revision every tree has). The tree's config is returned, for the
// migration to check spec.to against and to know the default revision by.
func checkTree(dir string, spec Spec) ([]*yaml.RNode, error) {
	node, err := krm.ConfigIn(dir, config.Kind)
	if err != nil {
		return nil, fmt.Errorf("--tree: %w", err)
	}
	file := path.Join(filepath.ToSlash(dir), object.Path(node))
	if err := object.SetPath(node, file, 0); err != nil {
		return nil, err
	}
	cfg, err := config.Load(node)
	if err != nil {
		return nil, fmt.Errorf("--tree: %s: %w", file, err)
	}
	revs, tags := cfg.RevisionNames(), config.SortedKeys(cfg.Spec.Tags)
	for _, f := range []struct{ flag, v string }{{"--from", spec.From}, {"--to", spec.To}} {
		if slices.Contains(revs, f.v) || slices.Contains(tags, f.v) || f.flag == "--from" && f.v == DefaultTag {
			continue
		}
		return nil, fmt.Errorf("%s: %q must be a revision or tag of IstioGitOps %q in %s: it lists the revisions %q and the tags %q",
			f.flag, f.v, cfg.Metadata.Name, file, revs, tags)
	}
	return []*yaml.RNode{node}, nil
}

func runDir(out io.Writer, dir string, node *yaml.RNode, reportFile, format string, teams TeamOptions, dry bool) error {
	run := func(out io.Writer, sum *Summary) error {
		switch {
		case teams.enabled():
			if err := migrateTeams(out, dir, node, teams, reportFile, sum); err != nil {
				return fmt.Errorf("migrate %s: %w", dir, err)
			}
			return nil
		case dry:
			return dryRun(out, dir, node, &Processor{Report: &Report{}, Meshes: teams.meshes}, sum)
		}
		return migrateDir(out, dir, node, reportFile, teams.meshes, sum)
	}
	if format != output.JSON {
		return run(out, nil)
	}
	sum := &Summary{Files: []string{}, DryRun: dry}
	sum.From, _ = node.GetString("spec.from")
	sum.To, _ = node.GetString("spec.to")
	err := run(io.Discard, sum)
	if err != nil {
		sum.Error = err.Error()
	}
	if werr := output.Write(out, sum); werr != nil && err == nil {
		err = werr
	}
	return err
}

// migrateDir runs the migration over dir, printing text to out and filling
// sum when not nil.
func migrateDir(out io.Writer, dir string, node *yaml.RNode, reportFile string, meshes []*yaml.RNode, sum *Summary) error {
	s := &snapshot{Processor: &Processor{Report: &Report{}, Meshes: meshes}, dir: dir}
	results, err := disk.RunCommand("migrate", dir, s, node)
	printResults(out, results)
	rep := s.Report
	if sum != nil {
		sum.From, _ = node.GetString("spec.from")
		sum.To, _ = node.GetString("spec.to")
		sum.Results = output.Results(results)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", dir, err)
	}
	for _, f := range rep.ChangedFiles() {
		after, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return fmt.Errorf("migrate %s: %s: %w", dir, f, err)
		}
		if !sameBesidesLabels(s.before[f], after) {
			msg := fmt.Sprintf("%s: the YAML writer also reformatted this file (indentation, document separators, or a comment above a leading ---): review its diff", f)
			rep.Notes = append(rep.Notes, Note{Severity: framework.Warning, Message: msg})
			if sum != nil {
				sum.Results = append(sum.Results, output.Result{Severity: string(framework.Warning), Message: msg, File: f})
			}
			fmt.Fprintf(out, "%-7s %s  %s\n", framework.Warning, f, "the YAML writer also reformatted this file (indentation, document separators, or a comment above a leading ---): review its diff")
		}
	}
	nsMoved, wMoved := rep.Moved()
	if sum != nil {
		sum.NamespacesMoved, sum.WorkloadsMoved = nsMoved, wMoved
		sum.Files = append(sum.Files, rep.ChangedFiles()...)
		sum.Report = reportFile
	}
	fmt.Fprintf(out, "moved %d namespaces and %d workloads from %s to %s in %d files\n", nsMoved, wMoved, rep.From, rep.To, len(rep.ChangedFiles()))
	if reportFile != "" {
		if err := os.WriteFile(reportFile, rep.Markdown(), 0o644); err != nil {
			return fmt.Errorf("migrate %s: --report: %w", dir, err)
		}
		fmt.Fprintf(out, "wrote %s\n", reportFile)
	}
	return nil
}

// dryRun runs the migration over dir's objects in memory, under a shared
// lock: it prints the results, what would move and the report, and writes
// nothing.
func dryRun(out io.Writer, dir string, node *yaml.RNode, p *Processor, sum *Summary) error {
	lock, err := disk.LockTree(dir, false)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", dir, err)
	}
	defer lock.Unlock()
	t, err := disk.Read(dir)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", dir, err)
	}
	results, _, _, err := t.Plan(p, node)
	printResults(out, results)
	if sum != nil {
		sum.Results = output.Results(results)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", dir, err)
	}
	rep := p.Report
	nsMoved, wMoved := rep.Moved()
	md, files := rep.Markdown(), rep.ChangedFiles()
	if sum != nil {
		sum.NamespacesMoved, sum.WorkloadsMoved = nsMoved, wMoved
		sum.Files = append(sum.Files, files...)
		sum.Markdown = string(md)
	}
	fmt.Fprintf(out, "would move %d namespaces and %d workloads from %s to %s in %d files (--dry-run: nothing written)\n\n", nsMoved, wMoved, rep.From, rep.To, len(files))
	_, err = out.Write(md)
	return err
}

func printResults(out io.Writer, results framework.Results) {
	for _, r := range results {
		file := "-"
		if r.File != nil && r.File.Path != "" {
			file = r.File.Path
		}
		sev := r.Severity
		if sev == "" {
			sev = framework.Info
		}
		fmt.Fprintf(out, "%-7s %s  %s\n", sev, file, r.Message)
	}
}

// sameBesidesLabels reports whether two texts differ only in lines that
// carry the labels a migration changes.
func sameBesidesLabels(a, b []byte) bool {
	next := func(t []byte) ([]byte, []byte, bool) {
		for len(t) > 0 {
			line, rest, _ := bytes.Cut(t, []byte("\n"))
			t = rest
			if !bytes.Contains(line, []byte(api.RevisionLabel)) && !bytes.Contains(line, []byte(api.InjectionLabel)) {
				return line, t, true
			}
		}
		return nil, nil, false
	}
	for {
		x, restA, okA := next(a)
		y, restB, okB := next(b)
		if okA != okB || !bytes.Equal(x, y) {
			return false
		}
		if !okA {
			return true
		}
		a, b = restA, restB
	}
}
