package migrate

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// update rewrites the golden files under testdata/migrate/golden.
var update = treetest.Update

const (
	treeDir   = "../../testdata/migrate/tree"
	casesDir  = "../../testdata/migrate/cases"
	meshFile  = "../../testdata/migrate/mesh/istio-gitops.yaml"
	goldenDir = "../../testdata/migrate/golden"
)

// goldenCase is one RevisionMigration run over the test tree.
type goldenCase struct {
	name string
	// mesh copies the mesh's IstioGitOps config into the tree first.
	mesh bool
}

var cases = []goldenCase{
	{name: "all"},
	{name: "mesh-default", mesh: true},
	{name: "payments-workloads"},
	{name: "from-default"},
	{name: "tags", mesh: true},
}

// readTree returns every file under dir by slash path.
func readTree(t testing.TB, dir string) map[string][]byte { return treetest.Files(t, dir) }

func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// input is the test tree, plus the mesh config when asked.
func input(t testing.TB, mesh bool) map[string][]byte {
	t.Helper()
	files := readTree(t, treeDir)
	if mesh {
		b, err := os.ReadFile(meshFile)
		if err != nil {
			t.Fatal(err)
		}
		files["istio-gitops.yaml"] = b
	}
	return files
}

func caseConfig(t testing.TB, name string) *yaml.RNode {
	t.Helper()
	node, err := yaml.ReadFile(filepath.Join(casesDir, name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// runOn writes files to a fresh directory, runs cfg over it as
// `istio-gitops migrate` does, and returns the directory's files after.
func runOn(t testing.TB, files map[string][]byte, cfg *yaml.RNode) (map[string][]byte, *Report, framework.Results) {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	p := &Processor{}
	results, err := disk.Run(dir, p, cfg)
	if err != nil {
		t.Fatalf("RunDir: %v", err)
	}
	return readTree(t, dir), p.Report, results
}

func TestGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, rep, results := runOn(t, input(t, tc.mesh), caseConfig(t, tc.name))
			resultsYAML, err := yaml.Marshal(results)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]byte{"report.md": rep.Markdown(), "results.yaml": resultsYAML}
			for p, b := range out {
				got["tree/"+p] = b
			}
			dir := filepath.Join(goldenDir, tc.name)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				writeTree(t, dir, got)
			}
			want := readTree(t, dir)
			for _, p := range slices.Sorted(maps.Keys(got)) {
				if _, ok := want[p]; !ok {
					t.Errorf("%s: not in golden %s (run go test -update)", p, dir)
				} else if !bytes.Equal(got[p], want[p]) {
					t.Errorf("%s differs from golden %s (run go test -update to accept):\n%s", p, dir, lineDiff(want[p], got[p]))
				}
			}
			for _, p := range slices.Sorted(maps.Keys(want)) {
				if _, ok := got[p]; !ok {
					t.Errorf("%s: in golden %s but not written", p, dir)
				}
			}
		})
	}
}

// lineDiff lists the lines that differ, for failure messages.
func lineDiff(want, got []byte) string { return treetest.LineDiff(got, want) }

// entry finds a namespace's entry in a report.
func entry(t *testing.T, rep *Report, name string) *NamespaceEntry {
	t.Helper()
	for _, e := range rep.Namespaces {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("Namespace %s: not in the report", name)
	return nil
}

// TestDecisions pins the label situations one by one, independently of
// the golden files.
func TestDecisions(t *testing.T) {
	type want struct {
		moved bool
		sev   framework.Severity
		why   string // substring of Why when left alone
	}
	checks := map[string]map[string]want{
		"all": {
			"payments-api":     {moved: true},
			"payments-web":     {moved: true},
			"search-canary":    {moved: true},
			"checkout-cart":    {moved: true}, // owner from the annotation
			"shared-queue":     {moved: true}, // owner from the annotation
			"payments-ledger":  {sev: framework.Warning, why: "istio-injection=enabled overrides"},
			"payments-fraud":   {sev: framework.Warning, why: "istio-injection=enabled overrides"},
			"payments-archive": {sev: framework.Info, why: "istio-injection=disabled is never touched"},
			"search-ml":        {sev: framework.Info, why: "istio-injection=disabled is never touched"},
			"checkout-promo":   {sev: framework.Warning, why: `istio-injection="true" is neither`},
			"shared-dns":       {sev: framework.Warning, why: `istio-injection="false" is neither`},
			"payments-reports": {sev: framework.Info, why: `already on "1-31"`},
			"payments-legacy":  {sev: framework.Info, why: `on "1-29", not "1-30"`},
			"search-crawler":   {sev: framework.Info, why: `on "prod-stable", not "1-30"`},
			"payments-tools":   {sev: framework.Info, why: "not in the mesh"},
			"payments-sandbox": {sev: framework.Info, why: "spec.exclude"},
			"monitoring":       {sev: framework.Warning, why: `no "team" label or annotation`},
			"shared-cache":     {sev: framework.Warning, why: "name different teams"},
			"ingress":          {sev: framework.Warning, why: "istio-injection=enabled overrides"},
		},
		"mesh-default": {
			"payments-ledger": {moved: true},
			"payments-fraud":  {moved: true},
			"identity-tokens": {moved: true},
			"checkout-tax":    {moved: true},
			"ingress":         {sev: framework.Warning, why: "no team owns it"},
			"search-ranking":  {sev: framework.Info, why: `on "default", not "1-30"`},
		},
		"payments-workloads": {
			"payments-api":    {moved: true},
			"payments-dev":    {sev: framework.Info, why: "does not match spec.selector"},
			"search-query":    {sev: framework.Info, why: `team "search" is not in this run`},
			"monitoring":      {sev: framework.Info, why: "spec.owners is set"},
			"payments-ledger": {sev: framework.Warning, why: "istio-injection=enabled overrides"},
		},
		"from-default": {
			"search-ranking":  {moved: true},
			"data-bi":         {moved: true},
			"data-stream":     {moved: true},
			"checkout-tax":    {moved: true},
			"payments-ledger": {sev: framework.Info, why: "not in this run"},
			"data-lake":       {sev: framework.Info, why: `already on "1-31"`},
			"data-warehouse":  {sev: framework.Info, why: `on "1-30", not "default"`},
		},
		"tags": {
			"identity-scim":  {moved: true},
			"search-crawler": {sev: framework.Info, why: "does not match spec.selector"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, rep, _ := runOn(t, input(t, tc.mesh), caseConfig(t, tc.name))
			for _, name := range slices.Sorted(maps.Keys(checks[tc.name])) {
				w := checks[tc.name][name]
				e := entry(t, rep, name)
				if e.Moved != w.moved {
					t.Errorf("%s: moved %v, want %v (why: %s)", name, e.Moved, w.moved, e.Why)
					continue
				}
				if w.moved {
					if e.After != api.RevisionLabel+"="+rep.To {
						t.Errorf("%s: after %q, want %s=%s", name, e.After, api.RevisionLabel, rep.To)
					}
					continue
				}
				if e.Severity != w.sev || !strings.Contains(e.Why, w.why) {
					t.Errorf("%s: %s %q, want %s containing %q", name, e.Severity, e.Why, w.sev, w.why)
				}
			}
		})
	}
}

func TestWorkloads(t *testing.T) {
	find := func(rep *Report, ns, name string) *WorkloadEntry {
		for _, w := range rep.Workloads {
			if w.Namespace == ns && w.Name == name {
				return w
			}
		}
		t.Fatalf("workload %s/%s: not in the report", ns, name)
		return nil
	}
	out, rep, _ := runOn(t, input(t, false), caseConfig(t, "all"))
	if w := find(rep, "identity-audit", "auditor"); w.Moved || w.Severity != framework.Warning || !strings.Contains(w.Note, "stay on \"1-30\"") {
		t.Errorf("auditor in an unlabelled namespace: %+v, want a warning that it stays on 1-30", w)
	}
	if w := find(rep, "payments-api", "api"); w.Moved || w.Severity != framework.Info || !strings.Contains(w.Note, "stale") {
		t.Errorf("api in a labelled namespace: %+v, want info that the label is stale", w)
	}
	if w := find(rep, "legacy", "old"); w.Severity != framework.Warning || !strings.Contains(w.Note, "not in the input") {
		t.Errorf("workload of a namespace not in the input: %+v", w)
	}
	if w := find(rep, "search-frontend", "web"); w.Override != api.InjectLabel+"=false" {
		t.Errorf("inject=false workload: override %q", w.Override)
	}
	if w := find(rep, "data-etl", "loader"); w.Override != api.RevisionLabel+"=1-30, "+api.InjectLabel+"=true (annotation)" {
		t.Errorf("loader: override %q", w.Override)
	}
	for _, w := range rep.Workloads {
		if w.Name == "worker" {
			t.Errorf("Deployment worker has no override and must not be reported")
		}
	}
	if !bytes.Contains(out["apps/identity-audit.yaml"], []byte("istio.io/rev: 1-30")) {
		t.Errorf("workloads: false must leave pod templates alone")
	}

	out, rep, _ = runOn(t, input(t, false), caseConfig(t, "payments-workloads"))
	if w := find(rep, "payments-jobs", "settle"); !w.Moved || w.Field != "spec.jobTemplate.spec.template.metadata" {
		t.Errorf("CronJob settle: %+v, want moved at its job template", w)
	}
	if !bytes.Contains(out["apps/payments-jobs.yaml"], []byte("            istio.io/rev: 1-31\n")) {
		t.Errorf("CronJob pod template not rewritten:\n%s", out["apps/payments-jobs.yaml"])
	}
	if w := find(rep, "identity-audit", "auditor"); w.Moved || w.InRun {
		t.Errorf("another team's workload must not move or be listed: %+v", w)
	}
	if !bytes.Contains(out["apps/identity-audit.yaml"], []byte("istio.io/rev: 1-30")) {
		t.Errorf("another team's workload was rewritten")
	}
	if w := find(rep, "data-archive", "backfill"); w.Moved {
		t.Errorf("a workload of an istio-injection=disabled namespace must not move")
	}
}

// TestTreeCovers keeps the test tree what the tests rely on: at least 50
// Namespaces over 5 teams in several files, multi-document and commented
// files, and every label situation.
func TestTreeCovers(t *testing.T) {
	rw := &kio.LocalPackageReadWriter{PackagePath: treeDir, MatchFilesGlob: kio.MatchAll}
	items, err := rw.Read()
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]bool{}
	files := map[string]int{}
	situations := map[string]int{}
	namespaces := 0
	for _, n := range items {
		if n.GetKind() != "Namespace" {
			continue
		}
		namespaces++
		files[object.Path(n)]++
		l, a := n.GetLabels(), n.GetAnnotations()
		if o := cmpOr(l["team"], a["team"]); o != "" {
			owners[o] = true
		} else {
			situations["no owner"]++
		}
		if _, ok := l["team"]; !ok && a["team"] != "" {
			situations["owner annotation"]++
		}
		if l["team"] != "" && a["team"] != "" && l["team"] != a["team"] {
			situations["owner conflict"]++
		}
		rev, hasRev := l[api.RevisionLabel]
		inj, hasInj := l[api.InjectionLabel]
		switch {
		case hasInj && hasRev:
			situations["istio-injection="+inj+" + istio.io/rev"]++
		case hasInj:
			situations["istio-injection="+inj]++
		case hasRev:
			situations["istio.io/rev="+rev]++
		default:
			situations["no label"]++
		}
	}
	multi, commented := 0, 0
	for p, b := range readTree(t, treeDir) {
		if bytes.Contains(b, []byte("\n---\n")) {
			multi++
		}
		if bytes.Contains(b, []byte("# ")) {
			commented++
		}
		_ = p
	}
	if namespaces < 50 || len(owners) < 5 || len(files) < 5 || multi < 3 || commented < 3 {
		t.Errorf("tree: %d namespaces, %d owners, %d files, %d multi-document, %d commented; want >= 50, 5, 5, 3, 3",
			namespaces, len(owners), len(files), multi, commented)
	}
	for _, s := range []string{
		"istio.io/rev=1-30", "istio.io/rev=1-31", "istio.io/rev=1-29", "istio.io/rev=prod-stable", "istio.io/rev=default",
		"istio-injection=enabled", "istio-injection=enabled + istio.io/rev", "istio-injection=disabled",
		"istio-injection=disabled + istio.io/rev", "istio-injection=true", "no label", "no owner", "owner annotation", "owner conflict",
	} {
		if situations[s] == 0 {
			t.Errorf("tree: no namespace with %s (have %v)", s, situations)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestIdempotent: a second run over a run's output changes no byte.
func TestIdempotent(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := caseConfig(t, tc.name)
			first, rep, _ := runOn(t, input(t, tc.mesh), cfg)
			if n, _ := rep.Moved(); n == 0 {
				t.Fatalf("the first run moved nothing: the case tests nothing")
			}
			second, rep2, _ := runOn(t, first, cfg)
			if n, w := rep2.Moved(); n != 0 || w != 0 {
				t.Errorf("second run moved %d namespaces and %d workloads, want none", n, w)
			}
			for _, p := range slices.Sorted(maps.Keys(first)) {
				if !bytes.Equal(first[p], second[p]) {
					t.Errorf("%s changed on the second run:\n%s", p, lineDiff(first[p], second[p]))
				}
			}
		})
	}
}

// TestOnlyLabelsChange: in every changed file, only the lines of the labels
// a migration changes differ, and they differ as expected; comments, order
// and every other label stay.
func TestOnlyLabelsChange(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := input(t, tc.mesh)
			out, rep, _ := runOn(t, in, caseConfig(t, tc.name))
			changed := 0
			for _, p := range slices.Sorted(maps.Keys(in)) {
				if bytes.Equal(in[p], out[p]) {
					continue
				}
				changed++
				if !slices.Contains(rep.ChangedFiles(), p) {
					t.Errorf("%s changed but the report moved nothing in it", p)
				}
				if !sameBesidesLabels(in[p], out[p]) {
					t.Errorf("%s: lines other than the labels changed:\n%s", p, lineDiff(in[p], out[p]))
				}
				for _, l := range strings.Split(string(out[p]), "\n") {
					if strings.Contains(l, api.InjectionLabel+": enabled") && rep.FromIsDefault {
						t.Errorf("%s: %q survived a run from the default revision", p, l)
					}
				}
				if got, want := bytes.Count(out[p], []byte(api.RevisionLabel+": "+rep.To)), bytes.Count(in[p], []byte(api.RevisionLabel+": "+rep.To)); got <= want {
					t.Errorf("%s: no new %s: %s line", p, api.RevisionLabel, rep.To)
				}
			}
			if changed != len(rep.ChangedFiles()) {
				t.Errorf("%d files changed, the report says %d", changed, len(rep.ChangedFiles()))
			}
		})
	}
	// The comment above a renamed istio-injection label stays with it.
	out, _, _ := runOn(t, input(t, true), caseConfig(t, "mesh-default"))
	want := "    # injected since before revisions existed\n    istio.io/rev: 1-31\n"
	if !bytes.Contains(out["teams/payments/namespaces.yaml"], []byte(want)) {
		t.Errorf("payments-ledger: want the label renamed in place under its comment:\n%s", out["teams/payments/namespaces.yaml"])
	}
	// A line comment and the quoting of a value stay.
	if !bytes.Contains(out["teams/payments/namespaces.yaml"], []byte(`    istio.io/rev: "1-31" # moved with the API`+"\n")) ||
		!bytes.Contains(out["teams/identity.yaml"], []byte(`    istio.io/rev: '1-31' # quoted on purpose`+"\n")) {
		t.Errorf("quoted values or line comments were not kept")
	}
}

// TestPerOwner: a run for one team changes only that team's objects, and
// the five runs one after the other give the run for every team.
func TestPerOwner(t *testing.T) {
	all := caseConfig(t, "all")
	in := input(t, false)
	want, _, _ := runOn(t, in, all)
	seq := in
	for _, owner := range []string{"checkout", "data", "identity", "payments", "search"} {
		cfg := all.Copy()
		if err := cfg.PipeE(yaml.LookupCreate(yaml.SequenceNode, "spec", "owners"), yaml.Append(yaml.NewStringRNode(owner).YNode())); err != nil {
			t.Fatal(err)
		}
		out, rep, _ := runOn(t, in, cfg)
		moved := 0
		for _, e := range rep.Namespaces {
			if e.Moved {
				moved++
				if e.Owner != owner {
					t.Errorf("%s run moved %s of %q", owner, e.Name, e.Owner)
				}
			}
			if e.InRun != (e.Owner == owner) {
				t.Errorf("%s run: %s (owner %q) InRun %v", owner, e.Name, e.Owner, e.InRun)
			}
		}
		if moved == 0 {
			t.Errorf("%s run moved nothing", owner)
		}
		// Document by document: whatever changed is this team's.
		for _, p := range slices.Sorted(maps.Keys(in)) {
			if bytes.Equal(in[p], out[p]) {
				continue
			}
			before, after := docs(in[p]), docs(out[p])
			if len(before) != len(after) {
				t.Fatalf("%s: %d documents became %d", p, len(before), len(after))
			}
			for i := range before {
				if before[i] == after[i] {
					continue
				}
				if o := docOwner(t, before[i]); o != owner {
					t.Errorf("%s run changed a document of another team in %s:\n%s", owner, p, after[i])
				}
			}
		}
		if !bytes.Contains(rep.Markdown(), []byte("## Team `"+owner+"`")) || bytes.Count(rep.Markdown(), []byte("## Team ")) != 1 {
			t.Errorf("%s run: the report must have this team's section only:\n%s", owner, rep.Markdown())
		}
		seq, _, _ = runOn(t, seq, cfg)
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if !bytes.Equal(want[p], seq[p]) {
			t.Errorf("%s: the per-team runs one after the other differ from the run for all:\n%s", p, lineDiff(want[p], seq[p]))
		}
	}
}

// docOwner reads the team of a Namespace document, or of the Namespace
// a workload document is in.
func docOwner(t *testing.T, doc string) string {
	t.Helper()
	n, err := yaml.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if n.GetKind() != "Namespace" {
		return "namespace " + n.GetNamespace()
	}
	return cmpOr(n.GetLabels()["team"], n.GetAnnotations()["team"])
}

func docs(b []byte) []string {
	return strings.Split(string(b), "\n---\n")
}

// TestInputOrder: the same items in another order give the same results
// and report, and items are edited in place without their annotations
// changing.
func TestInputOrder(t *testing.T) {
	read := func() []*yaml.RNode {
		rw := &kio.LocalPackageReadWriter{PackagePath: treeDir, MatchFilesGlob: kio.MatchAll}
		items, err := rw.Read()
		if err != nil {
			t.Fatal(err)
		}
		return items
	}
	run := func(items []*yaml.RNode) (string, string, []*yaml.RNode) {
		rl := &framework.ResourceList{Items: items, FunctionConfig: caseConfig(t, "all")}
		p := &Processor{}
		if err := p.Process(rl); err != nil {
			t.Fatal(err)
		}
		res, err := yaml.Marshal(rl.Results)
		if err != nil {
			t.Fatal(err)
		}
		return string(res), string(p.Report.Markdown()), rl.Items
	}
	items := read()
	ordered := slices.Clone(items)
	res1, md1, _ := run(items)
	shuffled := read()
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	before := slices.Clone(shuffled)
	res2, md2, after := run(shuffled)
	if res1 != res2 || md1 != md2 {
		t.Errorf("results or report depend on the input order")
	}
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("item %d was replaced; items must be edited in place", i)
		}
	}
	for i, n := range ordered {
		if n.GetKind() == "Namespace" && n.GetName() == "payments-api" {
			if got := n.GetLabels()[api.RevisionLabel]; got != "1-31" {
				t.Errorf("payments-api (item %d) has %s=%s after the run, want 1-31", i, api.RevisionLabel, got)
			}
			if object.Path(n) != "teams/payments/namespaces.yaml" {
				t.Errorf("path annotation changed: %s", object.Path(n))
			}
		}
	}
}

// TestErrors: each error names what is wrong and where, and leaves every
// item as it was.
func TestErrors(t *testing.T) {
	meshItems := func() []*yaml.RNode {
		mesh, err := yaml.ReadFile(meshFile)
		if err != nil {
			t.Fatal(err)
		}
		_ = object.SetPath(mesh, "mesh/istio-gitops.yaml", 0)
		return []*yaml.RNode{mesh}
	}
	for _, tc := range []struct {
		name   string
		cfg    string
		extra  func() []*yaml.RNode
		errHas []string
	}{
		{
			name:   "to is not a revision of the mesh",
			cfg:    "from: 1-30\n  to: 1-32\n  ownerKey: team",
			extra:  meshItems,
			errHas: []string{`spec.to: "1-32" must be one of the revisions or tags`, `IstioGitOps "prod" in mesh/istio-gitops.yaml`},
		},
		{
			name: "invalid mesh config",
			cfg:  "from: 1-30\n  to: 1-31\n  ownerKey: team",
			extra: func() []*yaml.RNode {
				m := meshItems()
				_ = m[0].PipeE(yaml.Lookup("spec"), yaml.SetField("activeRevision", yaml.NewStringRNode("1-29")))
				return m
			},
			errHas: []string{"mesh/istio-gitops.yaml", "spec.activeRevision"},
		},
		{
			name: "labels not a mapping",
			cfg:  "from: 1-30\n  to: 1-31\n  ownerKey: team",
			extra: func() []*yaml.RNode {
				n := yaml.MustParse("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: broken\n  labels: [a, b]\n")
				_ = object.SetPath(n, "ns/broken.yaml", 0)
				return []*yaml.RNode{n}
			},
			errHas: []string{"Namespace broken in ns/broken.yaml", "metadata.labels: must be a mapping"},
		},
		{
			name: "pod labels not strings",
			cfg:  "from: 1-30\n  to: 1-31\n  ownerKey: team",
			extra: func() []*yaml.RNode {
				n := yaml.MustParse("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: payments-api\nspec:\n  template:\n    metadata:\n      labels:\n        istio.io/rev: [1-30]\n")
				_ = object.SetPath(n, "apps/d.yaml", 0)
				return []*yaml.RNode{n}
			},
			errHas: []string{"Deployment payments-api/d in apps/d.yaml", `spec.template.metadata.labels["istio.io/rev"]: must be a string`},
		},
		{
			name:   "owner owns nothing",
			cfg:    "from: 1-30\n  to: 1-31\n  ownerKey: team\n  owners: [paymnets]",
			errHas: []string{`RevisionMigration "t": spec.owners[0]: "paymnets" must own a namespace of the input`, `"payments"`},
		},
		{
			name:   "unknown field",
			cfg:    "from: 1-30\n  to: 1-31\n  ownerKey: team\n  owner: [payments]",
			errHas: []string{`RevisionMigration "t"`, `spec.owner: unknown field`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := &kio.LocalPackageReadWriter{PackagePath: treeDir, MatchFilesGlob: kio.MatchAll}
			items, err := rw.Read()
			if err != nil {
				t.Fatal(err)
			}
			if tc.extra != nil {
				items = append(items, tc.extra()...)
			}
			var before []string
			for _, n := range items {
				before = append(before, n.MustString())
			}
			cfg := yaml.MustParse("apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: RevisionMigration\nmetadata:\n  name: t\nspec:\n  " + tc.cfg + "\n")
			rl := &framework.ResourceList{Items: items, FunctionConfig: cfg}
			err = (&Processor{}).Process(rl)
			if err == nil {
				t.Fatalf("no error")
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q must contain %q", err, s)
				}
			}
			for i, n := range rl.Items {
				if n.MustString() != before[i] {
					t.Errorf("item %d (%s) was modified despite the error", i, object.Describe(n))
				}
			}
			if len(rl.Results) != 0 {
				t.Errorf("results on error: %v", rl.Results)
			}
		})
	}
}

// TestFunction runs the processor as the KRM function does, over a
// ResourceList on stdin.
func TestFunction(t *testing.T) {
	in := `apiVersion: config.kubernetes.io/v1
kind: ResourceList
functionConfig:
  apiVersion: fn.istio-gitops.dev/v1alpha1
  kind: RevisionMigration
  metadata:
    name: to-1-31
  spec:
    from: 1-30
    to: 1-31
    ownerKey: team
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: shop
    labels:
      team: shop # the owning team
      istio.io/rev: 1-30
    annotations:
      config.kubernetes.io/path: ns/shop.yaml
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: untouched
    annotations:
      config.kubernetes.io/path: cm.yaml
  data:
    istio.io/rev: 1-30
`
	var out bytes.Buffer
	rw := &kio.ByteReadWriter{Reader: strings.NewReader(in), Writer: &out, KeepReaderAnnotations: true}
	if err := framework.Execute(&Processor{}, rw); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"      team: shop # the owning team\n      istio.io/rev: 1-31\n",
		"    istio.io/rev: 1-30\n", // the ConfigMap's data
		"config.kubernetes.io/path: ns/shop.yaml",
		"message: 'Namespace shop (team=shop): istio.io/rev=1-30 -> istio.io/rev=1-31'",
		"path: ns/shop.yaml",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// TestQuoting: a revision Kubernetes' YAML 1.1 parser would read as a
// number or boolean is written quoted, so the label stays a string.
func TestQuoting(t *testing.T) {
	for _, to := range []string{"2024", "on", "1-31"} {
		ns := yaml.MustParse("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n    team: x\n    istio.io/rev: 1-30\n")
		cfg := yaml.MustParse("apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: RevisionMigration\nmetadata:\n  name: q\nspec:\n  from: 1-30\n  to: \"" + to + "\"\n  ownerKey: team\n")
		if err := (&Processor{}).Process(&framework.ResourceList{Items: []*yaml.RNode{ns}, FunctionConfig: cfg}); err != nil {
			t.Fatal(err)
		}
		want := "    istio.io/rev: " + to + "\n"
		if to != "1-31" {
			want = "    istio.io/rev: \"" + to + "\"\n"
		}
		if got := ns.MustString(); !strings.Contains(got, want) {
			t.Errorf("to %q: got\n%s\nwant a line %q", to, got, want)
		}
	}
}

// TestDefaultTagDecidesInjectionEnabled: istio-injection=enabled is
// injected by the default tag, which spec.tags.default points when set
// (else spec.activeRevision). With the active revision 1-30 but
// tags.default on 1-31, those namespaces are not on 1-30 and must not move
// from it; from 1-31 they move.
func TestDefaultTagDecidesInjectionEnabled(t *testing.T) {
	files := input(t, true)
	files["istio-gitops.yaml"] = bytes.Replace(files["istio-gitops.yaml"], []byte("  tags:\n"), []byte("  tags:\n    default: 1-31\n"), 1)
	from := func(rev, to string) *yaml.RNode {
		cfg := caseConfig(t, "mesh-default")
		spec := cfg.Field("spec").Value
		_ = spec.PipeE(yaml.SetField("from", yaml.NewStringRNode(rev)))
		_ = spec.PipeE(yaml.SetField("to", yaml.NewStringRNode(to)))
		return cfg
	}
	_, rep, _ := runOn(t, files, from("1-30", "1-31"))
	if e := entry(t, rep, "payments-ledger"); e.Moved || !strings.Contains(e.Why, "istio-injection=enabled overrides") || rep.FromIsDefault {
		t.Errorf("from 1-30 with tags.default: 1-31: payments-ledger moved=%v (%s), FromIsDefault=%v; want it left, warned", e.Moved, e.Why, rep.FromIsDefault)
	}
	_, rep, _ = runOn(t, files, from("1-31", "prod-canary"))
	if e := entry(t, rep, "payments-ledger"); !e.Moved || !rep.FromIsDefault {
		t.Errorf("from 1-31 with tags.default: 1-31: payments-ledger moved=%v (%s), FromIsDefault=%v; want it moved", e.Moved, e.Why, rep.FromIsDefault)
	}
}
