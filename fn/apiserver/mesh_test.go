package apiserver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/istio-gitops/istio-gitops/fn/apiserver"
)

// istioVersions are the Istio versions of the revisions of testdata: the
// pilot-discovery each revision's istiod Deployment must run, and the
// sidecar a pod on it must get.
var istioVersions = map[string]string{"1-30": "1.30.2", "1-31": "1.31.0"}

const istioNamespace = "istio-system"

// requireIstiod skips t, saying why, where the pilot-discovery of one of
// revs is missing.
func requireIstiod(t *testing.T, revs ...string) {
	t.Helper()
	for _, rev := range revs {
		if _, err := apiserver.PilotDiscovery(toolsDir, istioVersions[rev]); err != nil {
			t.Skipf("no istiod to start, run `make tools` first (`make test` does): %v", err)
		}
	}
}

// meshes counts the meshes of this process: the istiods of mesh n listen
// on 127.0.n.x, so that tests running at once never share an address.
var meshes atomic.Int32

// mesh runs an istiod for each istiod Deployment on the server, as the
// Deployment controller and the kubelet would: one process per
// Deployment, started in turn (the first makes the CA that the others
// load), replaced when its pod template changes, stopped by its PID when
// the Deployment is gone or the test holds it down; and it publishes
// their endpoints, as the EndpointSlice controller would.
type mesh struct {
	c *cluster
	n int32
	// kube is a client for what is not the tree's: endpoints, namespaces,
	// pods, Istio resources; its warnings go to warnings.
	kube     client.Client
	warnings *apiserver.Warnings
	// by Deployment name
	istiods map[string]*apiserver.Istiod
	addrs   map[string]string
	down    map[string]bool
	// dir holds the istiods' working folders; it outlives each step.
	dir string
}

// newMesh is a mesh on c's server; its istiods stop when t ends.
func newMesh(t *testing.T, c *cluster) *mesh {
	t.Helper()
	m := &mesh{c: c, n: meshes.Add(1), warnings: &apiserver.Warnings{}, istiods: map[string]*apiserver.Istiod{},
		addrs: map[string]string{}, down: map[string]bool{}, dir: t.TempDir()}
	if m.n > 254 {
		t.Fatal("too many meshes in one process for 127.0.n.x addresses")
	}
	var err error
	if m.kube, err = c.srv.NewClient(m.warnings); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range slices.Sorted(maps.Keys(m.istiods)) {
			i := m.istiods[name]
			if t.Failed() {
				t.Logf("%s wrote:\n%s", i, lastLines(i.Logs(), 80))
			}
			if err := i.Stop(); err != nil {
				t.Errorf("%v", err)
			}
		}
	})
	return m
}

// sync makes the istiods match the istiod Deployments on the server (in
// istio-system, labelled app: istiod), publishes their endpoints and waits
// until each has set up the webhook configurations of its revision.
func (m *mesh) sync(t *testing.T) {
	t.Helper()
	var deps appsv1.DeploymentList
	if err := m.kube.List(context.Background(), &deps, client.InNamespace(istioNamespace), client.MatchingLabels{"app": "istiod"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]*apiserver.Pod{}
	for k := range deps.Items {
		p, err := apiserver.PodOf(&deps.Items[k])
		if err != nil {
			t.Fatal(err)
		}
		if v := istioVersions[p.Revision]; p.Version != v {
			t.Errorf("Deployment %s runs Istio %q, want %q", p.Deployment, p.Version, v)
		}
		want[p.Deployment] = p
	}
	for _, name := range slices.Sorted(maps.Keys(m.istiods)) {
		if p, ok := want[name]; !ok || m.down[name] || !p.Same(m.istiods[name].Pod) {
			m.stop(t, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if m.istiods[name] == nil && !m.down[name] {
			m.start(t, want[name])
		}
	}
	m.publish(t)
	for _, rev := range m.revisions() {
		m.waitWebhooks(t, rev)
	}
}

func (m *mesh) start(t *testing.T, p *apiserver.Pod) {
	t.Helper()
	bin, err := apiserver.PilotDiscovery(toolsDir, p.Version)
	if err != nil {
		t.Fatal(err)
	}
	addr := m.addrs[p.Deployment]
	if addr == "" {
		addr = fmt.Sprintf("127.0.%d.%d", m.n, len(m.addrs)+1)
		m.addrs[p.Deployment] = addr
	}
	dir, err := os.MkdirTemp(m.dir, p.Deployment+"-")
	if err != nil {
		t.Fatal(err)
	}
	i, err := apiserver.StartIstiod(context.Background(), m.c.srv.Config, p, bin, addr, dir)
	if err != nil {
		if err := i.Stop(); err != nil {
			t.Error(err)
		}
		t.Fatal(err)
	}
	m.istiods[p.Deployment] = i
	t.Logf("%s ready in %.1fs", i, i.Ready.Seconds())
}

func (m *mesh) stop(t *testing.T, name string) {
	t.Helper()
	i := m.istiods[name]
	start := time.Now()
	if err := i.Stop(); err != nil {
		t.Error(err)
	}
	delete(m.istiods, name)
	t.Logf("%s stopped in %.1fs", i, time.Since(start).Seconds())
}

// hold takes the istiod of rev down, or (down false) lets it come back,
// and syncs.
func (m *mesh) hold(t *testing.T, rev string, down bool) {
	t.Helper()
	m.down["istiod-"+rev] = down
	m.sync(t)
}

// revisions are the revisions whose istiod runs.
func (m *mesh) revisions() []string {
	var revs []string
	for _, i := range m.istiods {
		revs = append(revs, i.Pod.Revision)
	}
	slices.Sort(revs)
	return revs
}

// running: the istiod of rev runs.
func (m *mesh) running(rev string) bool {
	return slices.Contains(m.revisions(), rev)
}

func (m *mesh) publish(t *testing.T) {
	t.Helper()
	if err := apiserver.PublishEndpoints(context.Background(), m.kube, istioNamespace, slices.Collect(maps.Values(m.istiods))); err != nil {
		t.Fatal(err)
	}
	m.takeWarnings(t)
}

// takeWarnings fails t on a warning of the server but the one about the
// FQDN EndpointSlices the mesh publishes.
func (m *mesh) takeWarnings(t *testing.T) {
	t.Helper()
	for _, w := range m.warnings.Take() {
		if !strings.Contains(w, "FQDN endpoints are deprecated") {
			t.Errorf("the server warned: %s", w)
		}
	}
}

// waitWebhooks waits up to 30 s for the webhook configurations of rev to
// be as its istiod makes them (webhookProblems), and fails t if they are
// not.
func (m *mesh) waitWebhooks(t *testing.T, rev string) {
	t.Helper()
	var problems []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, problems = m.webhookProblems(t, rev); len(problems) == 0 {
			return
		}
	}
	t.Errorf("istiod %s did not set up its webhooks in 30s: %s", rev, strings.Join(problems, "; "))
}

// webhookProblems checks what istiod of rev does to the webhook
// configurations labelled istio.io/rev=<rev>: its CA (the root of
// istio-ca-root-cert) as the caBundle of every injector webhook (named
// *sidecar-injector.istio.io) of each MutatingWebhookConfiguration and of
// every webhook of each ValidatingWebhookConfiguration, which fail closed.
// It returns the configurations it checked, as Kind/name, and what is not
// so.
func (m *mesh) webhookProblems(t *testing.T, rev string) (checked, problems []string) {
	t.Helper()
	ctx := context.Background()
	var root corev1.ConfigMap
	if err := m.kube.Get(ctx, client.ObjectKey{Namespace: istioNamespace, Name: "istio-ca-root-cert"}, &root); err != nil {
		return nil, []string{fmt.Sprintf("no CA root yet: %v", err)}
	}
	ca := root.Data["root-cert.pem"]
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("admissionregistration.k8s.io/v1")
		list.SetKind(kind + "List")
		if err := m.kube.List(ctx, list, client.MatchingLabels{"istio.io/rev": rev}); err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			checked = append(checked, kind+"/"+o.GetName())
			whs, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for _, w := range whs {
				w := w.(map[string]any)
				name := w["name"].(string)
				if kind == "MutatingWebhookConfiguration" && !strings.HasSuffix(name, "sidecar-injector.istio.io") {
					continue
				}
				b64, _, _ := unstructured.NestedString(w, "clientConfig", "caBundle")
				if pem, err := base64.StdEncoding.DecodeString(b64); err != nil || string(pem) != ca {
					problems = append(problems, fmt.Sprintf("%s %s webhook %s has not istiod's CA as caBundle", kind, o.GetName(), name))
				}
				if kind == "ValidatingWebhookConfiguration" && w["failurePolicy"] != "Fail" {
					problems = append(problems, fmt.Sprintf("%s %s webhook %s: failurePolicy %v", kind, o.GetName(), name, w["failurePolicy"]))
				}
			}
		}
	}
	slices.Sort(checked)
	return checked, problems
}

// checkWebhooks: each istiod running has set up every webhook
// configuration of its revision, and these include the ones cfg renders
// for it: its injector and validator, the tags that point at it, and
// istiod-default-validator if it is the active revision.
func (m *mesh) checkWebhooks(t *testing.T, cfg meshConfig) {
	t.Helper()
	for _, rev := range m.revisions() {
		want := []string{"MutatingWebhookConfiguration/istio-sidecar-injector-" + rev,
			"ValidatingWebhookConfiguration/istio-validator-" + rev + "-" + istioNamespace}
		for _, tag := range slices.Sorted(maps.Keys(cfg.tags)) {
			if cfg.tags[tag] == rev {
				want = append(want, "MutatingWebhookConfiguration/istio-revision-tag-"+tag)
			}
		}
		if _, set := cfg.tags["default"]; !set && cfg.active == rev {
			want = append(want, "MutatingWebhookConfiguration/istio-revision-tag-default")
		}
		if cfg.active == rev {
			want = append(want, "ValidatingWebhookConfiguration/istiod-default-validator")
		}
		checked, problems := m.webhookProblems(t, rev)
		for _, p := range problems {
			t.Error(p)
		}
		for _, w := range want {
			if !slices.Contains(checked, w) {
				t.Errorf("%s is not labelled istio.io/rev=%s, so istiod %s does not set it up; labelled so: %q", w, rev, rev, checked)
			}
		}
		t.Logf("istiod %s set its CA on %s", rev, strings.Join(checked, ", "))
	}
}

// injection is a pod made to see which sidecar, if any, it gets.
type injection struct {
	// namespace, with its labels, and the pod's labels
	namespace           string
	nsLabels, podLabels map[string]string
	// rev is the revision whose sidecar the pod must get; "" for none.
	rev string
}

// injections are the pods to make for a tree of cfg: one per revision
// (istio.io/rev: <rev>), per tag (istio.io/rev: <tag>), by default
// (istio.io/rev: default, istio-injection: enabled, and
// sidecar.istio.io/inject: "true" on the pod, which the default tag's
// webhooks select), and none in a namespace without labels; with the
// GitPatch, none in kube-system even labelled for the newest revision.
func injections(cfg meshConfig, patched bool) []injection {
	var out []injection
	for _, r := range cfg.revisions {
		out = append(out, injection{namespace: "rev-" + r, nsLabels: map[string]string{"istio.io/rev": r}, rev: r})
	}
	for _, tag := range slices.Sorted(maps.Keys(cfg.tags)) {
		if tag != "default" {
			out = append(out, injection{namespace: "tag-" + tag, nsLabels: map[string]string{"istio.io/rev": tag}, rev: cfg.tags[tag]})
		}
	}
	def := defaultRevision(cfg)
	out = append(out,
		injection{namespace: "tag-default", nsLabels: map[string]string{"istio.io/rev": "default"}, rev: def},
		injection{namespace: "injection-enabled", nsLabels: map[string]string{"istio-injection": "enabled"}, rev: def},
		injection{namespace: "pod-label", podLabels: map[string]string{"sidecar.istio.io/inject": "true"}, rev: def},
		injection{namespace: "no-labels"})
	if patched {
		out = append(out, injection{namespace: "kube-system", nsLabels: map[string]string{"istio.io/rev": cfg.revisions[len(cfg.revisions)-1]}})
	}
	return out
}

// defaultRevision is the revision that injects by default
// (istio-injection=enabled, sidecar.istio.io/inject=true), as the README
// says: the target of tags.default, else the active revision.
func defaultRevision(cfg meshConfig) string {
	if rev, ok := cfg.tags["default"]; ok {
		return rev
	}
	return cfg.active
}

// checkInjections makes a pod for each injection: it must come back with
// the sidecar of its revision, or none; while that revision's istiod is
// down, the server must refuse it (the injectors fail closed).
func (m *mesh) checkInjections(t *testing.T, cfg meshConfig, patched bool) {
	t.Helper()
	var seen []string
	for _, in := range injections(cfg, patched) {
		what := "a pod in namespace " + in.namespace + labelsText(in.nsLabels, in.podLabels)
		m.namespace(t, in.namespace, in.nsLabels)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: in.namespace, Labels: in.podLabels},
			// The ServiceAccount admission plugin, which would set it, is
			// off (no controller makes the accounts): the sidecar's token
			// volume needs it.
			Spec: corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
		}
		err := m.kube.Create(context.Background(), pod)
		got := in.rev
		switch {
		case in.rev != "" && !m.running(in.rev):
			got = "refused"
			if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
				t.Errorf("%s was admitted with istiod %s down (err %v): its injector must fail closed", what, in.rev, err)
			}
		case err != nil:
			t.Errorf("%s: %v", what, err)
		default:
			if p := sidecarProblem(pod, in.rev); p != "" {
				t.Errorf("%s: %s", what, p)
			}
		}
		if got == "" {
			got = "none"
		}
		seen = append(seen, fmt.Sprintf("%s%s: %s", in.namespace, labelsText(in.nsLabels, in.podLabels), got))
	}
	t.Logf("sidecars: %s", strings.Join(seen, ", "))
	m.takeWarnings(t)
}

// labelsText is " (k=v, pod k=v)" for a namespace's and a pod's labels.
func labelsText(ns, pod map[string]string) string {
	var l []string
	for _, k := range slices.Sorted(maps.Keys(ns)) {
		l = append(l, k+"="+ns[k])
	}
	for _, k := range slices.Sorted(maps.Keys(pod)) {
		l = append(l, "pod "+k+"="+pod[k])
	}
	if len(l) == 0 {
		return ""
	}
	return " (" + strings.Join(l, ", ") + ")"
}

// sidecarProblem says how pod differs from a pod injected by istiod of
// rev: its istio-proxy container of that revision's Istio version,
// talking to istiod-<rev> for config and certificates, and the injection
// status naming rev; "" if it does not. With rev "", the pod must have no
// sidecar.
func sidecarProblem(pod *corev1.Pod, rev string) string {
	var proxy *corev1.Container
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for k := range cs {
			if cs[k].Name == "istio-proxy" {
				proxy = &cs[k]
			}
		}
	}
	status := pod.Annotations["sidecar.istio.io/status"]
	if rev == "" {
		if proxy != nil || status != "" {
			return fmt.Sprintf("got a sidecar (%s), want none", status)
		}
		return ""
	}
	if proxy == nil {
		return fmt.Sprintf("no istio-proxy container, want istiod %s's sidecar", rev)
	}
	var problems []string
	// The distroless image is the same version.
	if _, tag, _ := strings.Cut(proxy.Image, "/proxyv2:"); strings.TrimSuffix(tag, "-distroless") != istioVersions[rev] {
		problems = append(problems, fmt.Sprintf("image %q, want proxyv2 %s", proxy.Image, istioVersions[rev]))
	}
	istiod := "istiod-" + rev + "." + istioNamespace + ".svc:15012"
	env := map[string]string{}
	for _, e := range proxy.Env {
		env[e.Name] = e.Value
	}
	if env["CA_ADDR"] != istiod {
		problems = append(problems, fmt.Sprintf("CA_ADDR %q, want %q", env["CA_ADDR"], istiod))
	}
	var pc struct {
		DiscoveryAddress string `json:"discoveryAddress"`
	}
	if err := json.Unmarshal([]byte(env["PROXY_CONFIG"]), &pc); err != nil || pc.DiscoveryAddress != istiod {
		problems = append(problems, fmt.Sprintf("PROXY_CONFIG discoveryAddress %q (%v), want %q", pc.DiscoveryAddress, err, istiod))
	}
	var st struct {
		Revision string `json:"revision"`
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil || st.Revision != rev {
		problems = append(problems, fmt.Sprintf("sidecar.istio.io/status %q, want revision %q", status, rev))
	}
	return strings.Join(problems, "; ")
}

// namespace makes namespace with exactly labels (kube-system: relabels
// it), and its default ServiceAccount, which no controller makes here.
func (m *mesh) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{}
	err := m.kube.Get(ctx, client.ObjectKey{Name: name}, ns)
	switch {
	case apierrors.IsNotFound(err):
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if err := m.kube.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}
		if err := client.IgnoreAlreadyExists(m.kube.Create(ctx, sa)); err != nil {
			t.Fatal(err)
		}
	case err != nil:
		t.Fatal(err)
	default:
		l := map[string]string{}
		for k, v := range ns.Labels {
			// the server's own label
			if k == corev1.LabelMetadataName {
				l[k] = v
			}
		}
		maps.Copy(l, labels)
		if !maps.Equal(l, ns.Labels) {
			ns.Labels = l
			if err := m.kube.Update(ctx, ns); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Validation outcomes as istiod counts them.
const (
	validationPassed = "galley_validation_passed"
	validationFailed = "galley_validation_failed"
)

// checkValidation creates a VirtualService that the CRD's schema admits
// but istiod does not (the wildcard host, bound to the mesh), which the
// server must refuse for istiod, and a valid one, which it must create;
// istiod of active, and no other, must count both: the answers were its.
func (m *mesh) checkValidation(t *testing.T, active string) {
	t.Helper()
	ctx := context.Background()
	m.namespace(t, "validation", nil)
	before := m.validationCounts(t)
	vs := func(host string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "VirtualService",
			"metadata":   map[string]any{"generateName": "reviews-", "namespace": "validation"},
			"spec": map[string]any{
				"hosts": []any{host},
				"http":  []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews"}}}}},
			},
		}}
	}
	err := m.kube.Create(ctx, vs("*"))
	if err == nil || !strings.Contains(err.Error(), "denied the request") || !strings.Contains(err.Error(), "wildcard host * is not allowed") {
		t.Errorf("a VirtualService for host * bound to the mesh: want it denied by istiod, got %v", err)
	}
	if err := m.kube.Create(ctx, vs("reviews")); err != nil {
		t.Errorf("a valid VirtualService was refused: %v", err)
	}
	after := m.validationCounts(t)
	for _, rev := range m.revisions() {
		want := [2]float64{}
		if rev == active {
			want = [2]float64{1, 1}
		}
		got := [2]float64{after[rev][0] - before[rev][0], after[rev][1] - before[rev][1]}
		if got != want {
			t.Errorf("istiod %s counted %v VirtualServices passed and %v failed validation, want %v and %v", rev, got[0], got[1], want[0], want[1])
		}
	}
	t.Logf("validation: istiod %s denied the invalid VirtualService and admitted the valid one, by its metrics; istiods %q saw neither", active,
		slices.DeleteFunc(m.revisions(), func(r string) bool { return r == active }))
	m.takeWarnings(t)
}

// validationCounts reads each running istiod's counts of VirtualServices
// passed and failed.
func (m *mesh) validationCounts(t *testing.T) map[string][2]float64 {
	t.Helper()
	out := map[string][2]float64{}
	vs := map[string]string{"resource": "virtualservices"}
	for _, i := range m.istiods {
		passed, err := i.Counter(context.Background(), validationPassed, vs)
		if err != nil {
			t.Fatal(err)
		}
		failed, err := i.Counter(context.Background(), validationFailed, vs)
		if err != nil {
			t.Fatal(err)
		}
		out[i.Pod.Revision] = [2]float64{passed, failed}
	}
	return out
}

// check is every check of a deployed tree with istiods running: their
// webhooks, injection, validation by the active revision.
func (m *mesh) check(t *testing.T, cfg meshConfig, patched bool) {
	t.Helper()
	start := time.Now()
	m.checkWebhooks(t, cfg)
	m.checkInjections(t, cfg, patched)
	if m.running(cfg.active) {
		m.checkValidation(t, cfg.active)
	}
	t.Logf("istiods %q: checks in %.1fs", m.revisions(), time.Since(start).Seconds())
}

// istiodWrites counts the writes to webhook configurations that istiod of
// rev made, by Kind/name.
func istiodWrites(t *testing.T, srv *apiserver.Server, rev string) map[string]int {
	t.Helper()
	writes, err := srv.Writes()
	if err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + istioNamespace + ":istiod-" + rev
	out := map[string]int{}
	for _, w := range writes {
		if w.User == user && !w.DryRun && w.Code/100 == 2 {
			out[w.Kind+"/"+w.Name]++
		}
	}
	return out
}

// lastLines is the end of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
