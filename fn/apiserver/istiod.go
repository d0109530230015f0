package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// EnvPilotDiscovery names the folder of the pilot-discovery builds, one
// per Istio version (pilot-discovery-1.31.0); `make test` sets it to
// bin/tools, where `make tools` builds them.
const EnvPilotDiscovery = "PILOT_DISCOVERY_DIR"

// PilotDiscovery finds the pilot-discovery of an Istio version:
// pilot-discovery-<version> in the folder $PILOT_DISCOVERY_DIR names, else
// in toolsDir.
func PilotDiscovery(toolsDir, version string) (string, error) {
	dir := os.Getenv(EnvPilotDiscovery)
	if dir == "" {
		dir = toolsDir
	}
	// Absolute: istiod runs in a folder of its own.
	p, err := filepath.Abs(filepath.Join(dir, "pilot-discovery-"+version))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no pilot-discovery %s (`make tools` builds it into bin/tools; `make test` sets %s): %w", version, EnvPilotDiscovery, err)
	}
	return p, nil
}

// The ports istiod listens on: pilot-discovery's defaults, which the
// Deployment's container ports and its Services' target ports name.
const (
	portHTTP       = 8080
	portHTTPS      = 15017
	portGRPC       = 15010
	portSecureGRPC = 15012
	portMonitoring = 15014
	portCtrlZ      = 9876
)

// Pod is an istiod pod as the tree's Deployment makes it: what StartIstiod
// runs as a process.
type Pod struct {
	Name, Namespace, ServiceAccount string
	// Deployment is the Deployment's name: istiod-<rev>.
	Deployment string
	// Revision is the pod's istio.io/rev label.
	Revision string
	// Version is its image's tag, the pilot-discovery to run.
	Version string
	// Labels are the pod template's: the Services that select them send
	// to this istiod.
	Labels map[string]string
	// Ports are the container's ports by name.
	Ports     map[string]int32
	container corev1.Container
	// template is the pod template as JSON: a new one is a new pod.
	template string
}

// PodOf reads the pod the istiod Deployment dep makes: its container
// "discovery", labels and service account.
func PodOf(dep *appsv1.Deployment) (*Pod, error) {
	spec := dep.Spec.Template.Spec
	i := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "discovery" })
	if i < 0 {
		return nil, fmt.Errorf("Deployment %s/%s must have a container named %q", dep.Namespace, dep.Name, "discovery")
	}
	c := spec.Containers[i]
	if len(c.Command) > 0 || len(c.EnvFrom) > 0 {
		return nil, fmt.Errorf("Deployment %s/%s: container %q must run the image's entrypoint (pilot-discovery) with args and env only", dep.Namespace, dep.Name, c.Name)
	}
	tag := c.Image[strings.LastIndex(c.Image, "/")+1:]
	_, tag, ok := strings.Cut(tag, ":")
	if !ok {
		return nil, fmt.Errorf("Deployment %s/%s: image %q has no tag: which Istio version is it?", dep.Namespace, dep.Name, c.Image)
	}
	tmpl, err := json.Marshal(dep.Spec.Template)
	if err != nil {
		return nil, err
	}
	p := &Pod{
		Name:           dep.Name + "-0",
		Namespace:      dep.Namespace,
		ServiceAccount: spec.ServiceAccountName,
		Deployment:     dep.Name,
		Revision:       dep.Spec.Template.Labels["istio.io/rev"],
		Version:        strings.TrimSuffix(tag, "-distroless"),
		Labels:         dep.Spec.Template.Labels,
		Ports:          map[string]int32{},
		container:      c,
		template:       string(tmpl),
	}
	if p.ServiceAccount == "" {
		p.ServiceAccount = "default"
	}
	for _, port := range c.Ports {
		if port.Name != "" {
			p.Ports[port.Name] = port.ContainerPort
		}
	}
	return p, nil
}

// Same: q is the pod p is, from the same template.
func (p *Pod) Same(q *Pod) bool {
	return p.Namespace == q.Namespace && p.Deployment == q.Deployment && p.template == q.template
}

// env is the container's environment as the kubelet gives it: values as
// they are, the downward API resolved, and KUBECONFIG (whose secret is not
// mounted) replaced by kubeconfig.
func (p *Pod) env(address, kubeconfig string) ([]string, error) {
	out := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOSTNAME=" + p.Name}
	for _, e := range p.container.Env {
		v := e.Value
		switch {
		case e.Name == "KUBECONFIG":
			v = kubeconfig
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil:
			switch f := e.ValueFrom.FieldRef.FieldPath; f {
			case "metadata.name":
				v = p.Name
			case "metadata.namespace":
				v = p.Namespace
			case "spec.serviceAccountName":
				v = p.ServiceAccount
			case "status.podIP", "status.hostIP":
				v = address
			case "spec.nodeName":
				v = "localhost"
			default:
				return nil, fmt.Errorf("env %s: fieldRef %q is not supported", e.Name, f)
			}
		case e.ValueFrom.ResourceFieldRef != nil:
			r, err := p.resource(e.ValueFrom.ResourceFieldRef)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			v = r
		default:
			return nil, fmt.Errorf("env %s: only values, fieldRef and resourceFieldRef are supported", e.Name)
		}
		out = append(out, e.Name+"="+v)
	}
	return out, nil
}

// resource resolves a resourceFieldRef to CPU as the kubelet does: the
// container's limit, or the node's CPUs without one; requests as set.
func (p *Pod) resource(ref *corev1.ResourceFieldSelector) (string, error) {
	var q resource.Quantity
	switch ref.Resource {
	case "limits.cpu":
		l, ok := p.container.Resources.Limits[corev1.ResourceCPU]
		if !ok {
			l = *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI)
		}
		q = l
	case "requests.cpu":
		q = p.container.Resources.Requests[corev1.ResourceCPU]
	default:
		return "", fmt.Errorf("resourceFieldRef %q is not supported", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))), nil
}

// Istiod is a running pilot-discovery.
type Istiod struct {
	Pod *Pod
	// Address is the loopback address each of its listeners binds.
	Address string
	// Ready is how long it took to answer /ready.
	Ready time.Duration
	cmd   *exec.Cmd
	// done is closed when the process has exited, with err its status.
	done chan struct{}
	err  error
	logs *lockedBuffer
	http *http.Client
}

// StartIstiod runs pod's istiod: `pilot-discovery discovery` with the
// Deployment's args and env, as the pod's service account (a token from
// the TokenRequest API, so that it gets what the tree's RBAC grants it),
// every listener on address, in dir, an empty folder: mesh config and the
// injection template come from the revision's ConfigMaps, and it writes
// its DNS certificate there. It returns once istiod is ready (/ready
// answers 200). Stop it with Stop, whatever StartIstiod returns.
func StartIstiod(ctx context.Context, cfg *rest.Config, pod *Pod, binary, address, dir string) (*Istiod, error) {
	if ip := net.ParseIP(address); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("istiod must listen on a loopback address, not %q", address)
	}
	if err := PrivateNetwork(); err != nil {
		return nil, fmt.Errorf("refusing to start istiod: %w", err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(ctx, cfg, pod, kubeconfig); err != nil {
		return nil, err
	}
	env, err := pod.env(address, kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("Deployment %s/%s: %w", pod.Namespace, pod.Deployment, err)
	}
	hostPort := func(port int) string { return net.JoinHostPort(address, fmt.Sprint(port)) }
	// Later flags win: the Deployment's --monitoringAddr=:15014 binds every
	// address, which two istiods cannot share.
	args := append(slices.Clone(pod.container.Args),
		"--kubeconfig="+kubeconfig,
		"--httpAddr="+hostPort(portHTTP),
		"--httpsAddr="+hostPort(portHTTPS),
		"--grpcAddr="+hostPort(portGRPC),
		"--secureGRPCAddr="+hostPort(portSecureGRPC),
		"--monitoringAddr="+hostPort(portMonitoring),
		"--ctrlz_address="+address,
		fmt.Sprintf("--ctrlz_port=%d", portCtrlZ),
	)
	i := &Istiod{Pod: pod, Address: address, done: make(chan struct{}), logs: &lockedBuffer{},
		http: &http.Client{Timeout: 5 * time.Second}}
	i.cmd = exec.Command(binary, args...)
	i.cmd.Dir, i.cmd.Env = dir, env
	i.cmd.Stdout, i.cmd.Stderr = i.logs, i.logs
	begin := time.Now()
	if err := i.cmd.Start(); err != nil {
		close(i.done)
		return i, fmt.Errorf("start %s: %w", binary, err)
	}
	go func() {
		i.err = i.cmd.Wait()
		close(i.done)
	}()
	if err := i.waitReady(ctx, 2*time.Minute); err != nil {
		return i, err
	}
	i.Ready = time.Since(begin)
	return i, nil
}

// writeKubeconfig writes a kubeconfig for the server of cfg with a token
// of pod's service account.
func writeKubeconfig(ctx context.Context, cfg *rest.Config, pod *Pod, file string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	expiry := int64(2 * time.Hour / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.ServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("a token of ServiceAccount %s/%s: %w", pod.Namespace, pod.ServiceAccount, err)
	}
	return WriteKubeconfig(cfg, pod.ServiceAccount, &clientcmdapi.AuthInfo{Token: tr.Status.Token}, pod.Namespace, file)
}

// WriteKubeconfig writes file, a kubeconfig for the server of cfg whose
// one context is user's, who authenticates with auth, in namespace ns
// ("" for none). It writes a temporary file and renames it: a reader
// waiting for file never sees part of it.
func WriteKubeconfig(cfg *rest.Config, user string, auth *clientcmdapi.AuthInfo, ns, file string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[user] = auth
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: user, Namespace: ns}
	kc.CurrentContext = "test"
	tmp := file + ".tmp"
	if err := clientcmd.WriteToFile(*kc, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// waitReady polls /ready until it answers 200, istiod exits or timeout
// passes.
func (i *Istiod) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := fmt.Sprintf("http://%s/ready", net.JoinHostPort(i.Address, fmt.Sprint(portHTTP)))
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := i.http.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-i.done:
			return fmt.Errorf("%s exited before it was ready: %v\n%s", i, i.err, tail(i.Logs(), 40))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s\n%s", i, timeout, tail(i.Logs(), 40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (i *Istiod) String() string {
	return fmt.Sprintf("istiod %s (pilot-discovery %s on %s)", i.Pod.Revision, i.Pod.Version, i.Address)
}

// Stop stops istiod by its PID: SIGTERM, then SIGKILL after 30 s. It
// returns an error only if the process could not be stopped.
func (i *Istiod) Stop() error {
	if i == nil || i.cmd == nil || i.cmd.Process == nil {
		return nil
	}
	select {
	case <-i.done:
		return nil
	default:
	}
	if err := i.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s (PID %d): %w", i, i.cmd.Process.Pid, err)
	}
	select {
	case <-i.done:
		return nil
	case <-time.After(30 * time.Second):
	}
	if err := i.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s (PID %d): %w", i, i.cmd.Process.Pid, err)
	}
	<-i.done
	return fmt.Errorf("%s (PID %d) did not stop on SIGTERM within 30s: killed", i, i.cmd.Process.Pid)
}

// Exited says whether the process has exited, and how.
func (i *Istiod) Exited() (bool, error) {
	select {
	case <-i.done:
		return true, i.err
	default:
		return false, nil
	}
}

// Logs is what istiod wrote.
func (i *Istiod) Logs() string {
	i.logs.mu.Lock()
	defer i.logs.mu.Unlock()
	return i.logs.buf.String()
}

// Counter sums the samples of the counter name that istiod's monitoring
// port serves and that carry every label of labels.
func (i *Istiod) Counter(ctx context.Context, name string, labels map[string]string) (float64, error) {
	url := fmt.Sprintf("http://%s/metrics", net.JoinHostPort(i.Address, fmt.Sprint(portMonitoring)))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := i.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: metrics: %w", i, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: metrics: %s", i, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s: metrics: %w", i, err)
	}
	f := fams[name]
	if f == nil {
		// A counter appears once it is first incremented.
		return 0, nil
	}
	if f.GetType() != dto.MetricType_COUNTER {
		return 0, fmt.Errorf("%s: metric %s is a %s, not a counter", i, name, f.GetType())
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		if hasLabels(m, labels) {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, nil
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(labels)
}
