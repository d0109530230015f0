package patch

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// userEdits are the kinds of patch the article keeps
// (testdata/patch/edits.yaml), as they apply to today's istioctl output
// (which no longer writes caBundle).
var userEdits = treetest.PatchEdits()

// userPatch is a user's workflow on a tree whose root is a git repository:
// split revision 1-30, commit, edit one generated file, `git diff`. It
// returns the tree root, the files as generated, the target and its edited
// content, and the diff.
type userPatch struct {
	root, target string
	files        map[string][]byte
	edited       []byte
	diff         string
}

func makeUserPatch(t *testing.T, e treetest.PatchEdit) userPatch {
	t.Helper()
	u := userPatch{root: t.TempDir()}
	u.files = splitRevision(t, u.root, "1-30")
	gitRepo(t, u.root)
	u.target = e.Target("1-30")
	u.edited = e.Apply(t, "1-30", u.files[u.target])
	writeFile(t, filepath.Join(u.root, filepath.FromSlash(u.target)), u.edited)
	u.diff = git(t, u.root, "diff")
	return u
}

// runImport runs `patch import` as the command line does.
func runImport(t *testing.T, stdin string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := ImportCommand()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.Execute()
	return out.Bytes(), err
}

func readOne(t *testing.T, b []byte) *yaml.RNode {
	t.Helper()
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(b), OmitReaderAnnotations: true}).Read()
	if err != nil || len(nodes) != 1 {
		t.Fatalf("want one object, got %d (%v):\n%s", len(nodes), err, b)
	}
	return nodes[0]
}

// TestUserPatches follows each kind of patch through its life: made by
// editing the written file and `git diff`, imported, applied to revision
// 1-30, the run repeated, then carried forward to 1-31.
func TestUserPatches(t *testing.T) {
	for _, tc := range userEdits {
		t.Run(tc.Name, func(t *testing.T) {
			u := makeUserPatch(t, tc)
			compareGolden(t, "1-30/"+tc.Name+".patch", []byte(u.diff))

			patchFile := filepath.Join(t.TempDir(), tc.Name+".patch")
			writeFile(t, patchFile, []byte(u.diff))
			out, err := runImport(t, "", patchFile, "--revision", "1-30")
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, "1-30/"+tc.Name+".yaml", out)
			if !strings.Contains(string(out), "\n  diff: |\n    diff --git a/generated/") {
				t.Errorf("spec.diff must be a readable literal block scalar:\n%s", out)
			}

			node := readOne(t, out)
			p := mustParse(t, node)
			if p.Name != tc.Name {
				t.Errorf("name %q, want the file's base name %q", p.Name, tc.Name)
			}
			// The diff is the user's, with paths relative to the revision.
			want := strings.NewReplacer("a/1-30/generated/", "a/generated/", "b/1-30/generated/", "b/generated/").Replace(u.diff)
			if p.Diff != want {
				t.Errorf("spec.diff:\n%s\nwant:\n%s", p.Diff, want)
			}
			if got, err := p.Targets("1-30"); err != nil || !slices.Equal(got, []string{u.target}) {
				t.Fatalf("Targets = %q, %v; want %q", got, err, u.target)
			}

			changes, err := p.Apply("1-30", u.files)
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != 1 || changes[0].Path != u.target || !bytes.Equal(changes[0].Content, u.edited) {
				t.Fatalf("Apply must give the user's edited file %s, got %d changes", u.target, len(changes))
			}
			obj, err := CheckSameObject(u.target, u.files[u.target], changes[0].Content)
			if err != nil {
				t.Fatal(err)
			}
			// Written back, the patched object is the patched bytes: a
			// second run reads and writes the same file.
			if b, err := FileBytes(obj); err != nil || !bytes.Equal(b, u.edited) {
				t.Errorf("FileBytes of the patched object differs from the patched file (%v):\n%s", err, b)
			}

			// The second run: the files carry the patch. Applying it again
			// is a conflict that says so; the record (name and digest) is
			// what tells the pipeline to skip it, and the digest survives
			// the object's write and read.
			patched := map[string][]byte{u.target: u.edited}
			_, err = p.Apply("1-30", patched)
			var ce *ConflictError
			if !errors.As(err, &ce) || !ce.Applied {
				t.Errorf("applying again must be a conflict of a file that already carries the change, got %v", err)
			}
			if _, err := p.Apply("1-30", u.files); err != nil {
				t.Errorf("the generated files must take the patch: %v", err)
			}
			reread := mustParse(t, readOne(t, out))
			if reread.Digest != p.Digest || !strings.HasPrefix(p.Digest, "sha256:") || p.Digest != Digest(want) {
				t.Errorf("digest %s changed to %s across a write and read", p.Digest, reread.Digest)
			}
			again, err := Import(strings.NewReader(u.diff), "1-30", tc.Name)
			if b, _ := FileBytes(again); err != nil || !bytes.Equal(b, out) {
				t.Errorf("importing the same diff again must give the same bytes (%v)", err)
			}

			// Carry forward to 1-31, as the pipeline reads the patch.
			files31 := splitRevision(t, u.root, "1-31")
			if err := node.PipeE(yaml.SetAnnotation(kioutil.PathAnnotation, "1-30/patches/"+tc.Name+".yaml")); err != nil {
				t.Fatal(err)
			}
			if p := mustParse(t, node); p.Revision != "1-30" {
				t.Errorf("Revision %q, want 1-30 from the path", p.Revision)
			}
			carried, err := CarryForward(node, "1-30", "1-31")
			if err != nil {
				t.Fatal(err)
			}
			cb, err := FileBytes(carried)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, "1-31/"+tc.Name+".yaml", cb)
			if got := carried.GetAnnotations()[api.CarriedFromAnnotation]; got != "1-30/"+tc.Name {
				t.Errorf("carried-from %q", got)
			}
			if p, _, _ := kioutil.GetFileAnnotations(carried); p != "" {
				t.Errorf("the copy must lose the original's path, has %q", p)
			}
			cp := mustParse(t, carried)
			target31 := tc.Target("1-31")
			changes, err = cp.Apply("1-31", files31)
			if err != nil {
				t.Fatalf("carried patch must apply to 1-31: %v", err)
			}
			want31 := tc.Apply(t, "1-31", files31[target31])
			if len(changes) != 1 || changes[0].Path != target31 || !bytes.Equal(changes[0].Content, want31) {
				t.Fatalf("the carried patch must make the same edit on 1-31's %s", target31)
			}
			if _, err := CheckSameObject(target31, files31[target31], changes[0].Content); err != nil {
				t.Error(err)
			}
			// The original still applies only to 1-30: its paths are
			// relative to the revision, its context names 1-30.
			if _, err := p.Apply("1-31", files31); err == nil {
				t.Error("the 1-30 patch must not apply to 1-31's files unchanged")
			}
		})
	}
}

// TestImportPathForms: however the user ran git, the imported object is
// the same.
func TestImportPathForms(t *testing.T) {
	e := userEdits[0]
	// The reference: git diff at the tree root, which is the repository.
	u := makeUserPatch(t, e)
	ref, err := Import(strings.NewReader(u.diff), "1-30", "failure")
	if err != nil {
		t.Fatal(err)
	}
	refBytes, _ := FileBytes(ref)

	// The tree lives deeper in the repository.
	repo := t.TempDir()
	tree := filepath.Join(repo, "clusters", "prod", "istio")
	files := splitRevision(t, tree, "1-30")
	gitRepo(t, repo)
	target := "1-30/generated/" + e.Generated("1-30")
	writeFile(t, filepath.Join(tree, filepath.FromSlash(target)), e.Apply(t, "1-30", files[target]))
	revDir := filepath.Join(tree, "1-30")

	forms := map[string]string{
		"repository root":                    git(t, repo, "diff"),
		"revision folder, --relative":        git(t, revDir, "diff", "--relative"),
		"tree root, --relative --no-prefix":  git(t, tree, "diff", "--relative", "--no-prefix"),
		"revision, --relative --no-prefix":   git(t, revDir, "diff", "--relative", "--no-prefix"),
		"repository root, --no-prefix":       git(t, repo, "diff", "--no-prefix"),
		"repository root, mnemonic prefixes": git(t, repo, "-c", "diff.mnemonicPrefix=true", "diff"),
		"CRLF line breaks":                   strings.ReplaceAll(git(t, repo, "diff"), "\n", "\r\n"),
	}
	if !strings.Contains(forms["repository root"], "a/clusters/prod/istio/1-30/generated/") ||
		!strings.Contains(forms["revision folder, --relative"], "a/generated/") ||
		!strings.Contains(forms["revision, --relative --no-prefix"], "diff --git generated/") ||
		!strings.Contains(forms["repository root, mnemonic prefixes"], "i/clusters/") {
		t.Fatalf("git did not write the path forms this test is about:\n%v", forms)
	}
	for _, name := range config.SortedKeys(forms) {
		node, err := Import(strings.NewReader(forms[name]), "1-30", "failure")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b, _ := FileBytes(node); !bytes.Equal(b, refBytes) {
			t.Errorf("%s: imported\n%s\nwant\n%s", name, b, refBytes)
		}
	}

	// Not imported, a diff made with --no-prefix cannot be told apart from
	// one with a prefix: Parse refuses it rather than guess.
	raw, err := newGitPatch("failure", forms["tree root, --relative --no-prefix"])
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(raw)
	mustContain(t, err, `GitPatch "failure"`, "--no-prefix", "patch import")

	// A diff relative to the tree root (not the revision) is accepted as
	// is by the pipeline too.
	raw, err = newGitPatch("failure", u.diff)
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, raw)
	changes, err := p.Apply("1-30", u.files)
	if err != nil || len(changes) != 1 || !bytes.Equal(changes[0].Content, u.edited) {
		t.Errorf("a tree-root-relative patch must apply: %v", err)
	}
	// ... but only to its own revision.
	_, err = p.Targets("1-31")
	mustContain(t, err, `GitPatch "failure"`, `file "1-30/generated/`+e.Generated("1-30")+`"`, "must target a file under 1-31/generated/")
}

// TestImportFormatPatch: a `git format-patch` mail is kept whole.
func TestImportFormatPatch(t *testing.T) {
	e := userEdits[0]
	u := makeUserPatch(t, e)
	git(t, u.root, "commit", "-q", "-am", "istio: the validator fails closed\n\nUntil istiod sets failurePolicy itself.")
	mail := git(t, u.root, "format-patch", "-1", "--stdout")
	if !strings.HasPrefix(mail, "From ") || !strings.Contains(mail, "\n-- \n") {
		t.Fatalf("not a format-patch mail:\n%s", mail)
	}
	node, err := Import(strings.NewReader(mail), "1-30", "")
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, node)
	for _, s := range []string{"Subject: [PATCH] istio: the validator fails closed", "Until istiod sets failurePolicy itself.",
		"diff --git a/generated/" + e.Generated("1-30"), "\n--\n"} {
		if !strings.Contains(p.Diff, s) {
			t.Errorf("spec.diff must keep %q:\n%s", s, p.Diff)
		}
	}
	if want := "validatingwebhookconfiguration-istio-validator-1-30-istio-system"; p.Name != want {
		t.Errorf("name %q, want %q (from the target)", p.Name, want)
	}
	b, _ := FileBytes(node)
	if !strings.Contains(string(b), "  diff: |\n    From ") || !strings.HasSuffix(p.Diff, "\n--\n"+git(t, u.root, "version")[len("git version "):]) {
		t.Errorf("spec.diff must stay a literal block scalar:\n%s", b)
	}
	changes, err := p.Apply("1-30", u.files)
	if err != nil || len(changes) != 1 || !bytes.Equal(changes[0].Content, u.edited) {
		t.Errorf("a format-patch mail must apply: %v", err)
	}
}

// TestConflicts: what a user sees when a patch does not fit the files.
func TestConflicts(t *testing.T) {
	e := userEdits[0]
	u := makeUserPatch(t, e)
	node, err := Import(strings.NewReader(u.diff), "1-30", "failure-validatingwebhookconfiguration")
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, node)
	with := func(content string) map[string][]byte {
		return map[string][]byte{u.target: []byte(content)}
	}
	src := string(u.files[u.target])

	t.Run("changed line", func(t *testing.T) {
		// The web hook already fails closed (the pipeline's drift guards
		// wrote it so): the patch's old line is not there.
		_, err := p.Apply("1-30", with(strings.Replace(src, "failurePolicy: Ignore", "failurePolicy: Fail", 1)))
		mustContain(t, err, `GitPatch "failure-validatingwebhookconfiguration"`,
			`file "1-30/generated/validatingwebhookconfiguration/istio-validator-1-30-istio-system.yaml"`,
			`hunk "@@ -21,7 +21,7 @@"`, `line 24 must read "  failurePolicy: Ignore", but it reads "  failurePolicy: Fail"`,
			"already carries the patch's change")
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Line != 24 || ce.Hunk != "@@ -21,7 +21,7 @@" {
			t.Errorf("want a *ConflictError at line 24, got %#v", err)
		}
	})
	t.Run("context no longer matches", func(t *testing.T) {
		_, err := p.Apply("1-30", with(strings.Replace(src, "      path: /validate\n", "      path: /validate/v2\n", 1)))
		mustContain(t, err, `GitPatch "failure-validatingwebhookconfiguration"`, `hunk "@@ -21,7 +21,7 @@"`,
			`line 23 must read "      path: /validate", but it reads "      path: /validate/v2"`)
		if strings.Contains(err.Error(), "already carries") {
			t.Errorf("the change is not there: %v", err)
		}
		var gc *ConflictError
		if !errors.As(err, &gc) || !errors.Is(err, &gitdiff.Conflict{}) {
			t.Errorf("want go-gitdiff's conflict underneath: %#v", err)
		}
	})
	t.Run("lines moved", func(t *testing.T) {
		// Newer istioctl writes one more label: the hunk is found further
		// down, as git apply finds it.
		moved := strings.Replace(src, "    app: istiod\n", "    app: istiod\n    app.kubernetes.io/component: validator\n", 1)
		changes, err := p.Apply("1-30", with(moved))
		if err != nil {
			t.Fatal(err)
		}
		if want := e.Apply(t, "1-30", []byte(moved)); !bytes.Equal(changes[0].Content, want) {
			t.Errorf("moved hunk applied wrongly:\n%s", changes[0].Content)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := p.Apply("1-30", map[string][]byte{"1-30/generated/configmap/istio-1-30.yaml": u.files["1-30/generated/configmap/istio-1-30.yaml"]})
		mustContain(t, err, `GitPatch "failure-validatingwebhookconfiguration"`, `file "`+u.target+`" must exist`)
	})
	t.Run("file outside the generated files", func(t *testing.T) {
		// The user's own IstioOperator lives in the revision folder but is
		// not istioctl's output: a patch must not touch it.
		op := filepath.Join(u.root, "1-30", "istio-operator.yaml")
		writeFile(t, op, []byte("apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  revision: 1-30\n"))
		git(t, u.root, "add", "-A")
		git(t, u.root, "commit", "-q", "-m", "operator")
		writeFile(t, op, []byte("apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  revision: 1-30\n  profile: minimal\n"))
		diff := git(t, u.root, "diff", "--", "1-30/istio-operator.yaml")
		_, err := Import(strings.NewReader(diff), "1-30", "operator")
		mustContain(t, err, `GitPatch "operator"`, `file "1-30/istio-operator.yaml" must target a file under 1-30/generated/`)
		out, err := runImport(t, diff, "-", "--revision", "1-30")
		if err == nil || len(out) != 0 {
			t.Errorf("the import command must fail and print nothing, printed %q", out)
		}
	})
	t.Run("another revision", func(t *testing.T) {
		raw := strings.NewReplacer("a/generated/", "a/1-31/generated/", "b/generated/", "b/1-31/generated/").Replace(p.Diff)
		n, err := newGitPatch("failure-validatingwebhookconfiguration", raw)
		if err != nil {
			t.Fatal(err)
		}
		_, err = mustParse(t, n).Apply("1-30", u.files)
		mustContain(t, err, `file "1-31/generated/`+e.Generated("1-30")+`" must target a file under 1-30/generated/`)
	})
	for name, bad := range map[string][2]string{
		"escape with ..":       {"a/generated/../../../../etc/passwd", "b/generated/../../../../etc/passwd"},
		"escape from the tree": {"a/../1-31/generated/" + e.Generated("1-30"), "b/../1-31/generated/" + e.Generated("1-30")},
		"absolute path":        {"/etc/passwd", "/etc/passwd"},
	} {
		t.Run(name, func(t *testing.T) {
			f := "generated/" + e.Generated("1-30")
			raw := strings.NewReplacer("a/"+f, bad[0], "b/"+f, bad[1]).Replace(p.Diff)
			if raw == p.Diff {
				t.Fatal("no path replaced")
			}
			n, err := newGitPatch("escape", raw)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(n)
			mustContain(t, err, `GitPatch "escape"`)
			if err != nil && !strings.Contains(err.Error(), `".."`) && !strings.Contains(err.Error(), "relative path") {
				t.Errorf("error must say the path leaves the tree: %v", err)
			}
			_, err = Import(strings.NewReader(raw), "1-30", "escape")
			if err == nil {
				t.Error("Import must refuse it too")
			}
		})
	}
}
