package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/treetest"
)

// The image the image runners run: $ISTIO_GITOPS_IMAGE, built by the
// caller with $CONTAINER_ENGINE, else built once here with `make image`.
const (
	envImage  = "ISTIO_GITOPS_IMAGE"
	envEngine = "CONTAINER_ENGINE"
	// testImage is the image this package builds; like any local image
	// it has a registry part (localhost/), or kpt and kustomize would look
	// for it on a public registry.
	testImage = "localhost/istio-gitops:e2e"
	// maxImageSize is the image's size limit, in bytes (the Makefile's
	// IMAGE_MAX).
	maxImageSize = 25_000_000
)

var image struct {
	once sync.Once
	// name is the image.
	name string
	// err says why the image failed to build.
	err error
}

var engine struct {
	once sync.Once
	name string
}

// engineTool is the container engine, or why there is none: CI must have
// one (.ci/run installs podman with hack/podman.sh).
func engineTool() (string, error) {
	engine.once.Do(func() { engine.name = findEngine() })
	if engine.name == "" {
		return "", errMissing{"no container engine: neither podman nor docker runs here (`hack/podman.sh` installs podman); image tests skipped", os.Getenv("CI") != ""}
	}
	return engine.name, nil
}

// withEngine is tool, for a runner that also needs a container engine.
func withEngine(tool func() (string, error)) func() (string, error) {
	return func() (string, error) {
		if _, err := engineTool(); err != nil {
			return "", err
		}
		return tool()
	}
}

// containerImage returns the container engine and the image to run,
// skipping the test where no engine works (failing in CI).
func containerImage(t *testing.T) (string, string) {
	t.Helper()
	e, err := engineTool()
	if err != nil {
		skipOrFail(t, err)
	}
	image.once.Do(func() {
		if image.name = os.Getenv(envImage); image.name != "" {
			return
		}
		image.name = testImage
		out, err := exec.Command("make", "-C", repo, "image", "IMAGE="+image.name, "ENGINE="+e).CombinedOutput()
		if err != nil {
			image.err = fmt.Errorf("make image: %v\n%s", err, out)
		}
	})
	if image.err != nil {
		t.Fatal(image.err)
	}
	return e, image.name
}

// findEngine is $CONTAINER_ENGINE, else podman, else docker, whichever
// answers `info` (a docker client without a daemon does not).
func findEngine() string {
	candidates := []string{"podman", "docker"}
	if e := os.Getenv(envEngine); e != "" {
		candidates = []string{e}
	}
	for _, e := range candidates {
		if p, err := exec.LookPath(e); err == nil && exec.Command(p, "info").Run() == nil {
			return e
		}
	}
	return ""
}

// runKptEvalImage: `kpt fn eval --image`, the function finding its config
// among the resources.
func runKptEvalImage(t *testing.T, tool, dir string) (string, error) {
	e, img := containerImage(t)
	return command(t, dir, kptRuntime(e), tool, "fn", "eval", dir, "--image", img)
}

// runKptRenderImage: a Kptfile pipeline with the image.
func runKptRenderImage(t *testing.T, tool, dir string) (string, error) {
	e, img := containerImage(t)
	kptfile(t, dir, "image: "+img)
	return command(t, dir, kptRuntime(e), tool, "fn", "render", dir)
}

// runKustomizeContainer: `kustomize fn run` with the config's function
// annotation naming the image (`container: {image: ...}`).
func runKustomizeContainer(t *testing.T, tool, dir string) (string, error) {
	e, img := containerImage(t)
	// The config names the image instead of the binary; the run gives it
	// back as it was, so the tree compares with the golden one.
	cfg := filepath.Join(dir, "istio-gitops.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		return "", err
	}
	const exec = "exec: {path: istio-gitops}"
	container := fmt.Sprintf("container: {image: %q}", img)
	if !bytes.Contains(b, []byte(exec)) {
		return "", fmt.Errorf("%s: no %q annotation to replace", cfg, exec)
	}
	treetest.Write(t, cfg, bytes.Replace(b, []byte(exec), []byte(container), 1))
	out, runErr := command(t, dir, []string{"PATH=" + dockerShim(t, e) + ":" + os.Getenv("PATH")}, tool, "fn", "run", dir)
	b, err = os.ReadFile(cfg)
	if err != nil {
		return out, err
	}
	if !bytes.Contains(b, []byte(container)) {
		return out, fmt.Errorf("%s: the run changed the function annotation:\n%s", cfg, b)
	}
	treetest.Write(t, cfg, bytes.Replace(b, []byte(container), []byte(exec), 1))
	return out, runErr
}

// kptRuntime is the environment that makes kpt run functions with e.
func kptRuntime(e string) []string {
	return []string{"KPT_FN_RUNTIME=" + e}
}

// dockerShim is a folder whose `docker` is engine: kustomize runs container
// functions with `docker`.
func dockerShim(t *testing.T, e string) string {
	t.Helper()
	p, err := exec.LookPath(e)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(p, filepath.Join(dir, "docker")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestImageResourceList: the image, run locked down (read-only root, no
// network, no capabilities) as its own non-root user, turns a ResourceList
// into the same bytes as the binary, for a run that writes a revision and
// for one that fails.
func TestImageResourceList(t *testing.T) {
	e, img := containerImage(t)
	dir := t.TempDir()
	treetest.Copy(t, filepath.Join(golden, "bootstrap", "want"), dir)
	treetest.Copy(t, filepath.Join(repo, "examples", "upgrade"), dir)
	in := resourceList(t, dir, nil)
	bad := bytes.Replace(in, []byte("- name: 1-31"), []byte(`- name: "1.31"`), 1)
	for _, tc := range []struct {
		name  string
		input []byte
		fails bool
	}{
		{"add-1-31", in, false},
		{"bad-config", bad, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := pipe(t, tc.input, binary)
			got, gotErr := pipe(t, tc.input, e, "run", "--rm", "-i", "--read-only", "--network", "none", "--cap-drop", "ALL",
				"--security-opt", "no-new-privileges", img)
			if (wantErr != nil) != tc.fails || (gotErr != nil) != tc.fails {
				t.Fatalf("want the binary and the image to fail: %v; binary: %v, image: %v\n%s", tc.fails, wantErr, gotErr, got)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the image's ResourceList differs from the binary's:\n%s", treetest.Diff(
					map[string][]byte{"out.yaml": got}, map[string][]byte{"out.yaml": want}))
			}
			if !bytes.Contains(got, []byte("kind: ResourceList")) || tc.fails && !bytes.Contains(got, []byte("must not contain a dot")) {
				t.Errorf("unexpected output:\n%.2000s", got)
			}
		})
	}
}

// pipe runs name with input on stdin and returns its stdout.
func pipe(t *testing.T, input []byte, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(input)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.String())
	}
	return out.Bytes(), err
}

// TestImage: the image's content, user, labels and size; what it holds
// is what hack/image-rootfs.sh lays out, and the Dockerfile's final stage
// is the same as image/Containerfile.
func TestImage(t *testing.T) {
	e, img := containerImage(t)
	var info []struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
			Labels     map[string]string
		}
	}
	out, err := exec.Command(e, "image", "inspect", img).Output()
	if err != nil || json.Unmarshal(out, &info) != nil || len(info) != 1 {
		t.Fatalf("%s image inspect %s: %v\n%s", e, img, err, out)
	}
	c := info[0].Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/istio-gitops"}) {
		t.Errorf("user %q, entrypoint %q", c.User, c.Entrypoint)
	}
	for _, l := range []string{"title", "version", "licenses", "source"} {
		if c.Labels["org.opencontainers.image."+l] == "" {
			t.Errorf("label org.opencontainers.image.%s is missing: %v", l, c.Labels)
		}
	}
	t.Logf("%s: %d bytes", img, info[0].Size)
	if info[0].Size > maxImageSize {
		t.Errorf("%s is %d bytes: at most %d", img, info[0].Size, maxImageSize)
	}

	// The files of the image, with their modes, against the layout.
	id, err := exec.Command(e, "create", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	container := strings.TrimSpace(string(id))
	defer exec.Command(e, "rm", container).Run()
	tarball, err := exec.Command(e, "export", container).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := tarList(t, tarball)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command(filepath.Join(repo, "hack/image-rootfs.sh"), rootfs, binary, filepath.Join(repo, "LICENSE")).CombinedOutput(); err != nil {
		t.Fatalf("image-rootfs.sh: %v\n%s", err, out)
	}
	want := dirList(t, rootfs)
	if !slices.Equal(got, want) {
		t.Errorf("the image holds:\n%s\nhack/image-rootfs.sh lays out:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range []string{"etc/passwd", "etc/group"} {
		b, err := os.ReadFile(filepath.Join(rootfs, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"root", "nobody", "nonroot"} {
			if !regexp.MustCompile(`(?m)^` + name + `:`).Match(b) {
				t.Errorf("%s has no %s", f, name)
			}
		}
	}

	// The Dockerfile builds the same image from source.
	final := func(p string) []string {
		b, err := os.ReadFile(filepath.Join(repo, p))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "FROM ") {
				lines = nil
			}
			if l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, strings.Replace(l, "COPY --from=build /rootfs/ /", "COPY rootfs/ /", 1))
			}
		}
		return lines
	}
	if d, c := final("Dockerfile"), final("image/Containerfile"); !slices.Equal(d, c) || len(c) < 4 || c[0] != "FROM scratch" {
		t.Errorf("the Dockerfile's final stage must equal image/Containerfile:\n%s\n---\n%s", strings.Join(d, "\n"), strings.Join(c, "\n"))
	}
	if b, _ := os.ReadFile(filepath.Join(repo, "Dockerfile")); !bytes.Contains(b, []byte("image-rootfs.sh /rootfs ")) {
		t.Error("the Dockerfile must lay out /rootfs with hack/image-rootfs.sh")
	}
}

// tarList lists a tarball's entries as "mode path", sorted.
func tarList(t *testing.T, tarball []byte) []string {
	t.Helper()
	cmd := exec.Command("tar", "-tvf", "-")
	cmd.Stdin = bytes.NewReader(tarball)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		list = append(list, f[0]+" "+strings.TrimSuffix(f[len(f)-1], "/"))
	}
	slices.Sort(list)
	return list
}

// dirList lists a folder's entries as tar -tv prints their modes, sorted.
func dirList(t *testing.T, root string) []string {
	t.Helper()
	var list []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		mode := []byte(fi.Mode().Perm().String())
		if fi.IsDir() {
			mode[0] = 'd'
		}
		if fi.Mode()&os.ModeSticky != 0 {
			mode[9] = 't'
		}
		list = append(list, string(mode)+" "+rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(list)
	return list
}
