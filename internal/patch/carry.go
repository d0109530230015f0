package patch

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/layout"
)

// CarryForward returns a copy of a GitPatch for revision to, made from one
// of revision from: the revision token is replaced in spec.diff (paths and
// content alike, "istiod-1-30" -> "istiod-1-31") and in metadata.name, and
// the copy is annotated with api.CarriedFromAnnotation: <from>/<name>. Its
// file annotations are cleared: the pipeline places it at
// <to>/patches/<name>.yaml. Whether it applies is only known against the new
// revision's files.
func CarryForward(node *yaml.RNode, from, to string) (*yaml.RNode, error) {
	p, err := Parse(node)
	if err != nil {
		return nil, err
	}
	if from == "" || to == "" || from == to {
		return nil, fmt.Errorf("%s: carrying forward from %q to %q: the revisions must be two different names", p.describe(), from, to)
	}
	c, err := p.Rewrite(from, to)
	if err != nil {
		return nil, err
	}
	if err := layout.ClearReaderAnnotations(c); err != nil {
		return nil, fmt.Errorf("%s: %w", p.describe(), err)
	}
	if err := c.PipeE(yaml.SetAnnotation(api.CarriedFromAnnotation, from+"/"+p.Name)); err != nil {
		return nil, fmt.Errorf("%s: %w", p.describe(), err)
	}
	if _, err := Parse(c); err != nil {
		return nil, fmt.Errorf("carrying %s forward to %q: %w", p.describe(), to, err)
	}
	return c, nil
}

// Rewrite returns a copy of the GitPatch, made against revision from, for
// revision to: the revision token is replaced in spec.diff (paths and
// content alike), in metadata.name and in spec.revision when set.
func (p *Patch) Rewrite(from, to string) (*yaml.RNode, error) {
	c := p.Node.Copy()
	diff, err := c.Pipe(yaml.Lookup("spec", "diff"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.describe(), err)
	}
	// Set the value in place, so the block style the user sees is kept.
	diff.YNode().Value = ReplaceRevision(p.Diff, from, to)
	if rev, err := c.Pipe(yaml.Lookup("spec", "revision")); err == nil && rev != nil {
		rev.YNode().Value = to
	}
	if err := c.SetName(ReplaceRevision(p.Name, from, to)); err != nil {
		return nil, fmt.Errorf("%s: %w", p.describe(), err)
	}
	return c, nil
}

// ReplaceRevision replaces revision from by to in s wherever it stands as a
// token: not preceded or followed by a letter or digit. So "istiod-1-30",
// "1-30/generated" and "istio.io/rev: 1-30" change, "1-300" and "11-30" do
// not.
func ReplaceRevision(s, from, to string) string {
	if from == "" {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, from)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(from)
		if (i > 0 && isAlnum(s[i-1])) || (end < len(s) && isAlnum(s[end])) {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(to)
		s = s[end:]
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
