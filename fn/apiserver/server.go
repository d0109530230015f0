// Package apiserver applies trees to a real kube-apiserver as Flux's
// kustomize-controller applies them. Its tests start etcd and kube-apiserver
// (built by `make tools`) inside a private network namespace: the webhooks
// of a tree point at Services, and nothing the API server dials for them may
// leave the machine.
package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The environment variables naming the control plane's binaries; `make
// test` sets them to what `make tools` built.
const (
	EnvEtcd      = "ETCD"
	EnvAPIServer = "KUBE_APISERVER"
)

// ServiceRange is every Service's ClusterIP range: loopback, so a webhook
// call to a Service's ClusterIP can only reach this machine.
const ServiceRange = "127.0.100.0/24"

// Binaries finds etcd and kube-apiserver: the environment variables, else
// the unversioned links `make tools` leaves in toolsDir.
func Binaries(toolsDir string) (etcd, apiServer string, err error) {
	find := func(env, name string) (string, error) {
		p := os.Getenv(env)
		if p == "" {
			p = filepath.Join(toolsDir, name)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s must name the %s binary (`make tools` builds it into bin/tools; `make test` sets %s): %w", env, name, env, err)
		}
		return p, nil
	}
	if etcd, err = find(EnvEtcd, "etcd"); err != nil {
		return "", "", err
	}
	if apiServer, err = find(EnvAPIServer, "kube-apiserver"); err != nil {
		return "", "", err
	}
	return etcd, apiServer, nil
}

// PrivateNetwork returns an error unless this process's network namespace
// has a loopback interface that is up and no other interface that is up:
// nothing dialled from here can leave the machine. Down interfaces are
// allowed because some kernels put tunnel devices (tunl0, sit0), down, into
// every new namespace; a down interface sends nothing.
func PrivateNetwork() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list network interfaces: %w", err)
	}
	loopback := false
	for _, i := range ifs {
		switch {
		case i.Flags&net.FlagLoopback != 0:
			if i.Flags&net.FlagUp == 0 {
				return fmt.Errorf("loopback interface %q must be up", i.Name)
			}
			loopback = true
		case i.Flags&net.FlagUp != 0:
			return fmt.Errorf("interface %q is up: the API server tests must run in a network namespace with only loopback", i.Name)
		}
	}
	if !loopback {
		return errors.New("no loopback interface")
	}
	return nil
}

// NetnsMarker is set in the environment of a command that RunPrivate
// started in its own network namespace.
const NetnsMarker = "ISTIO_GITOPS_TEST_NETNS"

// RunPrivate runs name with args in new network and PID namespaces
// (`unshare --net --pid --fork --kill-child`, and --map-root-user without
// root), with NetnsMarker set, and returns its exit code: whatever it
// starts can reach nothing but loopback, and dies with it, however it
// ends. The command brings loopback up itself (PrivateNetwork checks it).
func RunPrivate(name string, args ...string) int {
	flags := []string{"--net", "--pid", "--fork", "--kill-child"}
	if os.Geteuid() != 0 {
		// Without root, a user namespace grants the rights to make them.
		flags = append(flags, "--map-root-user")
	}
	cmd := exec.Command("unshare", append(append(flags, "--", name), args...)...)
	cmd.Env = append(os.Environ(), NetnsMarker+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "cannot make a private network namespace (unshare --net): %v\n", err)
		return 1
	}
	return 0
}

// LoopbackUp brings loopback up in a namespace RunPrivate made.
func LoopbackUp() error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	return nil
}

// Server is a running etcd and kube-apiserver.
type Server struct {
	env *envtest.Environment
	// Config reaches the server as its admin.
	Config *rest.Config
	// Client is a client of Config.
	Client client.Client
	// Version is the server's version (GET /version).
	Version string
	// Started is how long the server took to start and be ready.
	Started  time.Duration
	warnings *Warnings
	logs     *lockedBuffer
	// dir holds the audit policy and log.
	dir string
}

// Start starts etcd and kube-apiserver, bound to 127.0.0.1, with Services in
// ServiceRange. It refuses to start outside a private network namespace.
// Stop the server with Stop, whatever Start returns.
func Start(etcdPath, apiServerPath string) (*Server, error) {
	if err := PrivateNetwork(); err != nil {
		return nil, fmt.Errorf("refusing to start an API server: %w", err)
	}
	begin := time.Now()
	etcdURL, err := loopbackURL()
	if err != nil {
		return nil, err
	}
	logs := &lockedBuffer{}
	dir, err := os.MkdirTemp("", "apiserver-audit-")
	if err != nil {
		return nil, err
	}
	s := &Server{warnings: &Warnings{}, logs: logs, dir: dir}
	if err := os.WriteFile(s.auditPolicy(), []byte(auditPolicy), 0o600); err != nil {
		return s, err
	}
	etcd := &envtest.Etcd{Path: etcdPath, URL: etcdURL, Out: logs, Err: logs}
	api := &envtest.APIServer{Path: apiServerPath, Out: logs, Err: logs}
	api.SecureServing.Address = "127.0.0.1"
	args := api.Configure()
	args.Set("service-cluster-ip-range", ServiceRange)
	// Webhook calls go to a Service's endpoints, not its ClusterIP;
	// without a controller manager there are none: nothing is dialled.
	args.Set("enable-aggregator-routing", "true")
	args.Set("advertise-address", "127.0.0.1")
	// The default reconciler would publish the advertise address as the
	// kubernetes Service's endpoint; there is no need.
	args.Set("endpoint-reconciler-type", "none")
	args.Set("audit-policy-file", s.auditPolicy())
	args.Set("audit-log-path", s.auditLog())
	args.Set("audit-log-format", "json")
	// Each event is in the file before the request is answered.
	args.Set("audit-log-mode", "blocking")
	noCluster := false
	s.env = &envtest.Environment{
		ControlPlane: envtest.ControlPlane{Etcd: etcd, APIServer: api},
		// Never a cluster named by the environment (USE_EXISTING_CLUSTER).
		UseExistingCluster: &noCluster,
		// Two servers starting at once on two busy cores take more than
		// envtest's default 20 s.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := s.env.Start()
	if err != nil {
		return s, fmt.Errorf("start etcd and kube-apiserver: %w\n%s", err, tail(s.Logs(), 40))
	}
	s.Started = time.Since(begin)
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.WarningHandlerWithContext = s.warnings
	s.Config = cfg
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return s, err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return s, fmt.Errorf("server version: %w", err)
	}
	s.Version = v.GitVersion
	if s.Client, err = client.New(cfg, client.Options{}); err != nil {
		return s, err
	}
	return s, nil
}

// Stop stops kube-apiserver and etcd and removes their files.
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	var err error
	if s.env != nil {
		err = s.env.Stop()
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// Logs is what etcd and kube-apiserver wrote.
func (s *Server) Logs() string {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	return s.logs.buf.String()
}

// Warnings returns the distinct warnings the server sent since the last
// call, sorted, and forgets them.
func (s *Server) Warnings() []string {
	return s.warnings.Take()
}

// NewClient is another client of the server as its admin, whose warnings
// go to w instead of Warnings: for writes that are not the tree's.
func (s *Server) NewClient(w *Warnings) (client.Client, error) {
	cfg := rest.CopyConfig(s.Config)
	cfg.WarningHandlerWithContext = w
	return client.New(cfg, client.Options{})
}

// Warnings collects the warnings the server sends with its responses.
type Warnings struct {
	mu   sync.Mutex
	seen []string
}

// HandleWarningHeaderWithContext records a warning.
func (w *Warnings) HandleWarningHeaderWithContext(_ context.Context, code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

// Take returns the distinct warnings received since the last call,
// sorted, and forgets them.
func (w *Warnings) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Compact(slices.Sorted(slices.Values(w.seen)))
	w.seen = nil
	return out
}

// loopbackURL is an etcd client URL on a free port of 127.0.0.1.
func loopbackURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return &url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

// lockedBuffer is an io.Writer for two processes' output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
