package patch

import (
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

// Import turns the text of a `git diff` or `git format-patch` into a GitPatch
// object for revision rev, named name (derived from the first target file when
// empty: <kind>-<name> of generated/<kind>/<name>.yaml).
//
// The text is kept whole (a format-patch mail keeps its header and message)
// with these normalisations, none of which changes what the patch does:
//   - CRLF line breaks become LF;
//   - file paths become relative to the revision folder with git's a/ b/
//     prefixes: whatever stands before <revision>/generated/ is dropped
//     (git diff run at the repository or tree root), and a diff made with
//     --no-prefix gets the prefixes;
//   - an empty context line (" ") loses its space, and the trailing blanks of
//     lines outside hunks (the format-patch signature "-- ") and blank lines
//     at the end are dropped, so spec.diff can be a literal block scalar. A hunk line ending in a blank
//     cannot be one: spec.diff is then written double-quoted.
//
// The object is checked as the pipeline checks it (Parse, and Targets
// against the revision folder), so a patch that could never apply fails here.
func Import(r io.Reader, rev, name string) (*yaml.RNode, error) {
	if revision.ValidateLabel(rev) != nil {
		return nil, fmt.Errorf("revision %q must be a revision name such as \"1-31\"", rev)
	}
	if name != "" && !validName(name) {
		return nil, fmt.Errorf("name %q must be a DNS-1123 subdomain (lower-case letters, digits, dashes and dots)", name)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read the diff: %w", err)
	}
	diff := normalize(string(b))
	if strings.TrimSpace(diff) == "" {
		return nil, fmt.Errorf("the diff must not be empty: make it with git diff or git format-patch")
	}
	diff = rewrite(diff, rev)

	files, err := parseDiff(diff)
	if err != nil {
		return nil, fmt.Errorf("%s for revision %q: %w", Kind, rev, err)
	}
	if name == "" {
		name = nameFromTarget(targetOf(files[0].NewName, rev), rev)
	}
	node, err := newGitPatch(name, diff)
	if err != nil {
		return nil, err
	}
	p, err := Parse(node)
	if err != nil {
		return nil, err
	}
	if _, err := p.Targets(rev); err != nil {
		return nil, err
	}
	return node, nil
}

func newGitPatch(name, diff string) (*yaml.RNode, error) {
	node := yaml.NewMapRNode(nil)
	d := yaml.NewStringRNode(diff)
	d.YNode().Style = yaml.LiteralStyle
	err := node.PipeE(yaml.SetField("apiVersion", yaml.NewStringRNode(api.APIVersion)))
	if err == nil {
		err = node.PipeE(yaml.SetField("kind", yaml.NewStringRNode(Kind)))
	}
	if err == nil {
		err = node.SetName(name)
	}
	if err == nil {
		err = node.PipeE(yaml.SetAnnotation(localConfig, "true"))
	}
	if err == nil {
		err = node.PipeE(yaml.LookupCreate(yaml.MappingNode, "spec"), yaml.SetField("diff", d))
	}
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", Kind, name, err)
	}
	return node, nil
}

// rewrite applies Import's normalisations to a diff ending in a line break.
func rewrite(diff, revision string) string {
	lines := scanLines(diff)
	// Blank lines after the last hunk (the end of a format-patch mail) would
	// make the block scalar |+.
	for len(lines) > 0 && lines[len(lines)-1].kind == textLine && strings.TrimSpace(lines[len(lines)-1].text) == "" {
		lines = lines[:len(lines)-1]
	}
	var b strings.Builder
	for _, l := range lines {
		t := l.text
		switch l.kind {
		case gitHeader:
			if x, y, ok := headerPaths(t); ok && !strings.HasPrefix(x, "/") && !strings.HasPrefix(y, "/") {
				t = "diff --git a/" + normalizePath(x, revision) + " b/" + normalizePath(y, revision)
			}
		case oldName, newName:
			// An absolute or quoted path is left for Parse to refuse.
			if p := namePath(t); !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, `"`) {
				t = t[:len("--- ")] + map[lineKind]string{oldName: "a/", newName: "b/"}[l.kind] + normalizePath(p, revision)
			}
		case hunkLine:
			if t == " " {
				t = ""
			}
		case textLine:
			t = strings.TrimRight(t, " \t")
		}
		b.WriteString(t)
		b.WriteByte('\n')
	}
	return b.String()
}

// normalizePath makes a path of a diff header relative to the revision
// folder, without git's prefix.
func normalizePath(p, revision string) string {
	marker := revision + "/" + GeneratedDir + "/"
	switch {
	case strings.HasPrefix(p, marker):
		return p[len(revision)+1:]
	case strings.Contains(p, "/"+marker):
		return p[strings.Index(p, "/"+marker)+len(revision)+2:]
	case strings.HasPrefix(p, GeneratedDir+"/"):
		return p // --no-prefix, run in the revision folder
	case hasGitPrefix(p):
		return p[2:]
	}
	return p
}

// nameFromTarget names a patch after the file it modifies:
// <revision>/generated/<kind>[/<namespace>]/<name>.yaml -> <kind>[-<namespace>]-<name>.
func nameFromTarget(target, revision string) string {
	rel := strings.TrimPrefix(target, revision+"/"+GeneratedDir+"/")
	rel = strings.TrimSuffix(strings.TrimSuffix(rel, ".yaml"), ".yml")
	return sanitizeName(rel)
}

var (
	notNameChars   = regexp.MustCompile(`[^a-z0-9]+`)
	formatPatchSeq = regexp.MustCompile(`^[0-9]{4}-`)
)

// sanitizeName turns free text into a DNS-1123 label-like name: lower case,
// every run of other characters a single dash.
func sanitizeName(s string) string {
	s = notNameChars.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-")
	if len(s) > 253 {
		s = strings.TrimRight(s[:253], "-")
	}
	return s
}

// NameFromFile names a patch after its .patch file: the base name without
// its extension and without the sequence number git format-patch puts in
// front ("0001-"). It returns "" when nothing usable is left.
func NameFromFile(file string) string {
	base := path.Base(strings.ReplaceAll(file, `\`, "/"))
	for _, ext := range []string{".patch", ".diff"} {
		base = strings.TrimSuffix(base, ext)
	}
	return sanitizeName(formatPatchSeq.ReplaceAllString(base, ""))
}

// ImportCommand is `patch import FILE.patch --revision R [--name N]`: it
// prints the GitPatch object made from a git diff ("-" reads stdin), ready
// to be saved as R/patches/N.yaml.
func ImportCommand() *cobra.Command {
	var (
		revision, name string
		shared         bool
	)
	cmd := &cobra.Command{
		Use:   "import FILE.patch --revision R [--name N]",
		Short: "Print a GitPatch object made from a git diff",
		Long: `Print a GitPatch object made from the output of git diff or git format-patch
("-" reads it from stdin). Save it as <revision>/patches/<name>.yaml; the next run
applies it to the revision's generated files.

Paths in the diff may be relative to the revision folder, the tree root or the
repository root: they are rewritten relative to the revision folder. The patch
may only modify existing files under <revision>/generated/.

The name defaults to the file's base name (without .patch and git
format-patch's "0001-"), or, reading stdin, to <kind>-<name> of the first file
the patch modifies.`,
		Example: `  vi 1-31/generated/validatingwebhookconfiguration/istio-validator-1-31-istio-system.yaml
  git diff > failure-validator.patch
  istio-gitops patch import failure-validator.patch --revision 1-31 > 1-31/patches/failure-validator.yaml
  git checkout 1-31/generated && istio-gitops run .`,
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, n := cmd.InOrStdin(), name
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
				if n == "" {
					n = NameFromFile(args[0])
				}
			}
			node, err := Import(in, revision, n)
			if err != nil {
				return err
			}
			if err := checkNotRendered(node, revision, os.ReadFile); err != nil {
				return err
			}
			if shared {
				// The token a shared patch's copies are rewritten from.
				if err := node.PipeE(yaml.Lookup("spec"), yaml.SetField("revision", yaml.NewStringRNode(revision))); err != nil {
					return err
				}
			}
			b, err := layout.FileBytes(node)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&revision, "revision", "", "the revision whose generated files the patch modifies, such as 1-31 (required)")
	cmd.Flags().StringVar(&name, "name", "", "metadata.name of the GitPatch (default: the file's base name)")
	cmd.Flags().BoolVar(&shared, "shared", false, "write spec.revision, for a patch kept once for every cluster (the folders of spec.patchesFrom): its revision token is rewritten for each revision it applies to")
	_ = cmd.MarkFlagRequired("revision")
	return cmd
}

// checkNotRendered refuses a patch of a file that the run renders from the
// config, when the file can be read where the command runs (the tree's
// root, as the diff's paths are): such a patch would never apply.
func checkNotRendered(node *yaml.RNode, rev string, read func(string) ([]byte, error)) error {
	p, err := Parse(node)
	if err != nil {
		return err
	}
	targets, err := p.Targets(rev)
	if err != nil {
		return err
	}
	for _, t := range targets {
		b, err := read(t)
		if err != nil {
			continue
		}
		if field := RenderedFrom(b); field != "" {
			return fmt.Errorf("%s: file %q is rendered from the config (%s), not generated from istioctl output, and every run renders it again: change %s instead (or patch the file of the revision's generated/ it is rendered from)",
				p.describe(), t, field, field)
		}
	}
	return nil
}
