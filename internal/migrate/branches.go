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
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	k8syaml "sigs.k8s.io/yaml"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/gitrepo"
	"github.com/istio-gitops/istio-gitops/internal/output"
	"github.com/istio-gitops/istio-gitops/internal/status"
)

// TeamOptions are the flags that cut a migration into one change per
// team: --branches, --branch-prefix, --deadline, --patches.
type TeamOptions struct {
	// Branches makes one local branch per team, off HEAD.
	Branches bool
	// Prefix starts each branch's name (default istio-<to>/).
	Prefix string
	// Deadline, when set, is said in each pull request.
	Deadline string
	// Patches, when set, is a folder to write one patch file per team to.
	Patches string
	// meshes are the IstioGitOps configs of --tree (see Processor.Meshes).
	meshes []*yaml.RNode
}

func (o TeamOptions) enabled() bool { return o.Branches || o.Patches != "" }

// Trailers end each team's commit message; the first marks a branch as
// this command's, which a re-run may move.
const (
	TrailerMigration = "Istio-GitOps-Migration"
	TrailerTeam      = "Istio-GitOps-Team"
)

// Branch is one team's change, as `migrate --output json` prints it.
type Branch struct {
	Team string `json:"team"`
	// Name is the branch's; Action is created, updated or unchanged
	// (what the run did to the branch, or would have with --branches).
	Name   string `json:"name"`
	Action string `json:"action"`
	Commit string `json:"commit"`
	// Files are the files the commit changes, relative to the
	// repository's root.
	Files []string `json:"files"`
	// Patch is the patch file written (--patches).
	Patch string `json:"patch,omitempty"`
	// Push and PullRequest are the commands that open the pull request.
	Push        string `json:"push,omitempty"`
	PullRequest string `json:"pullRequest,omitempty"`
}

// teamChange is one team's planned commit.
type teamChange struct {
	team   string
	report *Report
	// files are the new contents by path from the repository's root.
	files  map[string][]byte
	commit *object.Commit
	// was is the branch's commit before the run (nil: no branch yet).
	was *object.Commit
	out Branch
}

// migrateTeams runs the migration over the version of dir that HEAD of
// its Git repository holds, once per team, and makes each team's change a
// commit off HEAD: a branch (--branches) and a patch file (--patches).
// The working tree, the index and the current branch are left alone;
// nothing is written when anything fails.
func migrateTeams(out io.Writer, dir string, node *yaml.RNode, opts TeamOptions, reportFile string, sum *Summary) error {
	// Two commands making the same teams' branches would race on the refs.
	lock, err := disk.LockTree(dir, true)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	repo, rel, err := gitrepo.Open(dir)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "istio-gitops-migrate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Messages name dir, not the copy.
	hide := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), tmp, filepath.Clean(dir)))
	}
	if err := repo.Extract(rel, tmp); err != nil {
		return err
	}
	tree, err := disk.Read(tmp)
	if err != nil {
		return hide(err)
	}
	// The run for every team of spec.owners says what moves, and who owns it.
	all := &Processor{Report: &Report{}, Meshes: opts.meshes}
	results, writes, _, err := tree.Plan(all, node)
	printResults(out, results)
	if sum != nil {
		sum.Results = output.Results(results)
	}
	if err != nil {
		return hide(err)
	}
	rep := all.Report
	teams := rep.MovedOwners()
	if reportFile != "" {
		if err := os.WriteFile(reportFile, rep.Markdown(), 0o644); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if len(writes) == 0 {
		fmt.Fprintf(out, "nothing moves from %s to %s in %s at %s: no branch made\n", rep.From, rep.To, dir, short(repo.Head().Hash.String()))
		return nil
	}

	changes, err := planTeams(tree, node, repo, rel, teams, opts.meshes)
	if err != nil {
		return hide(err)
	}
	var touched []string
	owners := map[string][]string{}
	for _, c := range changes {
		for p := range c.files {
			touched = append(touched, p)
			owners[p] = append(owners[p], c.team)
		}
	}
	if err := repo.CheckClean(touched); err != nil {
		return fmt.Errorf("the working tree must not have changes to the files the teams' commits change: %w", err)
	}
	for _, p := range config.SortedKeys(owners) {
		if len(owners[p]) > 1 {
			fmt.Fprintf(out, "%-7s %s  holds namespaces of teams %s: each of their pull requests changes it\n", "warning", p, strings.Join(owners[p], ", "))
		}
	}
	who, err := repo.Identity()
	if err != nil {
		return err
	}
	versions := revisionVersions(tree)
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "istio-" + rep.To + "/"
	}
	for _, c := range changes {
		c.out = Branch{Team: c.team, Name: prefix + slug(c.team), Files: config.SortedKeys(c.files)}
		if err := gitrepo.CheckBranchName(c.out.Name); err != nil {
			return fmt.Errorf("--branch-prefix: the branch of team %q: %w", c.team, err)
		}
		if c.out.Name == repo.HeadBranch() {
			return fmt.Errorf("branch %q is checked out: a team's branch must not be the current branch (switch to another, or choose --branch-prefix)", c.out.Name)
		}
		msg := commitMessage(c.team, c.report, versions, opts.Deadline)
		if c.commit, err = repo.Commit(c.files, msg, who); err != nil {
			return fmt.Errorf("team %q: %w", c.team, err)
		}
		c.out.Commit = c.commit.Hash.String()
		if c.was, err = repo.Branch(c.out.Name); err != nil {
			return err
		}
		switch {
		case c.was == nil:
			c.out.Action = "created"
		case c.was.Hash == c.commit.Hash:
			c.out.Action = "unchanged"
		case !isOurs(c.was):
			return fmt.Errorf("branch %q exists and its last commit %s was not made by migrate --branches (no %s trailer): rename or delete it, or choose another --branch-prefix",
				c.out.Name, short(c.was.Hash.String()), TrailerMigration)
		default:
			c.out.Action = "updated"
		}
		c.out.Push = fmt.Sprintf("git push %s %s", repo.Remote(), c.out.Name)
		c.out.PullRequest = "gh pr create --fill --head " + c.out.Name
		if base := repo.HeadBranch(); base != "" {
			c.out.PullRequest = fmt.Sprintf("gh pr create --fill --base %s --head %s", base, c.out.Name)
		}
	}
	patches := map[*teamChange][]byte{}
	if opts.Patches != "" {
		for _, c := range changes {
			b, err := repo.FormatPatch(c.commit)
			if err != nil {
				return fmt.Errorf("team %q: %w", c.team, err)
			}
			patches[c] = b
			c.out.Patch = filepath.Join(opts.Patches, slug(c.team)+".patch")
		}
	}

	// Every check passed: write.
	if opts.Branches {
		for _, c := range changes {
			if c.out.Action == "unchanged" {
				continue
			}
			if err := repo.SetBranch(c.out.Name, c.commit, c.was); err != nil {
				return err
			}
		}
	}
	if opts.Patches != "" {
		if err := os.MkdirAll(opts.Patches, 0o755); err != nil {
			return fmt.Errorf("--patches: %w", err)
		}
		for _, c := range changes {
			if err := writeIfChanged(c.out.Patch, patches[c]); err != nil {
				return fmt.Errorf("--patches: %w", err)
			}
		}
	}
	for _, c := range changes {
		what := "branch " + c.out.Name
		if !opts.Branches {
			what = "patch " + c.out.Patch
		}
		fmt.Fprintf(out, "%s: %s, team %s, %d files (%s), commit %s\n", what, c.out.Action, c.team, len(c.out.Files), strings.Join(c.out.Files, ", "), short(c.out.Commit))
		if opts.Branches {
			fmt.Fprintf(out, "  %s\n  %s\n", c.out.Push, c.out.PullRequest)
			if opts.Patches != "" {
				fmt.Fprintf(out, "  patch: %s\n", c.out.Patch)
			}
		} else {
			fmt.Fprintf(out, "  git am %s\n", c.out.Patch)
		}
		if sum != nil {
			sum.Branches = append(sum.Branches, c.out)
		}
	}
	if sum != nil {
		ns, wl := rep.Moved()
		sum.NamespacesMoved, sum.WorkloadsMoved = ns, wl
		for _, c := range changes {
			sum.Files = append(sum.Files, c.out.Files...)
		}
		slices.Sort(sum.Files)
		sum.Files = slices.Compact(sum.Files)
		sum.Report = reportFile
	}
	return nil
}

// planTeams runs the migration once per team, each run over the files as
// HEAD has them, so that each team's commit changes only what moves for
// that team.
func planTeams(tree *disk.Tree, node *yaml.RNode, repo *gitrepo.Repo, rel string, teams []string, meshes []*yaml.RNode) ([]*teamChange, error) {
	var out []*teamChange
	for _, team := range teams {
		n, err := withOwners(node, team)
		if err != nil {
			return nil, err
		}
		p := &Processor{Report: &Report{}, Meshes: meshes}
		_, writes, deletes, err := tree.Plan(p, n)
		if err != nil {
			return nil, fmt.Errorf("team %q: %w", team, err)
		}
		if len(deletes) > 0 {
			return nil, fmt.Errorf("team %q: the migration must not delete files (%q)", team, deletes)
		}
		if len(writes) == 0 {
			continue
		}
		c := &teamChange{team: team, report: p.Report, files: map[string][]byte{}}
		for _, w := range writes {
			c.files[path.Join(rel, w.Path)] = w.Data
		}
		out = append(out, c)
	}
	return out, nil
}

// withOwners is the RevisionMigration node for one team.
func withOwners(node *yaml.RNode, team string) (*yaml.RNode, error) {
	m, err := Load(node)
	if err != nil {
		return nil, err
	}
	m.Spec.Owners = []string{team}
	b, err := k8syaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	return yaml.Parse(string(b))
}

// commitMessage is a team's pull request: a title, what moves, the team's
// rows of the report, the deadline, how to roll back, and the trailers.
func commitMessage(team string, r *Report, versions map[string]string, deadline string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "istio: move the namespaces of team %s from %s to %s\n\n", team, r.From, r.To)
	fmt.Fprintf(&b, "This moves the namespaces of team `%s` off Istio revision %s to %s: each namespace listed as moved "+
		"below now carries %s. Its pods keep their %s sidecar until they are restarted: restart them when it suits you "+
		"(`kubectl rollout restart deployment -n <namespace>`), then check that they run the new proxy (`istioctl proxy-status`).\n",
		team, revisionText(r.From, versions), revisionText(r.To, versions), code(api.RevisionLabel+": "+r.To), code(r.From))
	if deadline != "" {
		fmt.Fprintf(&b, "\nDeadline: %s. Please merge this before then: the platform team plans to retire %s after it.\n", deadline, code(r.From))
	}
	var rows bytes.Buffer
	r.group(&rows, team)
	b.Write(rows.Bytes())
	fmt.Fprintf(&b, "\n## How to roll back\n\nBefore it is merged, close this pull request. Once merged, revert it "+
		"(`git revert` of its commit, or GitHub's Revert button) and merge the revert: the namespaces select %s again, "+
		"and their pods go back to its sidecar when they are restarted.\n", code(r.From))
	fmt.Fprintf(&b, "\n%s: %s -> %s\n%s: %s\n", TrailerMigration, r.From, r.To, TrailerTeam, team)
	return b.String()
}

// revisionText is a revision or tag with what it is known to run.
func revisionText(rev string, versions map[string]string) string {
	if v := versions[rev]; v != "" {
		return fmt.Sprintf("%s (%s)", code(rev), v)
	}
	return code(rev)
}

// revisionVersions are the Istio versions of the revisions and tags of the
// IstioGitOps configs in the tree (from their records, or the config),
// such as "Istio 1.31.0" or "revision 1-31, Istio 1.31.0" for a tag.
func revisionVersions(tree *disk.Tree) map[string]string {
	out := map[string]string{}
	items, err := tree.Objects()
	if err != nil {
		return out
	}
	for _, it := range items {
		if it.GetApiVersion() != api.APIVersion || it.GetKind() != config.Kind {
			continue
		}
		st, err := status.Of(it, items)
		if err != nil {
			continue
		}
		for _, r := range st.Revisions {
			if _, seen := out[r.Name]; !seen && r.Version != "" {
				out[r.Name] = "Istio " + r.Version
			}
		}
		for _, t := range st.Tags {
			if _, seen := out[t.Name]; !seen {
				out[t.Name] = "revision " + t.Revision
				if v := out[t.Revision]; v != "" {
					out[t.Name] += ", " + v
				}
			}
		}
	}
	return out
}

// isOurs reports whether a commit was made by migrate --branches.
func isOurs(c *object.Commit) bool {
	for _, l := range strings.Split(c.Message, "\n") {
		if strings.HasPrefix(l, TrailerMigration+": ") {
			return true
		}
	}
	return false
}

// slug is a team's name as a branch or file name segment.
func slug(team string) string {
	var b strings.Builder
	for _, r := range team {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), ".")
	if s == "" {
		s = "team"
	}
	return s
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// writeIfChanged writes data to p unless p holds it already.
func writeIfChanged(p string, data []byte) error {
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(p, data, 0o644)
}

// checkDeadline reads --deadline: a date or a time.
func checkDeadline(d string) error {
	if d == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, d); err == nil {
		return nil
	}
	if _, err := time.Parse(time.RFC3339, d); err == nil {
		return nil
	}
	return fmt.Errorf("--deadline: %q must be a date (2026-12-31) or a time (2026-12-31T18:00:00Z)", d)
}
