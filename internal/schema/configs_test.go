package schema

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/migrate"
	"github.com/istio-gitops/istio-gitops/internal/patch"
)

// loaders are what the function reads each kind with.
var loaders = map[string]func(*yaml.RNode) error{
	config.Kind:  func(n *yaml.RNode) error { _, err := config.Load(n); return err },
	migrate.Kind: func(n *yaml.RNode) error { _, err := migrate.Load(n); return err },
	patch.Kind:   func(n *yaml.RNode) error { _, err := patch.Parse(n); return err },
}

// ours are the objects of kinds with a schema in a YAML stream.
func ours(t *testing.T, b []byte) []*yaml.RNode {
	t.Helper()
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(b), OmitReaderAnnotations: true}).Read()
	if err != nil {
		t.Fatal(err)
	}
	var out []*yaml.RNode
	for _, n := range nodes {
		if _, ok := loaders[n.GetKind()]; ok && n.GetApiVersion() == api.APIVersion {
			out = append(out, n)
		}
	}
	return out
}

// modeline points yaml-language-server at a schema.
var modeline = regexp.MustCompile(`^# yaml-language-server: \$schema=(\S+)\n`)

// fencedYAML are the ```yaml blocks of a Markdown text.
var fencedYAML = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// TestExamples: every config in examples/ and in the README is accepted by
// its loader and validates against its schema, and each example file
// names its schema in a modeline, by a path relative to the file.
func TestExamples(t *testing.T) {
	schemas := map[string]*jsonschema.Schema{}
	for _, k := range Kinds() {
		schemas[k] = compile(t, k)
	}
	count := 0
	check := func(where string, n *yaml.RNode) {
		count++
		if err := loaders[n.GetKind()](n); err != nil {
			t.Errorf("%s: the loader rejects %s %q: %v", where, n.GetKind(), n.GetName(), err)
		}
		if err := validate(t, schemas[n.GetKind()], n.MustString()); err != nil {
			t.Errorf("%s: %s %q does not validate against its schema:\n%v", where, n.GetKind(), n.GetName(), err)
		}
	}
	err := filepath.WalkDir(filepath.Join(repo, "examples"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		rel = filepath.ToSlash(rel)
		switch filepath.Ext(p) {
		case ".md":
			for _, m := range fencedYAML.FindAllSubmatch(b, -1) {
				for _, n := range ours(t, m[1]) {
					check(rel, n)
				}
			}
		case ".yaml", ".yml":
			objs := ours(t, b)
			for _, n := range objs {
				check(rel, n)
			}
			if len(objs) == 0 {
				return nil
			}
			m := modeline.FindSubmatch(b)
			want := path.Join(Dir, File(objs[0].GetKind()))
			if m == nil {
				t.Errorf("%s: must start with the modeline # yaml-language-server: $schema=<path to %s>", rel, want)
			} else if got := path.Join(path.Dir(rel), string(m[1])); got != want {
				t.Errorf("%s: modeline points at %s, want %s", rel, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fencedYAML.FindAllSubmatch(readme, -1) {
		for _, n := range ours(t, m[1]) {
			check("README.md", n)
		}
	}
	t.Logf("%d configs of examples/ and README.md validate", count)
	if count < 4 {
		t.Errorf("checked %d configs, want the examples' and the README's (at least 4)", count)
	}
}

// TestTestdata: every object of ours in testdata/ that its loader accepts
// validates against its schema: the schema is never stricter than the
// function on what the tests use.
func TestTestdata(t *testing.T) {
	schemas := map[string]*jsonschema.Schema{}
	for _, k := range Kinds() {
		schemas[k] = compile(t, k)
	}
	count := 0
	err := filepath.WalkDir(filepath.Join(repo, "testdata"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "bad" {
			// The bad-input corpus is malformed on purpose.
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(api.APIVersion)) {
			return err
		}
		for _, n := range ours(t, b) {
			if loaders[n.GetKind()](n) != nil {
				continue
			}
			count++
			if err := validate(t, schemas[n.GetKind()], n.MustString()); err != nil {
				t.Errorf("%s: %s %q: the loader accepts it, the schema does not:\n%v", p, n.GetKind(), n.GetName(), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d objects of testdata/ validate", count)
	if count < 20 {
		t.Errorf("checked %d objects, want the test trees' configs and patches (at least 20)", count)
	}
}

// badConfig is a config its loader refuses.
type badConfig struct {
	kind, name, doc string
	// loaderErr is in the loader's error.
	loaderErr string
	// loaderOnly says why the schema cannot tell, when it cannot: a rule
	// across fields or in the diff's text. The README lists these.
	loaderOnly string
}

const (
	crossField = "across fields"
	diffText   = "the diff's content"
)

// The bad configs of the loaders' own tests (internal/config,
// internal/migrate, internal/patch), each as its loader sees it.
func badConfigs() []badConfig {
	const gitOpsHead = "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: IstioGitOps\nmetadata:\n  name: prod\n"
	gitOps := func(name, spec, err, loaderOnly string) badConfig {
		return badConfig{config.Kind, name, gitOpsHead + spec, err, loaderOnly}
	}
	const migHead = "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: RevisionMigration\nmetadata:\n  name: m\n"
	const migOK = "spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: team\n"
	mig := func(name, doc, err, loaderOnly string) badConfig {
		return badConfig{migrate.Kind, name, doc, err, loaderOnly}
	}
	const patchHead = "apiVersion: fn.istio-gitops.dev/v1alpha1\nkind: GitPatch\nmetadata:\n  name: fix\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\n"
	gp := func(name, doc, err, loaderOnly string) badConfig {
		return badConfig{patch.Kind, name, doc, err, loaderOnly}
	}
	withDiff := func(d string) string {
		b, _ := json.Marshal(map[string]any{
			"apiVersion": api.APIVersion, "kind": patch.Kind,
			"metadata": map[string]any{"name": "fix", "annotations": map[string]string{"config.kubernetes.io/local-config": "true"}},
			"spec":     map[string]string{"diff": d},
		})
		return string(b)
	}
	const smallDiff = "diff --git a/generated/configmap/x.yaml b/generated/configmap/x.yaml\nindex 1111111..2222222 100644\n--- a/generated/configmap/x.yaml\n+++ b/generated/configmap/x.yaml\n@@ -1,4 +1,4 @@\n apiVersion: v1\n data:\n-  a: \"1\"\n+  a: \"2\"\n kind: ConfigMap\n"
	return []badConfig{
		// internal/config TestInvalid
		gitOps("unknown field", "spec:\n  revisions: [{name: 1-30}]\n  revison: 1-31\n", `spec.revison: unknown field`, ""),
		gitOps("unknown revision field", "spec:\n  revisions: [{name: 1-30, versoin: 1.30.2}]\n", `spec.revisions[0].versoin: unknown field`, ""),
		gitOps("no revisions", "spec: {}\n", "spec.revisions: must list at least one revision", ""),
		gitOps("revision named default", "spec:\n  revisions: [{name: default}]\n", `spec.revisions[0].name: "default" must not be used`, ""),
		gitOps("dot", "spec:\n  revisions: [{name: 1-30}, {name: \"1.31\"}]\n", `spec.revisions[1].name: "1.31" must not contain a dot`, ""),
		gitOps("duplicate", "spec:\n  revisions: [{name: 1-30}, {name: 1-30}]\n", `spec.revisions[1].name: "1-30" must be unique`,
			"unique by one field of the list's objects"),
		gitOps("upper case", "spec:\n  revisions: [{name: Canary}]\n", `spec.revisions[0].name: "Canary" must be a DNS label`, ""),
		gitOps("active not listed", "spec:\n  revisions: [{name: 1-30}]\n  activeRevision: 1-31\n", `spec.activeRevision: "1-31" must be one of the listed revisions`, crossField),
		gitOps("tag like a revision", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  tags: {1-31: 1-30}\n", `spec.tags[1-31]: "1-31" a tag must not be named like a revision`, crossField),
		gitOps("tag target", "spec:\n  revisions: [{name: 1-30}]\n  tags: {prod-stable: 1-29}\n", `spec.tags[prod-stable]: "1-29" must be one of the listed revisions`, crossField),
		gitOps("source escapes", "spec:\n  revisions: [{name: 1-30, source: ../x.yaml}]\n", `spec.revisions[0].source: "../x.yaml" must be a clean path inside the tree`, ""),
		gitOps("patchesFrom newer", "spec:\n  revisions: [{name: 1-30, patchesFrom: 1-31}, {name: 1-31}]\n", `spec.revisions[0].patchesFrom: "1-31" must name an older revision`, crossField),
		gitOps("version", "spec:\n  revisions: [{name: 1-30, version: latest}]\n", `spec.revisions[0].version: "latest" must be an Istio version`, ""),
		gitOps("live not listed", "spec:\n  revisions: [{name: 1-30}]\n  gateways: {live: 1-31}\n", `spec.gateways.live: "1-31" must be one of the listed revisions`, crossField),
		gitOps("flux kind", "spec:\n  revisions: [{name: 1-30}]\n  flux: {path: ./x, sourceRef: {kind: Git, name: a}}\n", `spec.flux.sourceRef.kind: "Git" must be GitRepository`, ""),
		// More of config.Validate's rules.
		gitOps("stable services in place", "spec:\n  revisions: [{name: 1-30}]\n  gateways: {perRevision: false, stableServices: true}\n", "spec.gateways.stableServices: must not be true when spec.gateways.perRevision is false", ""),
		gitOps("ingress in place", "spec:\n  revisions: [{name: 1-30}]\n  gateways: {perRevision: false, ingress: {template: {kind: Ingress}}}\n", "spec.gateways.ingress: must not be set when spec.gateways.perRevision is false", ""),
		gitOps("ingress template kind", "spec:\n  revisions: [{name: 1-30}]\n  gateways: {ingress: {template: {kind: Service}}}\n", `spec.gateways.ingress.template.kind: "Service" must be "Ingress"`, ""),
		gitOps("live-only annotation", "spec:\n  revisions: [{name: 1-30}]\n  gateways: {ingress: {template: {kind: Ingress}, liveOnlyAnnotations: [\"a*b\"]}}\n", `spec.gateways.ingress.liveOnlyAnnotations[0]: "a*b" must be an annotation key`, ""),
		gitOps("flux interval", "spec:\n  revisions: [{name: 1-30}]\n  flux: {path: ./x, sourceRef: {kind: GitRepository, name: a}, interval: often}\n", `spec.flux.interval: "often" must be a duration`, ""),
		gitOps("namespace", "spec:\n  namespace: Istio_System\n  revisions: [{name: 1-30}]\n", `spec.namespace: "Istio_System" must be a namespace name`, ""),
		gitOps("namespaces from absolute", "spec:\n  revisions: [{name: 1-30}]\n  namespaces: {from: [/teams]}\n", `spec.namespaces.from[0]: "/teams" must be a relative path`, ""),
		gitOps("namespaces from unclean", "spec:\n  revisions: [{name: 1-30}]\n  namespaces: {from: [../teams/]}\n", `spec.namespaces.from[0]: "../teams/" must be a clean relative path`, ""),
		gitOps("namespaces from twice", "spec:\n  revisions: [{name: 1-30}]\n  namespaces: {from: [../teams, ../teams]}\n", `spec.namespaces.from[1]: "../teams" must be listed once`, ""),
		gitOps("patchesFrom unclean", "spec:\n  revisions: [{name: 1-30}]\n  patchesFrom: [../patches/../x]\n", `spec.patchesFrom[0]: "../patches/../x" must be a clean relative path`, ""),
		gitOps("after itself", "spec:\n  revisions: [{name: 1-30}]\n  promotion: {after: [.]}\n", `spec.promotion.after[0]: "." must name another cluster's tree`, ""),
		gitOps("soak", "spec:\n  revisions: [{name: 1-30}]\n  promotion: {after: [../staging], soak: 1 day}\n", `spec.promotion.soak: "1 day" must be a Go duration`, ""),
		gitOps("override without reason", "spec:\n  revisions: [{name: 1-30}]\n  promotion: {after: [../staging], override: {expires: \"2026-06-01T00:00:00Z\"}}\n", "spec.promotion.override.reason: must say why", ""),
		gitOps("override blank reason", "spec:\n  revisions: [{name: 1-30}]\n  promotion: {after: [../staging], override: {reason: \" \", expires: \"2026-06-01T00:00:00Z\"}}\n", "spec.promotion.override.reason: must say why", ""),
		gitOps("override without expiry", "spec:\n  revisions: [{name: 1-30}]\n  promotion: {after: [../staging], override: {reason: CVE-2026-1}}\n", "spec.promotion.override.expires: must say when the bypass ends", ""),
		gitOps("override expiry", "spec:\n  revisions: [{name: 1-30}]\n  promotion: {after: [../staging], override: {reason: CVE-2026-1, expires: tomorrow}}\n", `spec.promotion.override.expires: "tomorrow" must be an RFC 3339 time`, ""),
		gitOps("override expiry month", "spec:\n  revisions: [{name: 1-30}]\n  promotion: {after: [../staging], override: {reason: CVE-2026-1, expires: \"2026-13-01T00:00:00Z\"}}\n", `spec.promotion.override.expires: "2026-13-01T00:00:00Z" must be an RFC 3339 time`,
			"the ranges of a time's fields"),
		// internal/config TestInvalid: Ingress templates.
		gitOps("host on an unlisted revision", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n      hosts: {www.example.com: 1-29}\n", `hosts[www.example.com]: "1-29" must be one of the listed revisions`, crossField),
		gitOps("host not in the rules", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n      hosts: {shop.example.com: 1-31}\n", `"shop.example.com" must be served by a rule`, "a host of the template's rules"),
		gitOps("host not a name", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n      hosts: {Shop_Example: 1-31}\n", `"Shop_Example" must be a host name`, ""),
		gitOps("host's revision not a name", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n      hosts: {www.example.com: \"1.31\"}\n", `"1.31" must be one of the listed revisions`, ""),
		gitOps("per-revision values of an unlisted revision", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n      perRevision: {1-29: {annotations: {a: b}}}\n", `perRevision[1-29]: "1-29" must be one of the listed revisions`, crossField),
		gitOps("per-revision label value", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n      perRevision: {1-31: {labels: {tier: \"a b\"}}}\n", `labels[tier]: "a b" must be a label value`, ""),
		gitOps("per-revision annotation key", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n      perRevision: {1-31: {annotations: {\"a b\": c}}}\n", `annotations[a b]: "a b" must be an annotation key`, ""),
		gitOps("template annotations as a list", strings.Replace("spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n", "name: web}", "name: web, annotations: [a]}", 1), "metadata.annotations (line 10): must be a map of strings, not a list", ""),
		gitOps("hostname annotation and hosts", strings.Replace("spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n      hosts: {}\n", "name: web}", "name: web, annotations: {external-dns.alpha.kubernetes.io/hostname: www.example.com}}", 1),
			"must not be set while spec.gateways.ingress.hosts is", crossField),
		gitOps("two templates of one name", "spec:\n  revisions: [{name: 1-30}, {name: 1-31}]\n  gateways:\n    live: 1-30\n    ingress:\n      template: {metadata: {name: web}, spec: {rules: [{host: www.example.com}]}}\n    ingresses:\n    - template: {metadata: {name: web}}\n", `"web" must be unique`, "unique by one field of the list's objects"),
		gitOps("ingresses of gateways in place", "spec:\n  revisions: [{name: 1-30}]\n  gateways: {perRevision: false, ingresses: [{template: {kind: Ingress}}]}\n", "spec.gateways.ingresses[0]: must not be set when spec.gateways.perRevision is false", ""),

		// internal/migrate TestLoadErrors
		mig("unknown spec field", migHead+migOK+"  workload: true\n", `RevisionMigration "m": spec.workload: unknown field`, ""),
		mig("unknown top field", migHead+migOK+"status: {}\n", `status: unknown field`, ""),
		mig("wrong type", migHead+migOK+"  workloads: yes please\n", `RevisionMigration "m"`, ""),
		mig("apiVersion", strings.Replace(migHead, "v1alpha1", "v1", 1)+migOK, `apiVersion: "fn.istio-gitops.dev/v1" must be "fn.istio-gitops.dev/v1alpha1"`, ""),
		mig("kind", strings.Replace(migHead, "RevisionMigration", "Migration", 1)+migOK, `kind: "Migration" must be "RevisionMigration"`, ""),
		mig("no from", migHead+"spec:\n  to: 1-31\n  ownerKey: team\n", "spec.from: must name a revision or a revision tag", ""),
		mig("no to", migHead+"spec:\n  from: 1-30\n  ownerKey: team\n", "spec.to: must name a revision or a revision tag", ""),
		mig("dotted from", migHead+"spec:\n  from: \"1.30\"\n  to: 1-31\n  ownerKey: team\n", `spec.from: "1.30" must be a revision or tag name`, ""),
		mig("same", migHead+"spec:\n  from: 1-31\n  to: 1-31\n  ownerKey: team\n", `spec.to: "1-31" must differ from spec.from`, crossField),
		mig("no ownerKey", migHead+"spec:\n  from: 1-30\n  to: 1-31\n", "spec.ownerKey: must be a label or annotation key", ""),
		mig("bad ownerKey", migHead+"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: -team\n", `spec.ownerKey: "-team" must be a label or annotation key`, ""),
		mig("bad ownerKey prefix", migHead+"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: Example.com/team\n", `spec.ownerKey: "Example.com/team" must have a DNS subdomain as prefix`, ""),
		mig("ownerKey is the revision label", migHead+"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: istio.io/rev\n", `spec.ownerKey: "istio.io/rev" must not be a label this migration changes`, ""),
		mig("empty owner", migHead+migOK+"  owners: [a, \"\"]\n", "spec.owners[1]: must not be empty", ""),
		mig("duplicate owner", migHead+migOK+"  owners: [a, b, a]\n", `spec.owners[2]: "a" must be unique, spec.owners[0] has it too`, ""),
		mig("bad exclude", migHead+migOK+"  exclude: [kube-system, Kube_Public]\n", `spec.exclude[1]: "Kube_Public" must be a namespace name`, ""),
		mig("duplicate exclude", migHead+migOK+"  exclude: [a, a]\n", `spec.exclude[1]: "a" must be unique`, ""),
		mig("bad matchLabels key", migHead+migOK+"  selector:\n    matchLabels:\n      \"a b\": x\n", `spec.selector.matchLabels["a b"]: "a b" must be a label or annotation key`, ""),
		mig("bad matchLabels value", migHead+migOK+"  selector:\n    matchLabels:\n      env: \"pr od\"\n", `spec.selector.matchLabels["env"]: "pr od" must be a label value`, ""),
		mig("bad operator", migHead+migOK+"  selector:\n    matchExpressions:\n    - {key: env, operator: Equals, values: [prod]}\n", `spec.selector.matchExpressions[0].operator: "Equals" must be In, NotIn, Exists or DoesNotExist`, ""),
		mig("In without values", migHead+migOK+"  selector:\n    matchExpressions:\n    - {key: env, operator: In}\n", "spec.selector.matchExpressions[0].values: must not be empty for operator In", ""),
		mig("Exists with values", migHead+migOK+"  selector:\n    matchExpressions:\n    - {key: env, operator: Exists, values: [x]}\n", "spec.selector.matchExpressions[0].values: must be empty for operator Exists", ""),
		mig("unknown selector field", migHead+migOK+"  selector:\n    matchLabel: {env: prod}\n", `spec.selector.matchLabel: unknown field`, ""),
		mig("long ownerKey prefix", migHead+"spec:\n  from: 1-30\n  to: 1-31\n  ownerKey: "+strings.Repeat("a.", 127)+"b/team\n", "must have a DNS subdomain as prefix",
			"the prefix's length (at most 253) inside a longer key"),

		// internal/patch TestParseErrors
		gp("kind", strings.Replace(patchHead, "GitPatch", "Patch", 1)+"spec:\n  diff: x\n", `kind: "Patch" must be "GitPatch"`, ""),
		gp("apiVersion", strings.Replace(patchHead, "fn.istio-gitops.dev/v1alpha1", "v1", 1)+"spec:\n  diff: x\n", `apiVersion: "v1" must be "fn.istio-gitops.dev/v1alpha1"`, ""),
		gp("unknown field", patchHead+"data: {}\nspec:\n  diff: x\n", `data: unknown field`, ""),
		gp("unknown spec field", patchHead+"spec:\n  diff: x\n  strip: 1\n", `spec.strip: unknown field: is it misspelled, or in the wrong place?`, ""),
		gp("unknown metadata field", strings.Replace(patchHead, "metadata:\n", "metadata:\n  nmae: fix\n", 1)+"spec:\n  diff: x\n", `metadata.nmae: unknown field`, ""),
		gp("no spec", patchHead, "spec: must be a mapping holding diff", ""),
		gp("not local-config", strings.Replace(patchHead, `local-config: "true"`, `local-config: "false"`, 1)+"spec:\n  diff: x\n",
			`metadata.annotations: must set config.kubernetes.io/local-config: "true"`, ""),
		gp("no local-config", strings.Replace(patchHead, "  annotations:\n    config.kubernetes.io/local-config: \"true\"\n", "", 1)+"spec:\n  diff: x\n",
			`metadata.annotations: must set config.kubernetes.io/local-config: "true"`, ""),
		gp("no diff", patchHead+"spec: {}\n", "spec.diff: must be a string holding the text of a git diff", ""),
		gp("diff not a string", patchHead+"spec:\n  diff: 3\n", "spec.diff: must be a string", ""),
		gp("bad revision", patchHead+"spec:\n  diff: x\n  revision: \"1.30\"\n", `spec.revision: "1.30" must be the name of the revision`, ""),
		gp("bad name", strings.Replace(patchHead, "name: fix", "name: Fix_It", 1)+"spec:\n  diff: x\n", `metadata.name: "Fix_It" must be a DNS-1123 subdomain`, ""),
		gp("empty diff", patchHead+"spec:\n  diff: \"\"\n", "spec.diff: must hold the text of a git diff, it is empty", ""),
		gp("not a diff", withDiff("hello\n"), `spec.diff: must change at least one file: no "diff --git" section found`, ""),
		gp("traditional diff", withDiff("--- a/generated/x\n+++ b/generated/x\n@@ -1 +1 @@\n-a\n+b\n"),
			`spec.diff: must be made by git diff or git format-patch: every file must start with a "diff --git" line`, ""),
		gp("broken hunk", withDiff(strings.Replace(smallDiff, "@@ -1,4 +1,4 @@", "@@ -1,9 +1,4 @@", 1)), "spec.diff: must be a git diff: gitdiff: line", diffText),
		gp("binary", withDiff("diff --git a/generated/x.bin b/generated/x.bin\nindex 1111111..2222222 100644\nBinary files a/generated/x.bin and b/generated/x.bin differ\n"),
			`spec.diff: file "generated/x.bin": must not be binary`, diffText),
		gp("new file", withDiff("diff --git a/generated/x b/generated/x\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/generated/x\n@@ -0,0 +1 @@\n+a\n"),
			`file "generated/x": must not be created`, diffText),
		gp("deleted file", withDiff("diff --git a/generated/x b/generated/x\ndeleted file mode 100644\nindex 1111111..0000000\n--- a/generated/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n"),
			`file "generated/x": must not be deleted`, diffText),
		gp("rename", withDiff("diff --git a/generated/x b/generated/y\nsimilarity index 100%\nrename from generated/x\nrename to generated/y\n"),
			`file "generated/y": must not be renamed (from "generated/x")`, diffText),
		gp("mode", withDiff("diff --git a/generated/x b/generated/x\nold mode 100644\nnew mode 100755\n"), `file "generated/x": must not change mode (100644 to 100755)`, diffText),
		gp("no context", withDiff("diff --git a/generated/x b/generated/x\n--- a/generated/x\n+++ b/generated/x\n@@ -5 +5 @@\n-a\n+b\n"),
			`file "generated/x": hunk "@@ -5 +5 @@" must have context lines`, diffText),
		gp("twice", withDiff(smallDiff+smallDiff), `file "generated/configmap/x.yaml": must be changed once`, diffText),
		gp("no prefix", withDiff(strings.NewReplacer("a/generated", "generated", "b/generated", "generated").Replace(smallDiff)),
			"must carry git's a/ and b/ prefixes; a diff made with --no-prefix", diffText),
		gp("dot dot", withDiff(strings.ReplaceAll(smallDiff, "/configmap/", "/../../configmap/")), `file "generated/../../configmap/x.yaml": must not contain ".."`, diffText),
		gp("dot", withDiff(strings.ReplaceAll(smallDiff, "/configmap/", "/./configmap/")), `file "generated/./configmap/x.yaml": must be a clean path`, diffText),
		gp("absolute", withDiff(strings.NewReplacer("a/generated", "/generated", "b/generated", "/generated").Replace(smallDiff)), "must name relative paths inside the tree", diffText),
	}
}

// TestBadConfigs: each bad config is refused by its loader, with the
// loader's message, and by its schema, unless the rule is one only the
// loader can check.
func TestBadConfigs(t *testing.T) {
	schemas := map[string]*jsonschema.Schema{}
	for _, k := range Kinds() {
		schemas[k] = compile(t, k)
	}
	for _, c := range badConfigs() {
		t.Run(c.kind+"/"+c.name, func(t *testing.T) {
			n, err := yaml.Parse(c.doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := loaders[c.kind](n); err == nil || !strings.Contains(err.Error(), c.loaderErr) {
				t.Errorf("loader: %v, want an error containing %q", err, c.loaderErr)
			}
			err = validate(t, schemas[c.kind], c.doc)
			switch {
			case c.loaderOnly == "" && err == nil:
				t.Errorf("the schema accepts it; the loader refuses it (%s)", c.loaderErr)
			case c.loaderOnly != "" && err != nil:
				t.Errorf("the schema refuses it too, no longer only the loader (%s): drop loaderOnly\n%v", c.loaderOnly, err)
			}
		})
	}
}
