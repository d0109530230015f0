package fleet

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/istio-gitops/istio-gitops/internal/promotion"
)

// Columns of a revision row that show pointers: the column, and which
// fields it shows: of returns "*" for a field of its own, the key for one
// of many (a tag's name, a host), false for another column's.
var pointerColumns = []struct {
	title, markdown string
	of              func(field string) (string, bool)
}{
	{"ACTIVE", "active", is(promotion.ActiveField)},
	{"LIVE", "live gateways", is(promotion.LiveField)},
	{"HOSTS", "hosts", promotion.HostOf},
	{"NODES", "node agents", nodeAgent},
	{"TAGS", "tags", func(f string) (string, bool) { return strings.CutPrefix(f, promotion.TagsField) }},
}

// nodeAgent names the node agent a field moves.
func nodeAgent(field string) (string, bool) {
	switch field {
	case promotion.CNIField:
		return "istio-cni", true
	case promotion.ZtunnelField:
		return "ztunnel", true
	}
	return "", false
}

func is(field string) func(string) (string, bool) {
	return func(f string) (string, bool) { return "*", f == field }
}

// cell is what a revision row shows of the pointers of one column: "*"
// and the age for a single field ("* 3d2h"), the keys and ages of many
// (tags: "prod-stable 3d2h").
func (cr *ClusterReport) cell(rev RevisionReport, of func(string) (string, bool), clock time.Time) string {
	var parts []string
	for _, f := range rev.Pointers {
		name, ok := of(f)
		if !ok {
			continue
		}
		p, _ := cr.pointerOf(f)
		if age := p.since(clock); age != "" {
			name += " " + age
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, ", ")
}

// Text writes the report as one table, a row per revision, then what the
// order allows each cluster next.
func (r *Report) Text(w io.Writer) {
	clock := r.Clock
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"CLUSTER", "PATH", "REVISION", "VERSION"}
	for _, c := range pointerColumns {
		head = append(head, c.title)
	}
	head = append(head, "NAMESPACES")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, cr := range r.Clusters {
		for i, rev := range cr.Revisions {
			name, p := "", ""
			if i == 0 {
				name, p = cr.Name, cr.Path
			}
			v := rev.Version
			if !rev.Generated {
				v += " (not generated)"
			}
			row := []string{name, p, rev.Name, orDash(v)}
			for _, c := range pointerColumns {
				row = append(row, orDash(cr.cell(rev, c.of, clock)))
			}
			row = append(row, fmt.Sprint(rev.Namespaces))
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "NEXT")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, cr := range r.Clusters {
		for i, n := range cr.lines() {
			name, order := "", ""
			if i == 0 {
				name, order = cr.Name, orDash(cr.order())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", name, order, n)
		}
	}
	tw.Flush()
	if r.Head != "" {
		fmt.Fprintf(w, "\nAges are counted from the committer time of the oldest commit on HEAD's first-parent history (%s) since which each pointer holds, to %s.\n",
			r.Head[:12], promotion.Stamp(r.Clock))
	}
}

// lines are a cluster's NEXT lines: its problems, then the advice.
func (cr *ClusterReport) lines() []string {
	var out []string
	for _, p := range cr.Problems {
		out = append(out, "problem: "+p)
	}
	for _, n := range cr.Next {
		out = append(out, n.Message)
	}
	return out
}

// Markdown writes the report for a pull request: the table, then the
// NEXT lines as a list.
func (r *Report) Markdown(w io.Writer) {
	clock := r.Clock
	fmt.Fprintln(w, "### Istio fleet")
	fmt.Fprintln(w)
	head := []string{"cluster", "revision", "Istio"}
	for _, c := range pointerColumns {
		head = append(head, c.markdown)
	}
	head = append(head, "namespaces")
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(head)))
	for _, cr := range r.Clusters {
		for i, rev := range cr.Revisions {
			name := ""
			if i == 0 {
				name = fmt.Sprintf("`%s` (`%s`)", cr.Name, cr.Path)
			}
			row := []string{name, "`" + rev.Name + "`", orDash(rev.Version)}
			for _, c := range pointerColumns {
				cell := cr.cell(rev, c.of, clock)
				row = append(row, strings.ReplaceAll(cell, "*", "yes"))
			}
			row = append(row, fmt.Sprint(rev.Namespaces))
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "**Next**")
	fmt.Fprintln(w)
	for _, cr := range r.Clusters {
		order := ""
		if o := cr.order(); o != "" {
			order = " (" + o + ")"
		}
		fmt.Fprintf(w, "- `%s`%s: %s\n", cr.Name, order, strings.Join(cr.lines(), "; "))
	}
	if r.Head != "" {
		fmt.Fprintf(w, "\nAges to %s, from the history of `%s`.\n", promotion.Stamp(r.Clock), r.Head[:12])
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
