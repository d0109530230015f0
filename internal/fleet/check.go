package fleet

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/history"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
)

// Finding is one problem `fleet check` found.
type Finding struct {
	// Severity is "error" or "warning".
	Severity string `json:"severity"`
	// File is the config's file, relative to the repository's root in a
	// repository (as GitHub's annotations want it), else to the folder
	// given; Line the line of Field in it, when known.
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// TreeCheck is what `fleet check` did for one tree.
type TreeCheck struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Checked is false for a tree left alone: not changed since the base.
	Checked  bool      `json:"checked"`
	Findings []Finding `json:"findings"`
}

// CheckReport is what `fleet check` says.
type CheckReport struct {
	// Base is the commit changes are counted from (--base), if given.
	Base  string      `json:"base,omitempty"`
	Trees []TreeCheck `json:"trees"`
	Error string      `json:"error,omitempty"`
}

// Failed reports whether any finding is an error.
func (r *CheckReport) Failed() bool {
	for _, t := range r.Trees {
		for _, f := range t.Findings {
			if f.Severity == "error" {
				return true
			}
		}
	}
	return false
}

// Check checks the trees under root for CI: every tree, or with base the
// trees whose folder changed between base and HEAD (or that HEAD does not
// hold yet), each against its records and its order, the step being
// judged from base (from HEAD without it).
func Check(root, base string, clock time.Time) (*CheckReport, error) {
	clusters, unlock, err := findLocked(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := &CheckReport{Base: base, Trees: []TreeCheck{}}
	repo, err := history.Open(root)
	if errors.Is(err, history.ErrNotRepository) {
		if base != "" {
			return nil, fmt.Errorf("--base %s: %w", base, err)
		}
		repo, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if repo != nil {
		defer repo.Close()
	}
	changed := func(*Cluster) (bool, error) { return true, nil }
	if base != "" {
		b, err := repo.Resolve(base)
		if err != nil {
			return nil, err
		}
		head, err := repo.Head()
		if err != nil {
			return nil, err
		}
		changed = func(c *Cluster) (bool, error) {
			rel, err := repo.Rel(c.Dir)
			if err != nil {
				return false, err
			}
			was, _, err := repo.Lookup(b.Tree, rel)
			if err != nil {
				return false, err
			}
			is, _, err := repo.Lookup(head.Tree, rel)
			return err != nil || is.IsZero() || was != is, err
		}
	}
	for _, c := range clusters {
		tc := TreeCheck{Name: c.Config.Metadata.Name, Path: c.Path, Findings: []Finding{}}
		if tc.Checked, err = changed(c); err != nil {
			return nil, err
		}
		if tc.Checked {
			tc.Findings = checkTree(c, repo, base, clock)
		}
		rep.Trees = append(rep.Trees, tc)
	}
	return rep, nil
}

// checkTree checks one tree: its records, then its order.
func checkTree(c *Cluster, repo *history.Repo, base string, clock time.Time) []Finding {
	file := c.File()
	if repo != nil {
		if rel, err := repo.Rel(path.Join(c.Dir, c.ConfigFile)); err == nil {
			file = rel
		}
	}
	var out []Finding
	add := func(sev, field, msg string) {
		out = append(out, Finding{Severity: sev, File: file, Line: lineOf(c.Node, field), Field: field, Message: msg})
	}
	if _, err := pipeline.CheckRecords(c.Config, c.Files); err != nil {
		add("error", "", err.Error())
		return out
	}
	if c.Config.Spec.Promotion == nil {
		return out
	}
	v, err := Judge(Step{Dir: c.Dir, Name: c.Path, File: c.File(), Config: c.Config,
		Now: State(c.Config, c.Root, c.Files), Recorded: Recorded(c.Config, c.Root, c.Files), Base: base, Clock: clock})
	if err != nil {
		add("error", "spec.promotion", err.Error())
		return out
	}
	for _, n := range v.Notes {
		add("warning", "spec.promotion.override", n)
	}
	if v.Err != nil {
		add("error", "spec.promotion", v.Err.Error())
	}
	for _, p := range v.Refused {
		if v.Overridden {
			add("warning", p.Field, "let through by spec.promotion.override: "+p.Message)
		} else {
			add("error", p.Field, p.Message)
		}
	}
	return out
}

// lineOf is the line of a config field ("spec.tags.prod-stable",
// "spec.revisions[1]") in its file, 0 when not found.
func lineOf(node *yaml.RNode, field string) int {
	if node == nil || field == "" {
		return 0
	}
	cur := node.YNode()
	for cur != nil && cur.Kind == yaml.DocumentNode && len(cur.Content) == 1 {
		cur = cur.Content[0]
	}
	line := 0
	rest := field
	for rest != "" && cur != nil {
		var seg string
		seg, rest, _ = strings.Cut(rest, ".")
		// A tag or host name may hold dots: take the longest key that
		// is there.
		for cur.Kind == yaml.MappingNode && rest != "" && keyIndex(cur, seg) < 0 {
			var more string
			more, rest, _ = strings.Cut(rest, ".")
			seg += "." + more
		}
		name, idx := seg, -1
		if i := strings.Index(seg, "["); i > 0 && strings.HasSuffix(seg, "]") {
			fmt.Sscanf(seg[i+1:len(seg)-1], "%d", &idx)
			name = seg[:i]
		}
		k := keyIndex(cur, name)
		if k < 0 {
			return line
		}
		line = cur.Content[k].Line
		cur = cur.Content[k+1]
		if idx >= 0 {
			if cur.Kind != yaml.SequenceNode || idx >= len(cur.Content) {
				return line
			}
			cur = cur.Content[idx]
			line = cur.Line
		}
	}
	return line
}

func keyIndex(m *yaml.Node, key string) int {
	if m.Kind != yaml.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// Annotations writes each finding as a GitHub Actions workflow command
// (::error file=...,line=...,title=...::message), then a line per tree.
func (r *CheckReport) Annotations(w io.Writer) {
	for _, t := range r.Trees {
		for _, f := range t.Findings {
			props := "file=" + escapeProperty(f.File)
			if f.Line > 0 {
				props += fmt.Sprintf(",line=%d", f.Line)
			}
			title := "istio-gitops"
			if f.Field != "" {
				title += " " + f.Field
			}
			props += ",title=" + escapeProperty(title)
			fmt.Fprintf(w, "::%s %s::%s\n", f.Severity, props, escapeData(f.Message))
		}
	}
	for _, t := range r.Trees {
		verdict := "ok"
		switch {
		case !t.Checked:
			verdict = "unchanged since " + r.Base
		case len(t.Findings) > 0:
			errs, warns := 0, 0
			for _, f := range t.Findings {
				if f.Severity == "error" {
					errs++
				} else {
					warns++
				}
			}
			verdict = fmt.Sprintf("%d error(s), %d warning(s)", errs, warns)
		}
		fmt.Fprintf(w, "%s (%s): %s\n", t.Path, t.Name, verdict)
	}
}

// escapeData and escapeProperty escape a workflow command's message and
// properties as GitHub's toolkit does.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
